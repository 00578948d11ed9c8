"""NUFFT backends behind one interface: type-2 (image -> samples) and type-1 (adjoint).

Every backend works on a batch of frames, each frame with its own trajectory, and
on all coils of a frame at once. Inputs and outputs are complex torch tensors:

    forward(x[B, C, ny, nx], omega[B, K, 2]) -> y[B, C, K]
    adjoint(y[B, C, K], omega[B, K, 2])      -> x[B, C, ny, nx]

with the contract's sign and centre: ``y = sum x[n] exp(-i omega . (n - N//2))``,
no scaling. Both are differentiable (each is the other's backward).
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Protocol

import numpy as np
import torch

log = logging.getLogger(__name__)


class NufftBackend(Protocol):
    name: str

    def forward(self, x: torch.Tensor, omega: torch.Tensor) -> torch.Tensor: ...

    def adjoint(self, y: torch.Tensor, omega: torch.Tensor) -> torch.Tensor: ...


class TorchKbNufftBackend:
    """torchkbnufft's Kaiser-Bessel NUFFT: pure PyTorch, any device, always available."""

    name = "torchkbnufft"

    def __init__(self, image_shape: tuple[int, int], device: torch.device, numpoints: int = 6):
        import torchkbnufft as tkbn

        grid = tuple(2 * n for n in image_shape)
        self._fwd = tkbn.KbNufft(im_size=image_shape, grid_size=grid, numpoints=numpoints).to(
            device
        )
        self._adj = tkbn.KbNufftAdjoint(
            im_size=image_shape, grid_size=grid, numpoints=numpoints
        ).to(device)

    def forward(self, x: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        # torchkbnufft wants omega as [B, 2, K]; its internal dtype follows x.
        return self._fwd(x, omega.transpose(1, 2).to(x.real.dtype))

    def adjoint(self, y: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        return self._adj(y, omega.transpose(1, 2).to(y.real.dtype))


class _FinufftPlans:
    """One type-2 and one type-1 plan for all frames; points are set per frame.

    Setting points is a sort of a few thousand samples, far cheaper than holding a
    plan (and its oversampled grid of every coil) for every frame.
    """

    def __init__(self, image_shape, n_trans, eps, dtype):
        import finufft

        nthreads = max(1, torch.get_num_threads())
        kw = dict(eps=eps, n_trans=n_trans, dtype=dtype, nthreads=nthreads)
        self.type2 = finufft.Plan(2, tuple(image_shape), isign=-1, **kw)
        self.type1 = finufft.Plan(1, tuple(image_shape), isign=1, **kw)


class FinufftBackend:
    """finufft on the CPU (Flatiron Institute), with an autograd wrapper."""

    name = "finufft"

    def __init__(self, image_shape: tuple[int, int], eps: float = 1e-4):
        self.image_shape = tuple(image_shape)
        self.eps = eps
        self._plans: dict[tuple[int, str], _FinufftPlans] = {}

    def _plan(self, n_trans: int, dtype: torch.dtype) -> _FinufftPlans:
        np_dtype = "complex64" if dtype == torch.complex64 else "complex128"
        key = (n_trans, np_dtype)
        if key not in self._plans:
            self._plans[key] = _FinufftPlans(self.image_shape, n_trans, self.eps, np_dtype)
        return self._plans[key]

    def _run(self, data: torch.Tensor, omega: torch.Tensor, kind: int) -> torch.Tensor:
        B, C = data.shape[:2]
        plans = self._plan(C, data.dtype)
        plan = plans.type2 if kind == 2 else plans.type1
        real = np.float32 if data.dtype == torch.complex64 else np.float64
        om = omega.detach().cpu().numpy().astype(real, copy=False)
        src = data.detach().cpu().numpy()
        out_shape = (B, C, om.shape[1]) if kind == 2 else (B, C, *self.image_shape)
        out = np.empty(out_shape, dtype=src.dtype)
        for b in range(B):
            plan.setpts(np.ascontiguousarray(om[b, :, 0]), np.ascontiguousarray(om[b, :, 1]))
            out[b] = plan.execute(np.ascontiguousarray(src[b]))
        return torch.from_numpy(out).to(data.device)

    def forward(self, x: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        return _FinufftFn.apply(x, omega, self, 2)

    def adjoint(self, y: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        return _FinufftFn.apply(y, omega, self, 1)


class _FinufftFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, data, omega, backend, kind):
        ctx.save_for_backward(omega)
        ctx.backend, ctx.kind = backend, kind
        return backend._run(data, omega, kind)

    @staticmethod
    def backward(ctx, grad):
        (omega,) = ctx.saved_tensors
        # The adjoint of type 2 is type 1 and vice versa; no gradient for the trajectory.
        return ctx.backend._run(grad.contiguous(), omega, 3 - ctx.kind), None, None, None


class CufinufftBackend(FinufftBackend):
    """cufinufft on CUDA: the same plans and autograd wrapper, data stays on the GPU."""

    name = "cufinufft"

    def _plan(self, n_trans: int, dtype: torch.dtype):
        import cufinufft

        np_dtype = "complex64" if dtype == torch.complex64 else "complex128"
        key = (n_trans, np_dtype)
        if key not in self._plans:
            kw = dict(eps=self.eps, n_trans=n_trans, dtype=np_dtype)
            p = _FinufftPlans.__new__(_FinufftPlans)
            p.type2 = cufinufft.Plan(2, self.image_shape, isign=-1, **kw)
            p.type1 = cufinufft.Plan(1, self.image_shape, isign=1, **kw)
            self._plans[key] = p
        return self._plans[key]

    def _run(self, data: torch.Tensor, omega: torch.Tensor, kind: int) -> torch.Tensor:
        B, C = data.shape[:2]
        plans = self._plan(C, data.dtype)
        plan = plans.type2 if kind == 2 else plans.type1
        real = torch.float32 if data.dtype == torch.complex64 else torch.float64
        om = omega.detach().to(real)
        src = data.detach().contiguous()
        outs = []
        for b in range(B):
            plan.setpts(om[b, :, 0].contiguous(), om[b, :, 1].contiguous())
            outs.append(plan.execute(src[b]))
        return torch.stack([torch.as_tensor(o, device=data.device) for o in outs])


def available_backends(device: torch.device) -> list[str]:
    """Backends usable on ``device``, fastest first; torchkbnufft is always last."""
    names = []
    if device.type == "cuda" and importlib.util.find_spec("cufinufft") is not None:
        names.append("cufinufft")
    if device.type == "cpu" and importlib.util.find_spec("finufft") is not None:
        names.append("finufft")
    names.append("torchkbnufft")
    return names


def make_backend(
    name: str, image_shape: tuple[int, int], device: torch.device, eps: float = 1e-4
) -> NufftBackend:
    """``name`` is ``auto`` (fastest available on ``device``) or a backend name."""
    if name == "auto":
        name = available_backends(device)[0]
    if name == "torchkbnufft":
        return TorchKbNufftBackend(image_shape, device)
    if name == "finufft":
        if device.type != "cpu":
            raise ValueError("the finufft backend runs on the CPU only; use cufinufft or auto")
        return FinufftBackend(image_shape, eps)
    if name == "cufinufft":
        if device.type != "cuda":
            raise ValueError("the cufinufft backend needs a CUDA device")
        return CufinufftBackend(image_shape, eps)
    raise ValueError(f"unknown NUFFT backend {name!r}: choose auto, finufft, cufinufft or torchkbnufft")
