"""The SVQ bottleneck of the ST-Transformer (:mod:`stimpute_core.models.st_transformer.svq`):
shapes, no effect before training, a frozen codebook that stays frozen, checkpoints that keep it
and refuse a mismatch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.models import make_imputer
from stimpute_core.models.st_transformer.core import STTransformer, STTransformerConfig
from stimpute_core.models.st_transformer.model import STTransformerImputer
from stimpute_core.models.st_transformer.svq import SparseVQ, step_memory


@pytest.fixture(scope="module")
def small():
    ds = make_scenario(ScenarioConfig(seed=3, start="2019-01-01", end="2019-06-30"))
    return ds.isel(y=slice(0, 12), x=slice(0, 12)).drop_vars("soil_moisture_true")


def _batch(cfg: STTransformerConfig, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shape = (2, cfg.window, cfg.patch * cfg.patch)
    y = torch.randn(shape, generator=g)
    visible = torch.rand(shape, generator=g) < 0.3
    u = torch.randn((*shape, cfg.n_covariates), generator=g)
    return y, visible, u


def test_the_module_keeps_the_shape_and_starts_as_the_identity():
    svq = SparseVQ(8, codes=32, hidden=16)
    h = torch.randn(3, 5, 7, 8)
    assert torch.equal(svq(h), h)
    with torch.no_grad():
        svq.alpha.fill_(1.0)
    out = svq(h)
    assert out.shape == h.shape and not torch.allclose(out, h)
    expected = h + svq.weights(h) @ svq.codebook
    torch.testing.assert_close(out, expected)
    assert step_memory(166_000, 64, 10_000) > 6e9 > step_memory(166_000, 64, 1024)


@pytest.mark.parametrize("placement", ["pre", "post"])
def test_a_network_with_svq_starts_as_the_network_without_it(placement):
    common = {"n_covariates": 3, "hidden": 16, "n_layers": 2, "patch": 8, "window": 12}
    torch.manual_seed(0)
    plain = STTransformer(STTransformerConfig(**common))
    torch.manual_seed(0)
    cfg = STTransformerConfig(**common, bottleneck="svq", svq_placement=placement, svq_codes=64)
    with_svq = STTransformer(cfg)
    batch = _batch(cfg)
    a, b = plain(*batch)[0], with_svq(*batch)[0]
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    # One step of training moves the bottleneck's gate, and then it changes the output.
    opt = torch.optim.Adam(with_svq.parameters(), lr=1e-2)
    codebook = with_svq.svq.codebook.clone()
    loss = (with_svq(*batch)[0] - batch[0]).abs().mean()
    loss.backward()
    assert with_svq.svq.alpha.grad is not None and with_svq.svq.alpha.grad != 0
    opt.step()
    assert with_svq.svq.alpha.item() != 0
    assert torch.equal(with_svq.svq.codebook, codebook)  # frozen: a buffer, not a parameter
    assert not any(p is with_svq.svq.codebook for p in with_svq.parameters())
    learnable = STTransformer(STTransformerConfig(**common, bottleneck="svq", svq_frozen=False))
    assert any(p is learnable.svq.codebook for p in learnable.parameters())


def test_bad_svq_settings_are_refused():
    with pytest.raises(ValueError, match="bottleneck='vq'"):
        STTransformerImputer(bottleneck="vq")._validate_params()
    with pytest.raises(ValueError, match="svq_placement='middle'"):
        STTransformerImputer(bottleneck="svq", svq_placement="middle")._validate_params()
    with pytest.raises(ValueError, match="svq_codes=0"):
        STTransformerImputer(bottleneck="svq", svq_codes=0)._validate_params()


def test_a_checkpoint_keeps_the_bottleneck_and_refuses_a_mismatch(small, tmp_path):
    registered = make_imputer("st-transformer-svq-post")
    assert (registered.bottleneck, registered.svq_placement) == ("svq", "post")
    model = STTransformerImputer(  # no prior: faster, and not what is tested here
        profile="tiny", epochs=1, seed=0, prior=None, bottleneck="svq", svq_placement="post"
    )
    model.fit(small)
    assert model.net_.svq is not None and model.net_.cfg.svq_placement == "post"
    path = model.save(tmp_path / "ckpt")
    meta = json.loads((path / "config.json").read_text())
    assert meta["network"]["bottleneck"] == "svq" and meta["imputer"]["bottleneck"] == "svq"
    again = STTransformerImputer.load(path)
    np.testing.assert_allclose(again.impute(small).values, model.impute(small).values, atol=1e-6)
    torch.testing.assert_close(again.net_.svq.codebook, model.net_.svq.codebook)
    meta["imputer"]["bottleneck"] = None
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"bottleneck = None but network\.bottleneck = 'svq'"):
        STTransformerImputer.load(path)


def test_train_command_with_svq(small, tmp_path):
    from stimpute_core.cli import main

    data = tmp_path / "small.nc"
    small.to_netcdf(data)
    out = tmp_path / "ckpt"
    argv = ["train", "--data", str(data), "--out", str(out), "--profile", "tiny", "--epochs",
            "1", "--prior", "none", "--bottleneck", "svq", "--svq-codes", "48", "--svq-learnable",
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    net = STTransformerImputer.load(out).net_.cfg
    assert (net.bottleneck, net.svq_codes, net.svq_frozen) == ("svq", 48, False)
    argv = [*argv[:3], "--out", str(tmp_path / "d"), "--model", "diffrecon", "--bottleneck", "svq"]
    assert main(argv) == 2
