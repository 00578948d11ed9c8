"""Golden-angle radial trajectories: the one place for the trajectory maths.

Conventions follow the k-space contract: radians per pixel in [-pi, pi), component 0
along the row axis (y), component 1 along the column axis (x), spokes in
acquisition order with angle ``theta_s = s * 180 deg / phi``.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError

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


#: the shortest reach (rad/pixel) a radial trajectory may have: a spoke over the image's
#: resolution reaches pi; half of that is a matrix twice the acquired resolution, less is
#: a unit mistake (cycles per pixel reach 0.5)
SHORTEST_REACH = np.pi / 4


def check_radial(
    trajectory: np.ndarray,
    path,
    dataset: str | None,
    units_hint: str = "expected radians per pixel (cycles per pixel need a factor 2*pi)",
) -> None:
    """Spokes ``[..., n_spokes, n_readout, 2]`` that a radial reconstruction can use: not
    all at the centre, reaching out towards the readout's edge, at two angles or more.
    ``units_hint`` ends the message of a trajectory that stops short (a unit mistake)."""
    t = np.asarray(trajectory, dtype=np.float64).reshape(-1, *trajectory.shape[-2:])
    radius = np.sqrt((t**2).sum(-1))  # [spokes, readout]
    peak = float(radius.max())
    if peak == 0:
        raise InputError(
            path,
            dataset,
            "is all zeros: every sample at the k-space centre; expected radial spokes",
        )
    if peak < SHORTEST_REACH:
        raise InputError(
            path,
            dataset,
            f"reaches only {peak:.3g} rad/pixel, not the readout's edge (pi): {units_hint}",
        )
    far = t[np.arange(len(t)), radius.argmax(-1)]  # each spoke's outermost sample
    angles = np.mod(np.arctan2(far[:, 0], far[:, 1]), np.pi)  # a line: theta = theta + pi
    distinct = np.unique(np.round(angles / 1e-4)).size
    if distinct < 2:
        raise InputError(
            path,
            dataset,
            f"holds {distinct} spoke angle over {len(t)} spokes: radial k-space needs at least two",
        )
