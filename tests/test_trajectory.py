import numpy as np
import pytest

from dainr.errors import InputError
from dainr.physics import GOLDEN_ANGLE_DEG, bin_spokes, golden_angle_trajectory, plan_binning
from dainr.physics.trajectory import cycles_to_radians, readout_positions, spoke_angles


def test_golden_angle_is_180_over_phi_in_degrees():
    assert GOLDEN_ANGLE_DEG == pytest.approx(111.2461179749811)
    theta = spoke_angles(3)
    assert np.rad2deg(theta[1] - theta[0]) == pytest.approx(111.246, abs=1e-3)


def test_trajectory_follows_the_contract():
    traj = golden_angle_trajectory(5, 8)
    assert traj.shape == (5, 8, 2) and traj.dtype == np.float32
    assert traj.min() >= -np.pi and traj.max() < np.pi
    # spoke 0 lies along x (theta = 0): y component zero, x = pi (2r - R) / R
    np.testing.assert_allclose(traj[0, :, 0], 0, atol=1e-6)
    np.testing.assert_allclose(traj[0, :, 1], readout_positions(8), atol=1e-6)
    assert traj[0, 4, 1] == 0  # the centre sample r = R/2 is at k = 0
    # spoke 1 at 111.246 deg: direction (sin, cos)
    th = np.deg2rad(GOLDEN_ANGLE_DEG)
    np.testing.assert_allclose(traj[1, 0], -np.pi * np.array([np.sin(th), np.cos(th)]), atol=1e-5)


def test_cycles_to_radians_maps_kx_to_columns():
    t = cycles_to_radians(np.array([0.25 + 0.1j]))
    np.testing.assert_allclose(t[0], [2 * np.pi * 0.1, 2 * np.pi * 0.25], rtol=1e-6)


def test_binning_drops_leftovers_and_keeps_order(caplog):
    b = plan_binning(30, 13)
    assert (b.n_frames, b.n_dropped) == (2, 4)
    assert "dropped" in caplog.text
    spokes = np.arange(30)
    binned = bin_spokes(spokes, b, spoke_axis=0)
    np.testing.assert_array_equal(binned[1], np.arange(13, 26))
    k = np.arange(2 * 30 * 3).reshape(2, 30, 3)  # [coils, spokes, readout]
    kb = bin_spokes(k, b, spoke_axis=1)
    assert kb.shape == (2, 2, 13, 3)
    np.testing.assert_array_equal(kb[1, :, 0], k[:, 13])


def test_binning_rejects_too_few_spokes():
    with pytest.raises(InputError, match="too few spokes for one frame"):
        plan_binning(10, 13, "f.h5")
