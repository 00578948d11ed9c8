"""NUFFT backends behind one interface: type-2 (image -> samples) and type-1 (adjoint).

Every backend works on a batch of frames, each frame with its own trajectory, and
on all coils of a frame at once. Inputs and outputs are complex torch tensors:

    forward(x[B, C, ny, nx], omega[B, K, 2]) -> y[B, C, K]
    adjoint(y[B, C, K], omega[B, K, 2])      -> x[B, C, ny, nx]

with the contract's sign and centre: ``y = sum x[n] exp(-i omega . (n - N//2))``,
no scaling. Both are differentiable (each is the other's backward).

Backends: ``finufft`` (CPU), ``cufinufft`` (CUDA), ``torch`` (this module's own
Kaiser-Bessel gridding in plain PyTorch: any device, needs nothing but torch) and
``torchkbnufft``. ``auto`` takes the first that works on the device, in the order of
:func:`available_backends`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import logging
import math
import sys
from typing import Any, Protocol

import numpy as np
import torch

log = logging.getLogger(__name__)


class NufftBackend(Protocol):
    name: str

    def forward(self, x: torch.Tensor, omega: torch.Tensor) -> torch.Tensor: ...

    def adjoint(self, y: torch.Tensor, omega: torch.Tensor) -> torch.Tensor: ...


# --------------------------------------------------------------------------------------
# torch: Kaiser-Bessel gridding on a 2x oversampled grid, in plain PyTorch
# --------------------------------------------------------------------------------------


class TorchNufftBackend:
    """Kaiser-Bessel gridding NUFFT in plain PyTorch (index_select / index_add, FFT).

    The image is divided by the kernel's Fourier transform (deapodisation), zero-padded
    to a ``oversampling`` times larger grid and FFT'd; each sample is then the
    kernel-weighted sum of the ``width x width`` grid values around it. The adjoint
    spreads samples with the same weights and runs the steps backwards. Kernel shape
    ``beta`` from Beatty et al. (IEEE TMI 2005) for the given width and oversampling.

    All of it is ordinary differentiable torch operations on real views of the complex
    data, so it runs wherever torch does (a CUDA machine without finufft, cufinufft or
    torchkbnufft) and autograd provides each direction's backward.
    """

    name = "torch"

    def __init__(
        self,
        image_shape: tuple[int, int],
        device: torch.device | str = "cpu",
        width: int = 6,
        oversampling: float = 2.0,
    ):
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.device = torch.device(device)
        self.width = int(width)
        self.grid_shape = tuple(int(math.ceil(oversampling * n)) for n in self.image_shape)
        a = oversampling
        self.beta = math.pi * math.sqrt((self.width / a) ** 2 * (a - 0.5) ** 2 - 0.8)
        # 1 / (kernel's Fourier transform) at each pixel's offset from the centre, per axis.
        self._deapod = [
            torch.as_tensor(1.0 / self._kernel_ft(n, g), dtype=torch.float32, device=self.device)
            for n, g in zip(self.image_shape, self.grid_shape)
        ]
        self._offsets = torch.arange(self.width, device=self.device)

    def _kernel_ft(self, n: int, g: int) -> np.ndarray:
        """Fourier transform of ``I0(beta sqrt(1 - (2t/W)^2))`` at frequencies ``m / g``."""
        m = np.arange(n, dtype=np.float64) - n // 2
        z = np.sqrt(self.beta**2 - (np.pi * self.width * m / g) ** 2 + 0j)
        return (self.width * np.sinh(z) / z).real

    def _kernel(self, t: torch.Tensor) -> torch.Tensor:
        s = (1.0 - (2.0 * t / self.width) ** 2).clamp_min(0.0)
        return torch.special.i0(self.beta * torch.sqrt(s))

    def interpolation(self, omega: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat grid rows ``[B * K * W^2]`` (batch offset included) and weights
        ``[B, K, W^2]`` of every sample's neighbourhood."""
        B, K, _ = omega.shape
        om = omega.detach().to(device=self.device, dtype=torch.float32)
        rows, weights = [], []
        for d, g in enumerate(self.grid_shape):
            u = om[..., d] * (g / (2 * math.pi))  # position in grid units
            j = torch.floor(u - self.width / 2)[..., None] + 1 + self._offsets  # [B, K, W]
            weights.append(self._kernel(u[..., None] - j))
            rows.append(torch.remainder(j.to(torch.int64), g))
        gy, gx = self.grid_shape
        idx = rows[0][..., :, None] * gx + rows[1][..., None, :]  # [B, K, W, W]
        idx = idx + (torch.arange(B, device=self.device) * (gy * gx))[:, None, None, None]
        w = weights[0][..., :, None] * weights[1][..., None, :]
        return idx.reshape(-1), w.reshape(B, K, self.width**2)

    def _deapodise(self, img: torch.Tensor) -> torch.Tensor:
        return img * (self._deapod[0][:, None] * self._deapod[1][None, :]).to(img.real.dtype)

    def forward(self, x: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        B, C, ny, nx = x.shape
        gy, gx = self.grid_shape
        idx, w = self.interpolation(omega)
        grid = torch.nn.functional.pad(self._deapodise(x), (0, gx - nx, 0, gy - ny))
        # pixel n sits at grid index (n - N//2) mod G: the contract's centre
        grid = torch.roll(grid, shifts=(-(ny // 2), -(nx // 2)), dims=(2, 3))
        k = torch.fft.fft2(grid)  # [B, C, gy, gx]: FFTs over contiguous planes
        # coils innermost, so that each gathered grid row is one contiguous [C, 2] block
        k = torch.view_as_real(k.permute(0, 2, 3, 1).contiguous()).reshape(B * gy * gx, C, 2)
        vals = k.index_select(0, idx).view(B, -1, self.width**2, C, 2)
        y = (vals * w[..., None, None].to(vals.dtype)).sum(dim=2)  # [B, K, C, 2]
        return torch.view_as_complex(y).permute(0, 2, 1)

    def adjoint(self, y: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        B, C, K = y.shape
        ny, nx = self.image_shape
        gy, gx = self.grid_shape
        idx, w = self.interpolation(omega)
        yr = torch.view_as_real(y.permute(0, 2, 1).contiguous())  # [B, K, C, 2]
        spread = yr[:, :, None] * w[..., None, None].to(yr.dtype)  # [B, K, W^2, C, 2]
        grid = yr.new_zeros(B * gy * gx, C, 2).index_add(0, idx, spread.reshape(-1, C, 2))
        grid = torch.view_as_complex(grid).view(B, gy, gx, C).permute(0, 3, 1, 2).contiguous()
        img = torch.fft.ifft2(grid, norm="forward")  # unscaled inverse
        img = torch.roll(img, shifts=(ny // 2, nx // 2), dims=(2, 3))[..., :ny, :nx]
        return self._deapodise(img)


# --------------------------------------------------------------------------------------
# torchkbnufft
# --------------------------------------------------------------------------------------


class TorchKbNufftBackend:
    """torchkbnufft's Kaiser-Bessel NUFFT: pure PyTorch, any device (when installed)."""

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


# --------------------------------------------------------------------------------------
# finufft / cufinufft: one plan cache, one autograd wrapper
# --------------------------------------------------------------------------------------


class _PlannedBackend:
    """One type-2 and one type-1 plan per (coils, dtype, stream), points set per frame.

    Setting points is a sort of a few thousand samples, far cheaper than holding a
    plan (and its oversampled grid of every coil) for every frame. Subclasses say how
    a plan pair is made (:meth:`_make_plans`) and run (:meth:`_run`).
    """

    name = "planned"

    def __init__(self, image_shape: tuple[int, int], eps: float = 1e-4):
        self.image_shape = tuple(int(n) for n in image_shape)
        self.eps = eps
        self._plans: dict[tuple, tuple] = {}

    def _plan_key(self, n_trans: int, np_dtype: str) -> tuple:
        return (n_trans, np_dtype)

    def _make_plans(self, n_trans: int, np_dtype: str) -> tuple:
        raise NotImplementedError

    def _plan(self, n_trans: int, dtype: torch.dtype, kind: int):
        """The cached type-``kind`` plan for ``n_trans`` transforms of ``dtype``."""
        np_dtype = "complex64" if dtype == torch.complex64 else "complex128"
        key = self._plan_key(n_trans, np_dtype)
        if key not in self._plans:
            self._plans[key] = self._make_plans(n_trans, np_dtype)
        type2, type1 = self._plans[key]
        return type2 if kind == 2 else type1

    def _arrays(self, data: torch.Tensor, omega: torch.Tensor) -> tuple[Any, Any, Any]:
        """The library's view of the points and the data, and a maker of empty outputs."""
        raise NotImplementedError

    def _execute(self, plan, om, src, out) -> None:
        """Set one frame's points ``om [K, 2]`` and transform ``src`` into ``out``."""
        raise NotImplementedError

    def _device(self):
        return contextlib.nullcontext()

    def _result(self, out, device: torch.device) -> torch.Tensor:
        return out

    def _run(self, data: torch.Tensor, omega: torch.Tensor, kind: int) -> torch.Tensor:
        B, C = data.shape[:2]
        plan = self._plan(C, data.dtype, kind)
        om, src, empty = self._arrays(data, omega)
        out = empty((B, C, om.shape[1]) if kind == 2 else (B, C, *self.image_shape))
        with self._device():
            for b in range(B):
                self._execute(plan, om[b], src[b], out[b])
        return self._result(out, data.device)

    def forward(self, x: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        return _PlannedFn.apply(x, omega, self, 2)

    def adjoint(self, y: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        return _PlannedFn.apply(y, omega, self, 1)


class _PlannedFn(torch.autograd.Function):
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


class FinufftBackend(_PlannedBackend):
    """finufft on the CPU (Flatiron Institute), with an autograd wrapper."""

    name = "finufft"

    def _make_plans(self, n_trans: int, np_dtype: str) -> tuple:
        import finufft

        nthreads = max(1, torch.get_num_threads())
        kw = dict(eps=self.eps, n_trans=n_trans, dtype=np_dtype, nthreads=nthreads)
        return (
            finufft.Plan(2, self.image_shape, isign=-1, **kw),
            finufft.Plan(1, self.image_shape, isign=1, **kw),
        )

    def _arrays(self, data: torch.Tensor, omega: torch.Tensor) -> tuple[Any, Any, Any]:
        real = np.float32 if data.dtype == torch.complex64 else np.float64
        om = omega.detach().cpu().numpy().astype(real, copy=False)
        src = data.detach().cpu().numpy()
        return om, src, lambda shape: np.empty(shape, dtype=src.dtype)

    def _execute(self, plan, om, src, out) -> None:
        plan.setpts(np.ascontiguousarray(om[:, 0]), np.ascontiguousarray(om[:, 1]))
        out[...] = plan.execute(np.ascontiguousarray(src))

    def _result(self, out, device: torch.device) -> torch.Tensor:
        return torch.from_numpy(out).to(device)


class CufinufftBackend(_PlannedBackend):
    """cufinufft on CUDA: the same plan cache and autograd wrapper, data stays on the GPU.

    Plans are made on the operator's GPU (``gpu_device_id``) and on torch's current
    stream of that GPU (``gpu_stream``), so that ``cuda:1`` runs on GPU 1 and the
    transforms are ordered with the torch kernels around them; a change of current
    stream gets its own plans.
    """

    name = "cufinufft"

    def __init__(self, image_shape: tuple[int, int], device: torch.device, eps: float = 1e-4):
        super().__init__(image_shape, eps)
        device = torch.device(device)
        index = device.index if device.index is not None else torch.cuda.current_device()
        self.device = torch.device("cuda", index)

    def _stream(self) -> int:
        return int(torch.cuda.current_stream(self.device).cuda_stream)

    def _plan_key(self, n_trans: int, np_dtype: str) -> tuple:
        return (n_trans, np_dtype, self._stream())

    def _make_plans(self, n_trans: int, np_dtype: str) -> tuple:
        import cufinufft

        kw = dict(
            eps=self.eps,
            n_trans=n_trans,
            dtype=np_dtype,
            gpu_device_id=self.device.index,
            gpu_stream=self._stream(),
        )
        with torch.cuda.device(self.device):
            return (
                cufinufft.Plan(2, self.image_shape, isign=-1, **kw),
                cufinufft.Plan(1, self.image_shape, isign=1, **kw),
            )

    def _arrays(self, data: torch.Tensor, omega: torch.Tensor) -> tuple[Any, Any, Any]:
        real = torch.float32 if data.dtype == torch.complex64 else torch.float64
        om = omega.detach().to(device=self.device, dtype=real)
        src = data.detach().to(self.device).contiguous()
        return om, src, lambda shape: torch.empty(shape, dtype=data.dtype, device=self.device)

    def _device(self):
        return torch.cuda.device(self.device)

    def _execute(self, plan, om, src, out) -> None:
        # The plan keeps a reference to every point array it was given (cufinufft reads
        # them at execute time); only the current frame's are needed.
        refs = getattr(plan, "_references", None)
        if isinstance(refs, list):
            refs.clear()
        plan.setpts(om[:, 0].contiguous(), om[:, 1].contiguous())
        plan.execute(src, out=out)


# --------------------------------------------------------------------------------------
# which backends work here
# --------------------------------------------------------------------------------------


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ValueError, ImportError):  # a module object without a spec, a broken parent
        return module in sys.modules and sys.modules[module] is not None


@functools.cache
def cufinufft_problem(device_index: int) -> str | None:
    """Why cufinufft cannot run on GPU ``device_index`` (None when it can).

    Judged by importing it and running a tiny plan: the PyPI wheel is built for one
    CUDA major version and fails to load (or to run) on a machine with another, which
    an installed-package check cannot see.
    """
    if not _importable("cufinufft"):
        return "cufinufft is not installed"
    try:
        cufinufft = importlib.import_module("cufinufft")
        plan = cufinufft.Plan(
            2, (8, 8), n_trans=1, eps=1e-4, dtype="complex64", gpu_device_id=device_index
        )
        dev = torch.device("cuda", device_index)
        pts = torch.linspace(-3.0, 3.0, 5, device=dev)
        plan.setpts(pts, pts.flip(0).contiguous())
        img = torch.ones(1, 8, 8, dtype=torch.complex64, device=dev)
        y = torch.as_tensor(plan.execute(img), device=dev)
        torch.cuda.synchronize(dev)
        if y.numel() != 5 or not bool(torch.isfinite(torch.view_as_real(y)).all()):
            return "a test transform gave wrong output"
    except Exception as e:  # ImportError, OSError (libcudart), RuntimeError (plan/exec)
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    return None


def available_backends(device: torch.device) -> list[str]:
    """Backends that work on ``device``, in the order ``auto`` prefers them."""
    device = torch.device(device)
    names = []
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        problem = cufinufft_problem(index)
        if problem is None:
            names.append("cufinufft")
        elif _importable("cufinufft"):
            log.warning(
                "cufinufft does not work on %s (%s): using the torch NUFFT", device, problem
            )
        # On a GPU the own gridding beats torchkbnufft's table interpolation loop
        # (benchmarks/README.md, "GPU path"); both are plain PyTorch.
        names.append("torch")
        if _importable("torchkbnufft"):
            names.append("torchkbnufft")
        return names
    if device.type == "cpu" and _importable("finufft"):
        names.append("finufft")
    names.append("torch")
    if _importable("torchkbnufft"):
        names.append("torchkbnufft")
    return names


BACKEND_NAMES = ("auto", "finufft", "cufinufft", "torch", "torchkbnufft")
_announced: set[tuple[str, str]] = set()


def make_backend(
    name: str, image_shape: tuple[int, int], device: torch.device, eps: float = 1e-4
) -> NufftBackend:
    """``name`` is ``auto`` (first of :func:`available_backends`) or a backend name."""
    device = torch.device(device)
    if name == "auto":
        name = available_backends(device)[0]
        if (str(device), name) not in _announced:  # once per process, not per operator
            _announced.add((str(device), name))
            log.info("NUFFT backend on %s: %s", device, name)
    if name == "torch":
        return TorchNufftBackend(image_shape, device)
    if name == "torchkbnufft":
        if not _importable("torchkbnufft"):
            raise ValueError("the torchkbnufft backend is not installed; use auto or torch")
        return TorchKbNufftBackend(image_shape, device)
    if name == "finufft":
        if device.type != "cpu":
            raise ValueError("the finufft backend runs on the CPU only; use cufinufft or auto")
        return FinufftBackend(image_shape, eps)
    if name == "cufinufft":
        if device.type != "cuda":
            raise ValueError("the cufinufft backend needs a CUDA device")
        problem = cufinufft_problem(
            device.index if device.index is not None else torch.cuda.current_device()
        )
        if problem is not None:
            raise ValueError(f"the cufinufft backend does not work here ({problem}); use auto")
        return CufinufftBackend(image_shape, device, eps)
    raise ValueError(f"unknown NUFFT backend {name!r}: choose one of {', '.join(BACKEND_NAMES)}")
