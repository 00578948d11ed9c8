"""The engine's one place for out-of-memory faults and for handing device memory back.

PyTorch's own allocator raises ``torch.cuda.OutOfMemoryError``; extensions that allocate
through CUDA themselves (tiny-cuda-nn, cufinufft) raise a plain ``RuntimeError`` whose
message says so. Callers catch broadly, ask :func:`is_out_of_memory`, drop every
reference to the failed computation (the exception's traceback holds its frames and so
its tensors) and only then call :func:`free_device_memory`, outside the ``except``
block: emptying the cache while the traceback is alive frees nothing.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

import torch

log = logging.getLogger(__name__)

#: Lower-case fragments of the messages CUDA libraries raise when an allocation fails.
_OOM_MESSAGES = (
    "out of memory",  # CUDA runtime / driver ("CUDA error: out of memory"), PyTorch, tcnn
    "cudaerrormemoryallocation",
    "cuda_error_out_of_memory",
    "cufft_alloc_failed",
    "failed to allocate",  # cufinufft ("failed to allocate ... on the GPU")
)

OOM_ADVICE = (
    "try fewer frames per step, a smaller hash table (hash_log2_size), a smaller image, "
    "or --device cpu"
)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` reports a failed device (or host) allocation."""
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    if isinstance(exc, RuntimeError):
        text = str(exc).lower()
        return any(m in text for m in _OOM_MESSAGES)
    return False


def oom_guarded(fn, *args) -> tuple[Any, str | None]:
    """``(fn(*args), None)``, or ``(None, message)`` when it ran out of memory.

    Only the message leaves the ``except`` block: the exception's traceback holds the
    frames of the failed call and so every tensor it allocated, and freeing the device's
    cache while they are alive frees nothing. Other exceptions propagate unchanged.
    """
    try:
        return fn(*args), None
    except Exception as e:
        if not is_out_of_memory(e):
            raise
        lines = str(e).strip().splitlines()
        return None, f"{type(e).__name__}: {lines[0] if lines else 'out of memory'}"


def free_device_memory(device: torch.device | str | None) -> None:
    """Collect unreachable tensors and return the CUDA cache's free blocks to the driver.

    Call it after the references to the tensors are gone (see the module's docstring).
    """
    gc.collect()
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda" and torch.cuda.is_available():
        with torch.cuda.device(device):
            torch.cuda.empty_cache()
        log.debug("returned cached CUDA memory of %s to the driver", device)


__all__ = ["OOM_ADVICE", "free_device_memory", "is_out_of_memory", "oom_guarded"]
