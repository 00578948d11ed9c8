"""The normal operator ``A^H W A`` of every frame by Toeplitz embedding.

``A`` is the multi-coil radial operator (:class:`~dainr.physics.operator.RadialOperator`)
and ``W`` a weight per sample (a density compensation, or ones). Iterative methods that
apply ``A^H W A`` many times (GRASP's conjugate gradients) can do it with two FFTs per
coil on a doubled grid instead of a NUFFT pair.
"""

from __future__ import annotations

import torch

from .operator import RadialOperator


class ToeplitzNormal:
    """``A^H W A`` of every frame as a convolution on the doubled grid.

    ``(A^H W A z)[n] = sum_m z[m] h(n - m)`` with ``h(d) = sum_k w_k exp(i omega_k . d)``,
    the adjoint NUFFT of the weights on a grid twice the image size; the convolution is
    exact as a circular one on that grid, so each application costs two FFTs per coil.
    """

    #: frames per FFT batch, so that the coil images on the doubled grid stay < ~256 MB
    _BYTES = 256 * 2**20

    def __init__(self, op: RadialOperator, weights: torch.Tensor):
        ny, nx = op.image_shape
        self.op = op
        self.shape2 = (2 * ny, 2 * nx)
        eps = getattr(op.backend, "eps", 1e-4)
        op2 = RadialOperator(
            op.omega, self.shape2, None, device=op.device, backend=op.backend.name, eps=eps
        )
        with torch.no_grad():
            psf = op2.backend.adjoint(weights[:, None].to(op.dtype), op2.omega)[:, 0]
            self.kernel = torch.fft.fft2(torch.fft.ifftshift(psf, dim=(-2, -1)))
        per_frame = op.n_coils * self.shape2[0] * self.shape2[1] * 8 * 2
        self.chunk = max(1, self._BYTES // per_frame)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        ny, nx = self.op.image_shape
        maps = self.op.maps
        out = torch.empty_like(x)
        for s in range(0, x.shape[0], self.chunk):
            z = x[s : s + self.chunk, None] * maps[None]
            z = torch.fft.fft2(z, s=self.shape2) * self.kernel[s : s + self.chunk, None]
            z = torch.fft.ifft2(z)[..., :ny, :nx]
            out[s : s + self.chunk] = (z * maps.conj()[None]).sum(dim=1)
        return out


__all__ = ["ToeplitzNormal"]
