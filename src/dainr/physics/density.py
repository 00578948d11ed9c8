"""Density compensation of radial samples: analytic ramp and Pipe-Menon iteration."""

from __future__ import annotations

import numpy as np
import torch

from .operator import RadialOperator


def ramp_dcf(trajectory: np.ndarray, spokes_per_frame: int, n_readout: int) -> np.ndarray:
    """Analytic radial ramp ``|k|`` scaled so that ``A^H W A`` is close to identity.

    A radial sample covers ``|k| dk dtheta`` of k-space with ``dk = 2 pi / n_readout``
    and ``dtheta = pi / spokes`` (each spoke crosses the centre); the inverse Fourier
    integral contributes ``1 / (2 pi)^2``. The centre sample gets the area of its own
    disc share so that the DC term is not lost.
    """
    k = np.sqrt((trajectory.astype(np.float64) ** 2).sum(-1))
    dk = 2 * np.pi / n_readout
    w = k * dk * (np.pi / spokes_per_frame) / (2 * np.pi) ** 2
    centre = np.pi * (dk / 2) ** 2 / (2 * spokes_per_frame) / (2 * np.pi) ** 2
    return np.maximum(w, centre).astype(np.float32)


def pipe_menon_dcf(
    trajectory: np.ndarray,
    image_shape: tuple[int, int],
    spokes_per_frame: int,
    n_readout: int,
    n_iter: int = 20,
    kernel_halfwidth: float = 2.0,
    backend: str = "auto",
    device: str = "cpu",
) -> np.ndarray:
    """Iterative weights ``w <- w / (w * K)(k)`` (Pipe and Menon 1999), per frame.

    ``trajectory[F, K, 2]`` -> ``[F, K]``. The convolution with the kernel ``K`` (a
    separable triangle of ``kernel_halfwidth`` grid cells) is done exactly through the
    NUFFT: adjoint to the image grid, multiply by the triangle's transform
    (``sinc^2``), forward. A positive kernel keeps the iteration stable. The result is
    scaled to the ramp's total so that both options give images of the same intensity.
    """
    op = RadialOperator(trajectory, image_shape, None, device=device, backend=backend)
    windows = [np.sinc(kernel_halfwidth * (np.arange(n) - n // 2) / n) ** 2 for n in image_shape]
    window = torch.as_tensor(np.outer(*windows), dtype=torch.complex64, device=op.device)
    w = torch.ones(op.n_frames, 1, op.n_samples, dtype=torch.complex64, device=op.device)
    for _ in range(n_iter):
        spread = op.backend.forward(op.backend.adjoint(w, op.omega) * window, op.omega).real
        w = w / spread.clamp_min(1e-12)
    w = w.real[:, 0].cpu().numpy().astype(np.float64)
    ramp = ramp_dcf(trajectory, spokes_per_frame, n_readout).astype(np.float64)
    w *= ramp.sum(axis=-1, keepdims=True) / w.sum(axis=-1, keepdims=True)
    return w.astype(np.float32)


def file_dcf(
    weights: np.ndarray, trajectory: np.ndarray, spokes_per_frame: int, n_readout: int
) -> np.ndarray:
    """A file's density weights ``[F, K]`` on our scale, with the k-space centre kept.

    The rule: the file's weights keep their shape, but each frame's are scaled to the
    total of the analytic ramp (:func:`ramp_dcf`, whose scale makes ``A^H W A`` close
    to identity), and no sample weighs less than the ramp gives the centre sample (the
    disc share of the centre). Their scale then cannot change the answer: the gridding
    images, GRASP's starting point and its lambda rule all read the weights, and a
    weight far from the ramp's scale had GRASP return a perfusion series with its
    contrast dynamics garbled. Weights of ``|k|``, exactly zero at the centre where the
    contrast lives, get the ramp's centre weight there.
    """
    w = np.asarray(weights, dtype=np.float64)
    ramp = ramp_dcf(trajectory, spokes_per_frame, n_readout).astype(np.float64)
    total = w.sum(axis=-1, keepdims=True)
    if np.any(total <= 0):
        raise ValueError(f"the density weights of frame {int(np.argmin(total[:, 0]))} are all zero")
    w = w * (ramp.sum(axis=-1, keepdims=True) / total)
    return np.maximum(w, ramp.min()).astype(np.float32)


def compute_dcf(
    trajectory: np.ndarray,
    image_shape: tuple[int, int],
    spokes_per_frame: int,
    n_readout: int,
    method: str = "ramp",
) -> np.ndarray:
    """``trajectory[F, K, 2]`` -> weights ``[F, K]`` by ``method`` (ramp or pipe-menon)."""
    if method == "ramp":
        return ramp_dcf(trajectory, spokes_per_frame, n_readout)
    if method in ("pipe-menon", "pipe_menon"):
        return pipe_menon_dcf(trajectory, image_shape, spokes_per_frame, n_readout)
    raise ValueError(f"unknown density compensation {method!r}: choose ramp or pipe-menon")
