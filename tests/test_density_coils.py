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
