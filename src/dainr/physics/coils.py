"""Coil sensitivity estimation from the time-averaged data (all spokes of the series).

Golden-angle spokes of the whole acquisition sample k-space almost uniformly, so a
density-compensated adjoint of all of them per coil gives well-sampled coil images.
Their low-resolution versions divided by the root-sum-of-squares are the classic
ratio maps; an eigen-refinement over local patches (the idea of ESPIRiT's calibration
without its k-space kernels) makes them smooth and phase-consistent.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import uniform_filter

from .density import ramp_dcf
from .operator import RadialOperator


def time_averaged_coil_images(
    kspace: np.ndarray,
    trajectory: np.ndarray,
    image_shape: tuple[int, int],
    lowpass: float | None = None,
    backend: str = "auto",
) -> np.ndarray:
    """``kspace[C, S, R]``, ``trajectory[S, R, 2]`` -> coil images ``[C, ny, nx]``.

    ``lowpass`` in (0, 1]: keep a Hann window out to that fraction of k_max.
    """
    n_spokes, n_readout = trajectory.shape[:2]
    om = trajectory.reshape(1, -1, 2)
    w = ramp_dcf(om, n_spokes, n_readout)[0]
    if lowpass is not None:
        kr = np.sqrt((om[0].astype(np.float64) ** 2).sum(-1)) / np.pi
        w = w * np.where(kr < lowpass, 0.5 + 0.5 * np.cos(np.pi * kr / lowpass), 0.0)
    op = RadialOperator(om, image_shape, None, backend=backend)
    y = torch.from_numpy((kspace.reshape(kspace.shape[0], -1) * w[None]).astype(np.complex64))
    return op.adjoint_coils(y[None])[0].numpy()


def estimate_coil_maps(
    kspace: np.ndarray,
    trajectory: np.ndarray,
    image_shape: tuple[int, int],
    lowpass: float = 0.25,
    patch: int = 5,
    backend: str = "auto",
) -> np.ndarray:
    """Smooth, RSS-normalised maps ``[C, ny, nx]`` complex64.

    Ratio maps of low-pass coil images, then, per pixel, the dominant eigenvector of
    the coil covariance summed over a ``patch`` x ``patch`` neighbourhood, its phase
    aligned to the first coil's so that maps are smooth across pixels.
    """
    imgs = time_averaged_coil_images(kspace, trajectory, image_shape, lowpass, backend)
    C = imgs.shape[0]
    if C == 1:
        return np.ones_like(imgs, dtype=np.complex64)
    cov = imgs[:, None] * imgs[None].conj()  # [C, C, ny, nx]
    cov = uniform_filter(cov.real, size=(1, 1, patch, patch)) + 1j * uniform_filter(
        cov.imag, size=(1, 1, patch, patch)
    )
    cov = np.moveaxis(cov, (0, 1), (-2, -1))  # [ny, nx, C, C]
    _, vecs = np.linalg.eigh(cov)
    v = vecs[..., -1]  # dominant eigenvector, [ny, nx, C]
    ref = v[..., :1]
    v = v * np.exp(-1j * np.angle(ref))
    maps = np.moveaxis(v, -1, 0)
    # Where the object has no signal the eigenvector is noise; that is harmless because
    # the image there is zero, and the RSS of the maps is one everywhere.
    return maps.astype(np.complex64)
