"""The multi-coil radial encoding operator ``A`` of a whole series, and its adjoint.

``A`` maps image frames ``x[B, ny, nx]`` to the samples of all coils of those frames,
``y[B, C, K] = NUFFT_frame(S_c * x)``; ``A^H`` coil-combines with the conjugate maps.
``frames`` selects which frames of the series (and hence which trajectories) a batch
holds, so a learned method can work on one random frame per step.
"""

from __future__ import annotations

import numpy as np
import torch

from .backends import NufftBackend, make_backend


def as_tensor(a, device, dtype=None) -> torch.Tensor:
    t = torch.as_tensor(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a
    return t.to(device=device, dtype=dtype) if dtype is not None else t.to(device)


class RadialOperator:
    """Multi-coil NUFFT of a series with one trajectory per frame."""

    def __init__(
        self,
        trajectory: np.ndarray | torch.Tensor,
        image_shape: tuple[int, int],
        coil_maps: np.ndarray | torch.Tensor | None = None,
        *,
        device: str | torch.device = "cpu",
        backend: str = "auto",
        eps: float = 1e-4,
        dtype: torch.dtype = torch.complex64,
    ):
        self.device = torch.device(device)
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.dtype = dtype
        real = torch.float32 if dtype == torch.complex64 else torch.float64
        self.omega = as_tensor(trajectory, self.device, real)  # [F, K, 2]
        if self.omega.ndim != 3 or self.omega.shape[-1] != 2:
            raise ValueError(
                f"trajectory must be [frames, samples, 2], got {tuple(self.omega.shape)}"
            )
        if coil_maps is None:
            coil_maps = np.ones((1, *self.image_shape), dtype=np.complex64)
        self.maps = as_tensor(coil_maps, self.device, dtype)  # [C, ny, nx]
        self.backend: NufftBackend = make_backend(backend, self.image_shape, self.device, eps)

    @property
    def n_frames(self) -> int:
        return self.omega.shape[0]

    @property
    def n_coils(self) -> int:
        return self.maps.shape[0]

    @property
    def n_samples(self) -> int:
        return self.omega.shape[1]

    def _omega(self, frames) -> torch.Tensor:
        if frames is None:
            return self.omega
        return self.omega[torch.as_tensor(frames, device=self.device, dtype=torch.long)]

    def forward(self, x: torch.Tensor, frames=None) -> torch.Tensor:
        """``x[B, ny, nx]`` -> ``y[B, C, K]`` (B = all frames when ``frames`` is None)."""
        coil_images = x[:, None] * self.maps[None]
        return self.backend.forward(coil_images, self._omega(frames))

    def adjoint(self, y: torch.Tensor, frames=None) -> torch.Tensor:
        """``y[B, C, K]`` -> ``x[B, ny, nx]``: per-coil adjoint NUFFT, conjugate-map combined."""
        coil_images = self.backend.adjoint(y, self._omega(frames))
        return (coil_images * self.maps.conj()[None]).sum(dim=1)

    def adjoint_coils(self, y: torch.Tensor, frames=None) -> torch.Tensor:
        """``y[B, C, K]`` -> per-coil images ``[B, C, ny, nx]`` (no coil combination)."""
        return self.backend.adjoint(y, self._omega(frames))

    def normal(self, x: torch.Tensor, frames=None, weights: torch.Tensor | None = None):
        """``A^H W A x`` with optional sample weights ``W[B, K]``."""
        y = self.forward(x, frames)
        if weights is not None:
            y = y * weights[:, None]
        return self.adjoint(y, frames)

    __call__ = forward


def direct_forward(
    image: np.ndarray, trajectory: np.ndarray, coil_maps: np.ndarray | None = None
) -> np.ndarray:
    """The contract's explicit sum, in float64: the reference every backend is tested against.

    ``image[ny, nx]``, ``trajectory[K, 2]`` -> ``[C, K]``. Cost O(C K ny nx): tiny grids only.
    """
    ny, nx = image.shape
    if coil_maps is None:
        coil_maps = np.ones((1, ny, nx))
    yy = np.arange(ny) - ny // 2
    xx = np.arange(nx) - nx // 2
    ey = np.exp(-1j * np.outer(trajectory[:, 0].astype(np.float64), yy))  # [K, ny]
    ex = np.exp(-1j * np.outer(trajectory[:, 1].astype(np.float64), xx))  # [K, nx]
    coil_images = coil_maps.astype(np.complex128) * image.astype(np.complex128)[None]
    return np.einsum("ky,cyx,kx->ck", ey, coil_images, ex)
