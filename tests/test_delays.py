"""Radial gradient delays: RING estimation, correction in the preparation, simulate/recon flags."""

import json

import h5py
import numpy as np
import pytest

import dainr
from dainr.cli import main
from dainr.physics.delays import apply_delays, estimate_delays
from dainr.physics.trajectory import golden_angle_trajectory
from dainr.prepare import prepare_series
from dainr.simulate import SimulationConfig, simulate_phantom

DELAY = (0.6, -0.4, 0.1)


def simulate_cardiac(size: int, frames: int, coils: int, delay=None):
    cfg = SimulationConfig(
        size=size, frames=frames, coils=coils, noise=0.01, seed=0, gradient_delay=delay
    )
    return simulate_phantom("cardiac", cfg)


def test_apply_delays_moves_each_spoke_by_s_n():
    traj = golden_angle_trajectory(5, 64)
    moved = apply_delays(traj, DELAY)
    dk = 2 * np.pi / 64
    theta = np.deg2rad(np.arange(5) * 180 / ((1 + 5**0.5) / 2))
    nx, ny = np.cos(theta), np.sin(theta)
    sx, sy, sxy = DELAY
    want_y = dk * (sxy * nx + sy * ny)
    want_x = dk * (sx * nx + sxy * ny)
    got = (moved - traj)[:, 32]  # the centre sample: no wrap-around there
    np.testing.assert_allclose(got[:, 0], want_y, atol=1e-5)
    np.testing.assert_allclose(got[:, 1], want_x, atol=1e-5)
    assert moved.dtype == np.float32 and moved.min() >= -np.pi and moved.max() < np.pi


def test_ring_recovers_an_anisotropic_delay():
    """Cardiac phantom 64², 8 coils, 312 golden-angle spokes: each component within 0.05
    samples (measured: errors about 1e-4 samples, 0.6 s)."""
    data = simulate_cardiac(64, 24, 8, DELAY)
    assert data.attrs["gradient_delay_samples"] == list(DELAY)
    est = estimate_delays(data.kspace, data.trajectory)
    np.testing.assert_allclose(est, DELAY, atol=0.05)


def test_ring_finds_no_delay_where_there_is_none():
    data = simulate_cardiac(48, 16, 6)
    assert np.abs(estimate_delays(data.kspace, data.trajectory)).max() < 0.02


def test_ring_follows_a_delay_beyond_its_first_search():
    """Crossings beyond the first search range: found by searching again around the
    crossings the first estimate predicts."""
    delay = (5.0, -4.0, 1.0)
    data = simulate_cardiac(48, 16, 6, delay)
    np.testing.assert_allclose(estimate_delays(data.kspace, data.trajectory), delay, atol=0.05)


def test_correction_restores_the_delay_free_grasp():
    """GRASP, cardiac 48², 16 frames, 6 coils, delays (0.6, -0.4, 0.1) samples. Measured
    robust PSNR: delay-free 31.88 dB; delayed uncorrected 23.57 dB; delayed with
    ``delays="auto"`` 31.99 dB."""
    clean, delayed = simulate_cardiac(48, 16, 6), simulate_cardiac(48, 16, 6, DELAY)

    def psnr(data, mode):
        r = dainr.reconstruct(data, "grasp", delays=mode)
        return dainr.score_series(r.frames, data.reference).robust_psnr_mean, r

    ref, _ = psnr(clean, "off")
    corrected, r = psnr(delayed, "auto")
    uncorrected, _ = psnr(delayed, "off")
    assert abs(corrected - ref) < 0.3
    assert uncorrected < ref - 3.0
    est = json.loads(r.attrs["preparation"])["gradient_delays"]
    np.testing.assert_allclose(est, DELAY, atol=0.05)


def test_bad_delays_mode_is_one_line(tiny_data):
    with pytest.raises(ValueError, match="delays must be one of off, auto, got 'on'"):
        prepare_series(tiny_data, delays="on", device="cpu")


def test_estimate_refuses_mismatched_shapes():
    traj = golden_angle_trajectory(10, 32)
    with pytest.raises(ValueError, match="expected"):
        estimate_delays(np.zeros((2, 10, 16), np.complex64), traj)


def test_simulate_and_recon_flags(tmp_path, capsys):
    kfile, out = tmp_path / "k.h5", tmp_path / "r.h5"
    args = ["simulate", "cardiac", "--size", "32", "--frames", "8", "--coils", "4"]
    assert main([*args, "--gradient-delay", "0.6,-0.4,0.1", "--out", str(kfile)]) == 0
    with h5py.File(kfile) as f:
        np.testing.assert_allclose(f.attrs["gradient_delay_samples"], DELAY)
    rc = main(
        ["recon", str(kfile), "--method", "nufft", "--delays", "auto", "--out", str(out)]
        + ["--quiet"]
    )
    assert rc == 0
    with h5py.File(out) as f:
        est = json.loads(f.attrs["preparation"])["gradient_delays"]
    np.testing.assert_allclose(est, DELAY, atol=0.05)
    with pytest.raises(SystemExit):
        main([*args, "--gradient-delay", "0.6", "--out", str(kfile)])
    assert "expected SX,SY or SX,SY,SXY" in capsys.readouterr().err
