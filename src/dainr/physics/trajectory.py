"""Golden-angle radial trajectories: the one place for the trajectory maths.

Conventions follow the k-space contract: radians per pixel in [-pi, pi), component 0
along the row axis (y), component 1 along the column axis (x), spokes in
acquisition order with angle ``theta_s = s * 180 deg / phi``.
"""

from __future__ import annotations

import math

import numpy as np

#: 180 deg / phi, the golden angle between successive spokes, in degrees (not radians:
#: the released DA-INR code passed 111.246 to cos as radians, an effective ~73.9 deg step).
GOLDEN_ANGLE_DEG = 180.0 / ((1.0 + math.sqrt(5.0)) / 2.0)


def spoke_angles(n_spokes: int, first: int = 0, step_deg: float = GOLDEN_ANGLE_DEG) -> np.ndarray:
    """Angles in radians of spokes ``first .. first + n_spokes - 1``."""
    s = np.arange(first, first + n_spokes, dtype=np.float64)
    return np.deg2rad(np.mod(s * step_deg, 360.0))


def readout_positions(n_readout: int) -> np.ndarray:
    """Radial positions ``k(r) = pi (2r - n_readout) / n_readout`` in [-pi, pi)."""
    r = np.arange(n_readout, dtype=np.float64)
    return np.pi * (2.0 * r - n_readout) / n_readout


def golden_angle_trajectory(
    n_spokes: int, n_readout: int, first: int = 0, step_deg: float = GOLDEN_ANGLE_DEG
) -> np.ndarray:
    """Trajectory ``[n_spokes, n_readout, 2]`` float32 per the contract."""
    theta = spoke_angles(n_spokes, first, step_deg)
    k = readout_positions(n_readout)
    traj = np.empty((n_spokes, n_readout, 2), dtype=np.float64)
    traj[..., 0] = np.sin(theta)[:, None] * k[None, :]
    traj[..., 1] = np.cos(theta)[:, None] * k[None, :]
    # Rotated samples can land a hair outside [-pi, pi) by rounding; wrap them.
    traj = np.where(traj >= np.pi, traj - 2 * np.pi, traj)
    return traj.astype(np.float32)


def cycles_to_radians(k_complex: np.ndarray) -> np.ndarray:
    """``kx + i*ky`` in cycles/pixel (the GRASP demo's ``k``) -> contract ``[..., 2]`` (y, x)."""
    traj = np.stack([2 * np.pi * k_complex.imag, 2 * np.pi * k_complex.real], axis=-1)
    traj = np.where(traj >= np.pi, traj - 2 * np.pi, traj)
    return traj.astype(np.float32)
