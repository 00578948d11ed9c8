"""Golden-angle radial sampling of coil images, and measurement noise.

What a scanner does to an image series: the ``.mat`` cine layout (fully sampled coil
images) is undersampled with it on load, and every simulation acquires through it.
"""

from __future__ import annotations

import numpy as np
import torch

from .operator import RadialOperator
from .trajectory import golden_angle_trajectory


def sample_coil_images(
    coil_images: np.ndarray,
    spokes_per_frame: int,
    readout_oversampling: float = 2.0,
    first_spoke: int = 0,
    backend: str = "auto",
    gradient_delay: tuple[float, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``coil_images[F, C, ny, nx]`` -> (``kspace[C, F*S, R]``, ``trajectory[F*S, R, 2]``).

    Frame ``f`` is sampled by spokes ``f*S .. f*S+S-1`` of one continuous golden-angle
    sequence, so the file can be re-binned with any spokes-per-frame later.
    ``gradient_delay`` ``(s_x, s_y[, s_xy])`` in samples takes the samples where a
    scanner with those delays would (:func:`dainr.physics.delays.apply_delays`) while
    the returned trajectory stays the nominal one, as a scanner reports it.
    """
    F, C, ny, nx = coil_images.shape
    n_readout = int(round(readout_oversampling * max(ny, nx)))
    n_spokes = F * spokes_per_frame
    traj = golden_angle_trajectory(n_spokes, n_readout, first=first_spoke)
    actual = traj
    if gradient_delay is not None:
        from .delays import apply_delays

        actual = apply_delays(traj, gradient_delay)
    om = actual.reshape(F, spokes_per_frame * n_readout, 2)
    op = RadialOperator(om, (ny, nx), None, backend=backend)
    x = torch.from_numpy(np.ascontiguousarray(coil_images.astype(np.complex64)))
    with torch.no_grad():
        y = op.backend.forward(x, op.omega).numpy()  # [F, C, S*R]
    y = y.reshape(F, C, spokes_per_frame, n_readout).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(y.reshape(C, n_spokes, n_readout)), traj


def add_noise(kspace: np.ndarray, noise_level: float, rng: np.random.Generator) -> np.ndarray:
    """Complex Gaussian noise with std ``noise_level`` times the RMS of the samples."""
    if noise_level <= 0:
        return kspace
    sigma = noise_level * np.sqrt(np.mean(np.abs(kspace) ** 2))
    noise = rng.standard_normal(kspace.shape) + 1j * rng.standard_normal(kspace.shape)
    return (kspace + sigma / np.sqrt(2) * noise).astype(np.complex64)


__all__ = ["add_noise", "sample_coil_images"]
