"""Static covariates into the contract's units: explicit scales, known units and SoilGrids integers.

SoilGrids 2.0 (Poggio et al. 2021, SOIL 7, 217-240; ISRIC's SoilGrids FAQ, "mapped units" and
"conversion factor" to conventional units) stores its maps as scaled integers:

=========  ============  ======  ======================
property   mapped units  factor  conventional units
=========  ============  ======  ======================
``bdod``   cg/cm³        / 100   kg/dm³ (= g/cm³)
``clay``   g/kg          / 10    g/100 g (= %)
``sand``   g/kg          / 10    %
``silt``   g/kg          / 10    %
``soc``    dg/kg         / 10    g/kg
=========  ============  ======  ======================

So a raw ``bdod`` raster reads 145 where the contract expects 1.45 g/cm³. The contract units
(:data:`~stimpute_core.data.contract.STATIC_RANGES`) are those conventional units: % for the
fractions, g/cm³ for bulk density, g/kg for organic carbon.

What a field's values are in is decided, first rule that applies:

1. an explicit ``{"scale": s, "units": u}`` (the recipe's): values are multiplied by ``s``
   (default 1) and are then in ``u`` (default: the contract units), converted by the table of
   known units (:data:`UNIT_FACTORS`); an unknown ``u`` is an error;
2. the file's ``units`` attribute (GDAL band unit, NetCDF ``units``) when it is a known unit;
3. a SoilGrids file name (``bdod_0-5cm_mean.tif``, ``clay_5-15cm_Q0.5_1000.tif``, ...): the
   table above;
4. the value range: bulk density mostly within 50..250 is cg/cm³; clay/sand/silt above 100 and
   at most 1000 are g/kg; organic carbon above 600 (impossible in g/kg) and at most 6000 is dg/kg.

Every conversion is kept in the field's ``conversion`` attribute; one guessed (rules 3 and 4)
is also said in a warning. The result must then lie in the contract's plausible range, or :class:`ReaderError` names the file.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from ..contract import STATIC_RANGES, static_range_problem
from .report import ReaderError

__all__ = ["SOILGRIDS", "UNIT_FACTORS", "to_contract_units"]

#: SoilGrids 2.0 property -> (mapped units, factor to conventional units).
SOILGRIDS = {
    "bdod": ("cg/cm3", 0.01),
    "clay": ("g/kg", 0.1),
    "sand": ("g/kg", 0.1),
    "silt": ("g/kg", 0.1),
    "soc": ("dg/kg", 0.1),
}
#: Covariate name -> its SoilGrids property.
_PROPERTY = {"bulk_density": "bdod", "clay": "clay", "sand": "sand", "silt": "silt", "soc": "soc"}
_SOILGRIDS_NAME = re.compile(
    r"(?<![a-z])(bdod|clay|sand|silt|soc|cec|cfvo|nitrogen|ocd|ocs|phh2o)_\d+-\d+cm_"
    r"(mean|q0\.\d+|uncertainty)",
    re.IGNORECASE,
)
_FRACTION = {"%": 1.0, "percent": 1.0, "g/100g": 1.0, "g/kg": 0.1, "kg/kg": 100.0, "1": 100.0}
_DEGREES = {"degrees": 1.0, "degree": 1.0, "deg": 1.0, "°": 1.0}
#: Covariate -> known units (normalised: lower case, no spaces, ``³`` as ``3``) -> factor to the
#: contract units.
UNIT_FACTORS: dict[str, dict[str, float]] = {
    "elevation": {"m": 1.0, "metre": 1.0, "metres": 1.0, "meter": 1.0, "meters": 1.0},
    "slope": _DEGREES,
    "aspect": _DEGREES,
    "clay": _FRACTION,
    "sand": _FRACTION,
    "silt": _FRACTION,
    "bulk_density": {
        "g/cm3": 1.0,
        "kg/dm3": 1.0,
        "mg/m3": 1.0,  # Mg/m³ (megagrams), lower-cased
        "t/m3": 1.0,
        "cg/cm3": 0.01,
        "kg/m3": 0.001,
    },
    "soc": {"g/kg": 1.0, "dg/kg": 0.1, "mg/g": 1.0, "%": 10.0, "percent": 10.0, "g/100g": 10.0},
}


def _norm(units: object) -> str:
    text = str(units).strip().lower().replace(" ", "").replace("³", "3").replace("^3", "3")
    return text.replace("**3", "3").replace("cm-3", "/cm3").replace("m-3", "/m3")


def _guess(name: str, values: np.ndarray, source: str) -> tuple[float, str] | None:
    """(factor, why) from a SoilGrids file name or the value range; None when nothing fits."""
    match = _SOILGRIDS_NAME.search(os.path.basename(source))
    if match and name in _PROPERTY:
        prop = match.group(1).lower()
        if prop != _PROPERTY[name]:
            raise ReaderError(
                source,
                f"is named like the SoilGrids map '{prop}' but is given as '{name}' "
                f"(SoilGrids '{_PROPERTY[name]}'): check which file is which",
            )
        units, factor = SOILGRIDS[prop]
        return factor, f"SoilGrids '{prop}' file: {units} to {STATIC_RANGES[name][0]}"
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    lo, hi, median = float(finite.min()), float(finite.max()), float(np.median(finite))
    if name == "bulk_density" and 50.0 <= median <= 250.0 and hi <= 300.0:
        return 0.01, f"values {lo:.4g}..{hi:.4g} look like cg/cm3 (SoilGrids): to g/cm3"
    if name in ("clay", "sand", "silt") and 100.0 < hi <= 1000.0 and lo >= 0.0:
        return 0.1, f"values {lo:.4g}..{hi:.4g} look like g/kg (SoilGrids): to %"
    if name == "soc" and 600.0 < hi <= 6000.0 and lo >= 0.0:
        return 0.1, f"values {lo:.4g}..{hi:.4g} look like dg/kg (SoilGrids): to g/kg"
    return None


def to_contract_units(
    name: str, da: xr.DataArray, path: str, spec: Mapping[str, Any] | None = None
) -> xr.DataArray:
    """``da`` (the field ``name`` read from ``path``) in the contract's units; see the module doc.

    ``spec`` is the explicit ``{"scale": float | None, "units": str | None}``. Raises
    :class:`ReaderError` naming ``path`` when the result lies outside the plausible range, and
    ``ValueError`` for an explicit spec that cannot be understood.
    """
    known = UNIT_FACTORS.get(name)
    target = STATIC_RANGES[name][0] if name in STATIC_RANGES else None
    factor, why, guessed = 1.0, None, False
    if spec is not None:
        extra = sorted(set(spec) - {"scale", "units"})
        if extra:
            raise ValueError(f"'{name}': unknown key(s) {', '.join(extra)}: expected scale, units")
        scale, units = spec.get("scale"), spec.get("units")
        if scale is not None:
            if not (isinstance(scale, int | float) and np.isfinite(scale) and scale != 0):
                raise ValueError(f"'{name}': scale {scale!r} is not a finite non-zero number")
            factor = float(scale)
        if units is not None and known is not None:
            if _norm(units) not in known:
                raise ValueError(
                    f"'{name}': units {units!r} unknown: expected one of {', '.join(known)}"
                )
            factor *= known[_norm(units)]
        why = f"scale {scale or 1:g}, units {units or target} as given"
    elif known is not None:
        units = da.attrs.get("units")
        if units is not None and _norm(units) in known:
            factor = known[_norm(units)]
            why = f"file units {units} to {target}" if factor != 1.0 else None
        else:
            guess = _guess(name, np.asarray(da.values, dtype=float), path)
            if guess is not None:
                (factor, why), guessed = guess, True
    out = da * factor if factor != 1.0 else da.copy()
    out.attrs = dict(da.attrs)
    if why is not None and factor != 1.0:
        out.attrs["conversion"] = f"{why} (x {factor:g})"
        if guessed:  # a conversion no unit asked for is said
            warnings.warn(f"{path}: '{name}' converted: {out.attrs['conversion']}", stacklevel=3)
    if target is not None:
        if "units" in da.attrs and _norm(da.attrs["units"]) != _norm(target):
            out.attrs["units_in_file"] = str(da.attrs["units"])
        out.attrs["units"] = target
    elif spec is not None and spec.get("units") is not None:
        out.attrs["units"] = str(spec["units"])
    problem = static_range_problem(name, out.values)
    if problem is not None:
        done = f" (after {out.attrs['conversion']})" if "conversion" in out.attrs else ""
        raise ReaderError(
            path,
            f"{problem}{done}: other units, or nodata the file does not declare? give the "
            f"raster's scale and units for '{name}' in the recipe",
        )
    return out
