"""The tutorial notebooks: stored without outputs, and each runs top to bottom in fast mode.

A notebook is run as a user would run it, in a fresh kernel with ``notebooks/`` as its working
folder, with ``STIMPUTE_FAST=1`` (small region, short period, one or two epochs) and the built-in
scenario cached in a temporary folder shared by the notebooks of one test run. A cell that
raises fails the test with the cell and its traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
TUTORIALS = [
    "01_data_and_sparsity",
    "02_baselines_and_protocol",
    "03_train_st_transformer",
    "04_validate_against_txson",
    "05_attention_and_land_cover",
    "06_uncertainty",
]


def test_the_tutorials_are_all_there():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == TUTORIALS


@pytest.mark.parametrize("name", TUTORIALS)
def test_stored_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a tutorial without code"
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[-1].cell_type == "markdown"


@pytest.fixture(scope="module")
def fast_env(tmp_path_factory):
    """The kernel's environment: fast mode and a scenario cache of this test run."""
    env = {"STIMPUTE_FAST": "1", "STIMPUTE_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # a kernel inherits the environment of the process that starts it
    yield env
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.mark.slow
@pytest.mark.parametrize("name", TUTORIALS)
def test_runs_top_to_bottom_in_fast_mode(name, fast_env):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(
        nb,
        timeout=600,  # per cell: a guard against a hang, not a speed target
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    ]
    assert not errors
    assert any(cell.outputs for cell in nb.cells if cell.cell_type == "code")
