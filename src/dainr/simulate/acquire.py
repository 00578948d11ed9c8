"""Retrospective golden-angle radial sampling of a known image series."""

from __future__ import annotations

import numpy as np

from ..data import KSpaceData
from ..physics.sampling import add_noise, sample_coil_images


def acquire_series(
    frames: np.ndarray,
    coil_maps: np.ndarray,
    spokes_per_frame: int,
    readout_oversampling: float = 2.0,
    noise_level: float = 0.0,
    seed: int = 0,
    attrs: dict | None = None,
    extra: dict[str, np.ndarray] | None = None,
    backend: str = "auto",
    gradient_delay: tuple[float, ...] | None = None,
) -> KSpaceData:
    """A contract :class:`KSpaceData` of ``frames[F, ny, nx]`` seen through ``coil_maps[C, ny, nx]``.

    The frames are stored as ``/reference`` and the maps as ``/coil_maps``; ``extra``
    datasets (e.g. ROI masks and curves) travel with the data. ``gradient_delay``
    ``(s_x, s_y[, s_xy])``, in readout samples, takes the samples where a scanner with
    those delays would, while the file keeps the nominal trajectory (attribute
    ``gradient_delay_samples``).
    """
    frames = np.asarray(frames)
    coil_images = frames[:, None] * coil_maps[None]
    kspace, traj = sample_coil_images(
        coil_images,
        spokes_per_frame,
        readout_oversampling,
        backend=backend,
        gradient_delay=gradient_delay,
    )
    kspace = add_noise(kspace, noise_level, np.random.default_rng(seed))
    a = dict(attrs or {})
    a.update(spokes_per_frame=int(spokes_per_frame), noise_level=float(noise_level), seed=int(seed))
    if gradient_delay is not None:
        d = [float(v) for v in gradient_delay]
        a["gradient_delay_samples"] = d + [0.0] * (3 - len(d))
    ref = frames.astype(np.complex64) if np.iscomplexobj(frames) else frames.astype(np.float32)
    return KSpaceData(
        kspace=kspace.astype(np.complex64),
        trajectory=traj,
        image_shape=frames.shape[1:],
        coil_maps=coil_maps.astype(np.complex64),
        reference=ref,
        attrs=a,
        extra=dict(extra or {}),
    )


def quantize_below_noise(
    kspace: np.ndarray, noise_level: float, fraction: float = 1 / 8
) -> tuple[np.ndarray, float]:
    """Round real and imaginary parts to a power-of-two step below the noise: (samples, step).

    The step is at most ``fraction`` of the per-component noise std that
    :func:`add_noise` used (its ``noise_level`` x RMS / sqrt 2), so the rounding adds
    a variance of ``step^2 / 12`` -- under 0.1 % of the noise's at 1/8. A power of two
    leaves trailing zero bits in every float32, which is what lets gzip halve a shipped
    file of otherwise incompressible noisy samples.
    """
    if noise_level <= 0:
        return kspace, 0.0
    sigma = noise_level * float(np.sqrt(np.mean(np.abs(kspace) ** 2))) / np.sqrt(2)
    step = float(2.0 ** np.floor(np.log2(sigma * fraction)))
    q = np.round(kspace.real / step) * step + 1j * (np.round(kspace.imag / step) * step)
    return q.astype(np.complex64), step
