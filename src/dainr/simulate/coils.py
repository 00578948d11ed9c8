"""Simulated receive-coil sensitivities: an idealised ring (birdcage) and a loop-coil array."""

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


def loop_array_maps(
    n_coils: int,
    shape: tuple[int, int],
    seed: int = 0,
    ring: tuple[float, float] = (1.25, 1.3),
    loop_radius: float = 0.32,
    offset_sd: float = 0.25,
    perturbation: float = 0.12,
    normalize: bool = True,
) -> np.ndarray:
    """Sensitivities ``[n_coils, ny, nx]`` complex64 of an array of loop coils, by Biot-Savart.

    Closer to a real cardiac/body array than :func:`birdcage_maps`: ``n_coils`` circular
    loops of radius ``loop_radius`` (half-FOV units) lie tangent to an elliptical ring of
    semi-axes ``ring`` (rows, columns) around the object, half of them in front, half
    behind, at seeded angles, through-plane offsets (std ``offset_sd``) and tilts. The
    field of each loop is integrated numerically (Biot-Savart over 48 segments) at every
    pixel of the slice; with the main field through the slice, the receive sensitivity
    is the conjugate circular component ``Bx - i By``. That gives the real fall-off with
    depth (faster than 1/r near the loop), coil-specific magnitude asymmetry and a phase
    that winds around each coil. A seeded smooth random perturbation of relative
    magnitude and phase (``perturbation``; the body's dielectric effects, cable phase)
    makes the maps depart from any closed form, so that estimators are not flattered.

    ``normalize=True`` scales the maps to root-sum-of-squares 1 at every pixel (as
    :func:`birdcage_maps`; the coil-combined image is then the object itself).
    """
    from scipy.ndimage import gaussian_filter

    if n_coils < 1:
        raise ValueError(f"n_coils must be >= 1, got {n_coils}")
    rng = np.random.default_rng(seed)
    ny, nx = int(shape[0]), int(shape[1])
    half = max(ny, nx) / 2
    y = (np.arange(ny) - ny // 2)[:, None] / half
    x = (np.arange(nx) - nx // 2)[None, :] / half
    pix = np.stack(np.broadcast_arrays(x, y, np.zeros_like(x * y)), -1)  # [ny, nx, 3] (x, y, z)
    # Angles: two halves (anterior, posterior) of evenly spread elements, jittered.
    base = (np.arange(n_coils) + 0.5) / n_coils * 2 * np.pi
    angles = base + rng.uniform(-0.25, 0.25, n_coils) * 2 * np.pi / n_coils
    phi = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    maps = np.empty((n_coils, ny, nx), dtype=np.complex128)
    for c, a in enumerate(angles):
        centre = np.array([ring[1] * np.cos(a), ring[0] * np.sin(a), rng.normal(0, offset_sd)])
        # Outward normal of the ellipse at this angle; the loop's plane is tangent to it.
        normal = np.array([np.cos(a) / ring[1], np.sin(a) / ring[0], 0.0])
        normal /= np.linalg.norm(normal)
        tilt = rng.uniform(-0.3, 0.3)  # radians about the tangent direction
        tangent = np.array([-normal[1], normal[0], 0.0])
        vert = np.array([0.0, 0.0, 1.0])
        vert_t = -np.sin(tilt) * normal + np.cos(tilt) * vert
        r = loop_radius * rng.uniform(0.85, 1.15)
        pts = centre + r * (np.cos(phi)[:, None] * tangent + np.sin(phi)[:, None] * vert_t)
        dl = np.roll(pts, -1, axis=0) - pts
        mid = pts + dl / 2
        d = pix[:, :, None, :] - mid  # [ny, nx, 48, 3]
        dist = np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 0.02)
        b = np.cross(dl, d / dist**3).sum(2)  # [ny, nx, 3]
        maps[c] = b[..., 0] - 1j * b[..., 1]
        if perturbation > 0:
            sigma = 0.3 * half
            g = [
                gaussian_filter(rng.standard_normal((ny, nx)), sigma, mode="reflect") for _ in "ab"
            ]
            g = [v / (v.std() or 1.0) for v in g]
            maps[c] *= (1 + perturbation * g[0]) * np.exp(1j * 2 * perturbation * g[1])
    if normalize:
        maps /= np.sqrt((np.abs(maps) ** 2).sum(0, keepdims=True))
    else:
        maps /= np.abs(maps).max()
    return maps.astype(np.complex64)
