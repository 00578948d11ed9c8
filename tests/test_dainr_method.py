"""DA-INR as a method: configuration, the fit lowering eq. (1), quality on the small phantom."""

import dataclasses
import json

import numpy as np
import pytest
import torch

import dainr
from dainr.config import from_dict, to_dict
from dainr.methods import get_method
from dainr.methods.dainr import DainrConfig, DainrMethod
from dainr.methods.dainr.method import native_bf16
from dainr.metrics import score_series
from dainr.simulate import SimulationConfig, simulate_phantom

TINY = dict(hash_log2_size=12, deform_width=16, canon_width=16, feature_channels=8)


def test_registered_and_config_round_trips():
    cls, cfg_cls = get_method("dainr")
    assert cls is DainrMethod and cfg_cls is DainrConfig
    cfg = DainrConfig()
    assert (cfg.steps, cfg.lr, cfg.optimizer, cfg.frames_per_step) == (1000, 1e-3, "adamw", 1)
    assert (cfg.hash_levels, cfg.hash_log2_size, cfg.hash_features, cfg.hash_base_resolution) == (
        16,
        19,
        2,
        16,
    )
    assert (cfg.freq_xy, cfg.freq_t, cfg.deform_width, cfg.deform_layers) == (10, 6, 64, 5)
    back = from_dict(DainrConfig, json.loads(json.dumps(to_dict(cfg))))
    assert back == cfg
    # released code's finest level 2048 by default; None gives the paper's b = 2
    assert DainrConfig().growth == pytest.approx(128 ** (1 / 15))
    assert DainrConfig(hash_finest_resolution=None).growth == 2.0


@pytest.mark.parametrize(
    "field,value",
    [
        ("features", "both"),
        ("canonical_input", "x"),
        ("loss", "l2"),
        ("optimizer", "sgd"),
        ("steps", 0),
        ("frames_per_step", 0),
        ("hash_backend", "cuda"),
        ("mlp_precision", "fp16"),
    ],
)
def test_bad_config_values_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        DainrConfig(**{field: value})


def test_unknown_override_is_an_error(tiny_data):
    with pytest.raises(ValueError, match="unknown DainrConfig field"):
        dainr.make_method(tiny_data, "dainr", hash_size=3)


@pytest.mark.parametrize(
    "over",
    [
        {},
        {"frames_per_step": 3, "loss": "l1-ri", "features": "neighbours"},
        {"optimizer": "adam", "canonical_input": "released", "features": "off"},
    ],
)
def test_fit_lowers_the_loss(tiny_data, over):
    torch.manual_seed(0)
    m = dainr.make_method(tiny_data, "dainr", steps=100, **(TINY | over))
    losses = [m.step(i) for i in range(100)]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3])
    frames = m.current_frames()
    assert frames.shape == (6, 32, 32) and frames.dtype == torch.complex64
    m.release()


def test_data_loss_is_eq1_mean_absolute_residual(tiny_data):
    m = dainr.make_method(tiny_data, "dainr", **TINY)
    idx = torch.tensor([1, 4])
    x = torch.zeros(2, 32, 32, dtype=torch.complex64)
    # zero images: the loss is the mean modulus of the measured samples of those frames
    expected = m.prep.kspace[idx].abs().mean()
    torch.testing.assert_close(m.data_loss(x, idx), expected)
    m2 = dainr.make_method(tiny_data, "dainr", loss="l1-ri", **TINY)
    k = m2.prep.kspace[idx]
    torch.testing.assert_close(m2.data_loss(x, idx), k.real.abs().mean() + k.imag.abs().mean())


def test_beats_gridding_on_the_small_phantom_quickly():
    """Acceptance: 64 x 64, 8 frames, 13 spokes/frame, 4 coils: default DA-INR, 300 steps."""
    data = simulate_phantom(
        "cardiac", SimulationConfig(size=64, frames=8, coils=4, spokes_per_frame=13)
    )
    ref = data.reference
    grid = score_series(dainr.reconstruct(data, "nufft").frames, ref)
    # the time it takes is benchmarks/speed.py's to measure, not a unit test's
    r = dainr.reconstruct(data, "dainr", steps=300, seed=0)
    s = score_series(r.frames, ref)
    assert s.robust_psnr_mean > grid.robust_psnr_mean + 5.0, (s, grid)
    assert s.temporal_nrmse < grid.temporal_nrmse


def test_features_once_per_series(tiny_data, monkeypatch):
    from dainr.methods.dainr import method as method_mod

    calls = []
    real = method_mod.extract_features

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(method_mod, "extract_features", counting)
    m = dainr.make_method(tiny_data, "dainr", **TINY)
    for i in range(3):
        m.step(i)
    m.current_frames()
    assert len(calls) == 1


def test_config_is_stored_with_the_result(tiny_data):
    # on the CPU: "auto" resolves per device (bf16 and tcnn where a GPU has them)
    r = dainr.reconstruct(tiny_data, "dainr", steps=2, device="cpu", **TINY)
    assert r.method == "dainr" and r.config["hash_log2_size"] == 12
    assert set(r.config) == {f.name for f in dataclasses.fields(DainrConfig)}
    # "auto" choices are resolved: the stored config says what ran
    expected = "bf16" if native_bf16(torch.device("cpu")) else "fp32"
    assert r.config["mlp_precision"] == expected and r.config["hash_backend"] == "torch"


def test_bf16_mlps_fit_like_fp32(tiny_data):
    losses = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        m = dainr.make_method(tiny_data, "dainr", mlp_precision=precision, **TINY)
        assert m.config.mlp_precision == precision
        losses[precision] = [m.step(i) for i in range(60)]
        assert m.current_frames().dtype == torch.complex64
    a, b = np.mean(losses["fp32"][-10:]), np.mean(losses["bf16"][-10:])
    assert abs(a - b) < 0.25 * a


def test_hash_table_learning_rate_group(tiny_data):
    m = dainr.make_method(tiny_data, "dainr", hash_lr=1e-2, **TINY)
    groups = m.optimizer.param_groups
    table = m.model.hash.table
    assert [g["lr"] for g in groups] == [1e-3, 1e-2]
    assert groups[1]["params"] == [table]
    assert all(p is not table for p in groups[0]["params"])
    assert dainr.make_method(tiny_data, "dainr", **TINY).optimizer.param_groups[1]["lr"] == 1e-3
