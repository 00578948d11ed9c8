"""Coil sensitivity estimation from the time-averaged data (all spokes of the series).

Golden-angle spokes of the whole acquisition sample k-space almost uniformly, so a
density-compensated adjoint of all of them per coil gives well-sampled coil images,
and the centre of their Cartesian k-space is a fully sampled calibration region.
The default estimator is ESPIRiT on that region (k-space kernels, then a per-pixel
eigenvector); the older ratio estimator (low-pass coil images over their RSS,
eigen-refined over patches) stays as ``method="ratio"``.
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


#: Estimators of :func:`estimate_coil_maps`; the default won on the real-anatomy cases
#: (benchmarks/README.md, "Coil maps and GRASP against BART"): ESPIRiT's maps are 2-4x closer to the true ones.
COIL_MAP_METHODS = ("espirit", "ratio")


def estimate_coil_maps(
    kspace: np.ndarray,
    trajectory: np.ndarray,
    image_shape: tuple[int, int],
    method: str = "espirit",
    *,
    calib: int = 24,
    kernel: int = 6,
    threshold: float = 0.01,
    lowpass: float = 0.25,
    patch: int = 5,
    backend: str = "auto",
) -> np.ndarray:
    """Smooth, unit-norm (RSS 1) maps ``[C, ny, nx]`` complex64 from all spokes of the series.

    ``espirit`` (default): :func:`espirit_maps` on the ``calib`` x ``calib`` centre of the
    Cartesian k-space of the time-averaged coil images (``kernel``, ``threshold``).
    ``ratio``: the previous estimator, ratio maps of low-pass (``lowpass`` of k_max)
    coil images refined by the dominant eigenvector of the coil covariance over
    ``patch`` x ``patch`` neighbourhoods; it errs where the image has sharp edges.
    """
    if method not in COIL_MAP_METHODS:
        raise ValueError(
            f"unknown coil map estimator {method!r}: choose {', '.join(COIL_MAP_METHODS)}"
        )
    if kspace.shape[0] == 1:
        return np.ones((1, *image_shape), dtype=np.complex64)
    if method == "espirit":
        imgs = time_averaged_coil_images(kspace, trajectory, image_shape, None, backend)
        calib = min(calib, *image_shape)
        maps, _ = espirit_maps(cartesian_calibration(imgs, calib), image_shape, kernel, threshold)
        return maps.astype(np.complex64)
    return ratio_coil_maps(kspace, trajectory, image_shape, lowpass, patch, backend)


def ratio_coil_maps(
    kspace: np.ndarray,
    trajectory: np.ndarray,
    image_shape: tuple[int, int],
    lowpass: float = 0.25,
    patch: int = 5,
    backend: str = "auto",
) -> np.ndarray:
    """Ratio maps of low-pass coil images, eigen-refined over local patches (``ratio``).

    Per pixel, the dominant eigenvector of the coil covariance summed over a ``patch``
    x ``patch`` neighbourhood, its phase aligned to the first coil's.
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


# ---------------------------------------------------------------------------- ESPIRiT


def cartesian_calibration(coil_images: np.ndarray, calib: int) -> np.ndarray:
    """Centre ``[C, calib, calib]`` of the Cartesian k-space of coil images ``[C, ny, nx]``.

    Same sign and centring as the contract's NUFFT (``y(q) = sum_x m(x) exp(-2 pi i q x / n)``,
    pixel ``n // 2`` at 0), so that kernels found here act on the images as derived in
    :func:`espirit_maps`.
    """
    C, ny, nx = coil_images.shape
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(coil_images, axes=(-2, -1))), axes=(-2, -1))
    cy, cx = ny // 2, nx // 2
    h = calib // 2
    return k[:, cy - h : cy - h + calib, cx - h : cx - h + calib]


