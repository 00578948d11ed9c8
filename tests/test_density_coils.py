import numpy as np
import pytest
import torch

import dainr
from dainr.metrics import score_series
from dainr.physics import RadialOperator, golden_angle_trajectory, pipe_menon_dcf, ramp_dcf

from .conftest import make_phantom_data


def test_ramp_dcf_makes_the_normal_operator_close_to_identity_at_the_centre():
    # Fully sampled radial (more than pi/2 * N spokes): A^H W A of a point is a peak whose
    # height is the sampled disc's share of the Cartesian square, pi r^2 / (2r)^2 = pi/4.
    n = 32
    traj = golden_angle_trajectory(64, 2 * n).reshape(1, -1, 2)
    w = torch.from_numpy(ramp_dcf(traj, 64, 2 * n))
    op = RadialOperator(traj, (n, n), None)
    x = torch.zeros(1, n, n, dtype=torch.complex64)
    x[0, n // 2, n // 2] = 1
    psf = op.normal(x, weights=w)[0].abs()
    assert psf.argmax() == n // 2 * n + n // 2
    assert float(psf.max()) == pytest.approx(np.pi / 4, rel=0.03)


def test_pipe_menon_is_positive_ramp_like_and_has_the_ramps_total():
    traj = golden_angle_trajectory(4 * 13, 64).reshape(4, -1, 2)
    pm = pipe_menon_dcf(traj, (32, 32), 13, 64)
    ramp = ramp_dcf(traj, 13, 64)
    assert np.all(pm > 0)
    np.testing.assert_allclose(pm.sum(-1), ramp.sum(-1), rtol=1e-4)
    spoke = pm[0].reshape(13, 64)[0]
    assert spoke[32] < spoke[40] < spoke[48]  # grows from the centre outwards


def test_estimated_coil_maps_come_close_to_true_maps():
    data = make_phantom_data(n=48, n_frames=6, n_coils=6)
    true = dainr.reconstruct(data, "nufft")
    data.coil_maps = None
    est = dainr.reconstruct(data, "nufft")
    assert est.attrs["coil_maps_source"] == "estimated"
    s_true = score_series(true.frames, data.reference)
    s_est = score_series(est.frames, data.reference)
    assert s_est.robust_psnr_mean > s_true.robust_psnr_mean - 1.5


def test_nufft_baseline_recovers_a_fully_sampled_series():
    data = make_phantom_data(n=32, n_frames=2, n_coils=4, spokes_per_frame=64)
    rec = dainr.reconstruct(data, "nufft")
    s = score_series(rec.frames, data.reference)
    assert s.robust_psnr_mean > 27
    # the intensity scale is the object's own (not arbitrary): LS gain close to 1
    x, r = np.abs(rec.frames), np.abs(data.reference)
    assert 0.8 < (x * r).sum() / (x * x).sum() < 1.25


def _loop_coil_case(n=64, frames=12, coils=8):
    from dainr.simulate import acquire_series, cardiac_phantom, loop_array_maps

    series = cardiac_phantom(n, frames, seed=0)
    maps = loop_array_maps(coils, (n, n), seed=0)
    return series, maps, acquire_series(series, maps, 13, noise_level=0.01)


def _sense_time_average(data, maps, iters=25):
    """CG-SENSE of all spokes as one frame (well posed: maps errors dominate its error)."""
    traj = data.trajectory.reshape(1, -1, 2)
    op = RadialOperator(traj, data.image_shape, maps)
    w = torch.from_numpy(ramp_dcf(traj, data.n_spokes, data.n_readout))
    y = torch.from_numpy(data.kspace.reshape(1, data.n_coils, -1))
    b = op.adjoint(y * w[:, None])
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rr = torch.vdot(r.flatten(), r.flatten()).real
    for _ in range(iters):
        ap = op.normal(p, weights=w)
        a = rr / torch.vdot(p.flatten(), ap.flatten()).real
        x, r = x + a * p, r - a * ap
        rr, rr_old = torch.vdot(r.flatten(), r.flatten()).real, rr
        p = r + (rr / rr_old) * p
    return x[0].numpy()


def test_espirit_maps_match_a_loop_coil_array_and_beat_the_ratio_estimator():
    from dainr.physics.coils import estimate_coil_maps

    series, maps, data = _loop_coil_case()
    mag = np.abs(series).mean(0)

    def mismatch(m):  # energy of the coil images no image can explain with these maps
        inner = np.abs((m.conj() * maps).sum(0)) ** 2
        return float(((1 - inner) * mag**2).sum() / (mag**2).sum())

    esp = estimate_coil_maps(data.kspace, data.trajectory, data.image_shape)  # default
    ratio = estimate_coil_maps(data.kspace, data.trajectory, data.image_shape, "ratio")
    assert np.allclose(np.sqrt((np.abs(esp) ** 2).sum(0)), 1, atol=1e-4)
    assert mismatch(esp) < 1e-3 < 2e-3 < mismatch(ratio)
    # SENSE of the time-averaged data: the estimated maps do as well as the true ones
    # inside the object (outside it the data say nothing about the maps).
    truth = np.abs(series.mean(0))
    obj = truth > 0.05
    scores = {}
    for name, m in (("true", maps), ("espirit", esp), ("ratio", ratio)):
        x = np.abs(_sense_time_average(data, m))
        g = (x * truth).sum() / (x * x).sum()
        scores[name] = 10 * np.log10(truth.max() ** 2 / np.mean((g * x - truth)[obj] ** 2))
    assert scores["espirit"] > scores["true"] - 0.3
    assert scores["ratio"] < scores["true"] - 0.3  # the old estimator misses this bar


def test_espirit_rejects_a_too_small_calibration_region():
    from dainr.physics.coils import espirit_maps

    with pytest.raises(ValueError, match="too small"):
        espirit_maps(np.ones((2, 6, 6), np.complex64), (16, 16), kernel=6)
    with pytest.raises(ValueError, match="unknown coil map estimator"):
        dainr.physics.coils.estimate_coil_maps(
            np.ones((2, 3, 8), np.complex64), np.zeros((3, 8, 2), np.float32), (8, 8), "nlinv"
        )


def _with_file_dcf(data, weights):
    import dataclasses

    return dataclasses.replace(data, dcf=weights.astype(np.float32))


def test_a_file_dcf_zero_at_the_centre_and_off_scale_gives_the_ramps_series():
    """The weights of the GRASP demo's .mat files are |k|: exactly zero at the centre,
    on their own scale. Their shape is used, not their scale, and the centre keeps the
    ramp's weight: GRASP and DA-INR then agree with --dcf ramp. (Without the rule,
    |k| x 1000 cost GRASP 15 dB on a perfusion series and garbled its contrast curve.)"""
    data = make_phantom_data(n=32, n_frames=6, n_coils=4, spokes_per_frame=13, noise=0.01)
    k = np.sqrt((data.trajectory.astype(np.float64) ** 2).sum(-1))
    assert np.count_nonzero(k == 0) == data.n_spokes  # one centre sample per spoke
    ref = data.reference
    fast = {"hash_log2_size": 12, "hash_levels": 4, "deform_width": 16, "canon_width": 16}
    for method, over in (("grasp", {}), ("dainr", {"steps": 60, **fast})):
        base = dainr.reconstruct(data, method, dcf="ramp", device="cpu", **over)
        want = score_series(base.frames, ref).robust_psnr_mean
        for scale in (1.0, 1000.0):
            r = dainr.reconstruct(
                _with_file_dcf(data, scale * k / k.max()), method, device="cpu", **over
            )
            assert r.attrs["preparation"].count('"dcf": "file"') == 1
            got = score_series(r.frames, ref).robust_psnr_mean
            assert abs(got - want) < 0.2, (method, scale, got, want)


def test_file_dcf_rule_and_weights_that_are_not_density_compensation():
    from dainr.errors import InputError
    from dainr.physics.density import file_dcf

    data = make_phantom_data(n=32, n_frames=2, n_coils=2, spokes_per_frame=13)
    series = data.binned(13)
    ramp = ramp_dcf(series.trajectory, 13, data.n_readout)
    k = np.sqrt((series.trajectory.astype(np.float64) ** 2).sum(-1))
    w = file_dcf(5.0 * k, series.trajectory, 13, data.n_readout)
    np.testing.assert_allclose(w.sum(-1), ramp.sum(-1), rtol=1e-3)  # the ramp's scale
    assert w.min() == pytest.approx(ramp.min()) and np.all(w[k == 0] > 0)  # a centre kept
    zero = np.zeros((data.n_spokes, data.n_readout), np.float32)
    zero[0, 0] = 1.0  # all but one sample weighed zero
    with pytest.raises(InputError, match="dcf.*weighs .* measured samples zero"):
        dainr.reconstruct(_with_file_dcf(data, zero), "nufft", device="cpu")
