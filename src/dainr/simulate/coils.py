"""Simulated receive-coil sensitivities: a birdcage-like ring of loops around the object."""

from __future__ import annotations

import numpy as np


def birdcage_maps(
    n_coils: int,
    shape: tuple[int, int],
    radius: float = 1.5,
    normalize: bool = True,
) -> np.ndarray:
    """Sensitivities ``[n_coils, ny, nx]`` complex64 of ``n_coils`` loops on a ring.

    Coil ``c`` sits at angle ``2 pi c / n_coils`` on a circle of ``radius`` (in units of
    half the field of view, so 1.5 is half a FOV-radius outside the image edge). Its
    sensitivity at a pixel falls off as ``1 / r`` with the distance ``r`` to the coil
    (the in-plane field of a long straight conductor, Biot-Savart) and its phase is the
    direction from the coil to the pixel plus the coil's own angle, which makes
    neighbouring coils' phases differ smoothly as in a real array.

    ``normalize=True`` (default) scales the maps so that their root-sum-of-squares is 1
    at every pixel: then the coil-combined image of the coil images is the object
    itself, and the maps are what :func:`dainr.physics.coils.estimate_coil_maps`
    estimates (it returns RSS-normalised maps too). ``normalize=False`` keeps the
    raw ``1 / r`` fall-off (brighter near the coils), as uncombined scanner data look.
    """
    if n_coils < 1:
        raise ValueError(f"n_coils must be >= 1, got {n_coils}")
    if radius <= 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    ny, nx = int(shape[0]), int(shape[1])
    # Normalised positions, pixel n//2 at 0 as the contract centres images; the longer
    # side spans [-1, 1) so that the ring is round on rectangular matrices.
    half = max(ny, nx) / 2
    y = (np.arange(ny) - ny // 2)[:, None] / half
    x = (np.arange(nx) - nx // 2)[None, :] / half
    maps = np.empty((n_coils, ny, nx), dtype=np.complex128)
    for c in range(n_coils):
        a = 2 * np.pi * c / n_coils
        dy, dx = y - radius * np.sin(a), x - radius * np.cos(a)
        r = np.sqrt(dy**2 + dx**2)
        maps[c] = np.exp(1j * (np.arctan2(dy, dx) + a)) / np.maximum(r, 1e-6)
    if normalize:
        maps /= np.sqrt((np.abs(maps) ** 2).sum(0, keepdims=True))
    else:
        maps /= np.abs(maps).max()  # the brightest coil pixel has sensitivity 1
    return maps.astype(np.complex64)