def espirit_maps(
    calibration: np.ndarray,
    image_shape: tuple[int, int],
    kernel: int = 6,
    threshold: float = 0.02,
) -> tuple[np.ndarray, np.ndarray]:
    """ESPIRiT (Uecker et al., MRM 2014) maps ``[C, ny, nx]`` and eigenvalues ``[ny, nx]``.

    The calibration matrix holds every ``kernel`` x ``kernel`` window of the Cartesian
    ``calibration[C, n, n]`` as a row; its right singular vectors with singular value
    above ``threshold`` x the largest span the signal subspace ``V``. Projecting every
    window onto ``V`` and averaging the overlapping windows is a convolution in k-space;
    in the image it acts pixel by pixel as the ``C x C`` matrix

        G(x) = 1/k^2 sum_d K(d) exp(2 pi i d x / n),
        K_{c c'}(d) = sum_{t - t' = d} (V V^H)[(c, t), (c', t')],

    whose eigenvector of eigenvalue 1 is the vector of coil sensitivities at ``x`` (up
    to a phase common to all coils). ``K`` has (2 kernel - 1)^2 taps, so ``G`` costs
    C^2 small transforms and one batch of C x C eigen-decompositions.
    """
    C, n1, n2 = calibration.shape
    k = int(kernel)
    if min(n1, n2) < k + 2:
        raise ValueError(f"calibration region {n1}x{n2} is too small for a {k}x{k} kernel")
    win = np.lib.stride_tricks.sliding_window_view(calibration, (k, k), axis=(1, 2))
    # [C, w1, w2, k, k] -> rows [w1*w2, C*k*k]
    rows = np.moveaxis(win, 0, 2).reshape(win.shape[1] * win.shape[2], C * k * k)
    # Right singular vectors from the small Gram matrix (C k^2 square): the rows are
    # combinations of the conjugates of its eigenvectors, so the signal subspace is
    # spanned by conj(u); singular values are the square roots of its eigenvalues.
    lam, u = np.linalg.eigh(rows.conj().T @ rows)
    lam, u = lam[::-1], u[:, ::-1]
    s = np.sqrt(np.clip(lam, 0, None))
    r = max(1, int((s > threshold * s[0]).sum()))
    v = u[:, :r].conj()  # [C*k*k, r]
    p = (v @ v.conj().T).reshape(C, k, k, C, k, k)
    m = 2 * k - 1
    kern = np.zeros((C, C, m, m), dtype=np.complex128)
    for dy in range(-(k - 1), k):
        ty = slice(max(dy, 0), k + min(dy, 0))
        tyy = slice(max(-dy, 0), k + min(-dy, 0))  # t' = t - d
        for dx in range(-(k - 1), k):
            tx = slice(max(dx, 0), k + min(dx, 0))
            txx = slice(max(-dx, 0), k + min(-dx, 0))
            kern[:, :, dy + k - 1, dx + k - 1] = np.einsum(
                "cabdab->cd", p[:, ty, tx][:, :, :, :, tyy, txx]
            )
    ny, nx = int(image_shape[0]), int(image_shape[1])
    d = np.arange(-(k - 1), k)
    ey = np.exp(2j * np.pi * np.outer(np.arange(ny) - ny // 2, d) / ny)  # [ny, m]
    ex = np.exp(2j * np.pi * np.outer(np.arange(nx) - nx // 2, d) / nx)  # [nx, m]
    g = np.einsum("ym,cdmn->ycdn", ey, kern)
    g = np.einsum("ycdn,xn->yxcd", g, ex) / (k * k)
    g = (g + np.conj(np.swapaxes(g, -1, -2))) / 2  # Hermitian up to rounding
    w, vecs = np.linalg.eigh(g)
    maps = np.moveaxis(vecs[..., -1], -1, 0)  # [C, ny, nx]
    return _align_phase(maps), w[..., -1].real


def _align_phase(maps: np.ndarray) -> np.ndarray:
    """Remove the per-pixel phase the eigen-decomposition leaves free, smoothly.

    Each pixel's vector is rotated so that its projection on one fixed coil combination
    (the dominant singular vector of all pixels' vectors: a virtual body coil) is real,
    which is smooth wherever that combination sees signal -- unlike aligning to one
    physical coil, whose sensitivity vanishes far from it.
    """
    C = maps.shape[0]
    flat = maps.reshape(C, -1)
    _, _, wh = np.linalg.svd(flat @ flat.conj().T)
    ref = wh[0].conj() @ flat  # [ny*nx]
    rot = np.exp(-1j * np.angle(ref)).reshape(maps.shape[1:])
    return maps * rot[None]
