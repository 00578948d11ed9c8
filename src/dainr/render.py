"""Continuous models -> any (t, r) grid: the paper's spatial and temporal interpolation.

A method whose representation is continuous (DA-INR) implements
``render_frames(times, upscale, coords)``: complex images in the prepared (scaled)
units at times in frame units (``2.5`` is halfway between frames 2 and 3), on a grid
``upscale`` times finer than the acquisition matrix. This module turns that into
user-scale arrays and into new :class:`~dainr.result.Reconstruction` objects.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np
import torch

from .device import free_device_memory, oom_guarded
from .errors import FitError
from .result import Reconstruction

log = logging.getLogger(__name__)

#: how a continuous model is read at r > 1 (DA-INR: see DainrModel.render)
RENDER_COORDS = ("nearest", "continuous", "fourier", "band+continuous", "band+cubic")


def supports_render(method) -> bool:
    return callable(getattr(method, "render_frames", None))


def check_render_request(method, upscale: float = 1.0, frames_between: int = 0) -> None:
    """Raise, before a fit, the ValueError that rendering its result as asked would raise
    after it (``method``: a method class or instance), so a long run never ends unsaved."""
    if upscale == 1.0 and frames_between == 0:
        return
    if frames_between < 0:
        raise ValueError(f"frames_between must be >= 0, got {frames_between}")
    if not upscale >= 1.0:
        raise ValueError(f"upscale must be >= 1, got {upscale}")
    if not supports_render(method):
        raise ValueError(
            f"method {getattr(method, 'name', method)!r} has no continuous representation to "
            "render; upscaling and frames between need a learned continuous method (dainr)"
        )


def render_times(n_frames: int, frames_between: int = 0) -> np.ndarray:
    """Times to render: the acquired frames' times (frame units) plus ``frames_between``
    evenly spaced times in each gap."""
    if frames_between < 0:
        raise ValueError(f"frames_between must be >= 0, got {frames_between}")
    if n_frames < 2:
        return np.zeros(n_frames)
    return np.linspace(0.0, n_frames - 1, (n_frames - 1) * (frames_between + 1) + 1)


def render(
    method,
    upscale: float = 1.0,
    times: Sequence[float] | np.ndarray | None = None,
    coords: str = "auto",
    chunk: int = 64,
) -> np.ndarray:
    """Complex64 ``[len(times), round(ny*r), round(nx*r)]`` in the input's intensity scale.

    ``times`` in frame units, within ``[0, n_frames - 1]`` (default: every acquired
    frame). Between frames the features come from the two neighbouring frames (paper
    §2.1). ``coords``: ``nearest`` (paper: deformed coordinates upsampled by nearest
    neighbour, features bilinearly), ``continuous`` (the representation evaluated at the
    finer grid's own pixel centres), ``fourier`` (the frames on the acquisition grid,
    zero-padded in k-space), ``band+continuous`` / ``band+cubic`` (``fourier``'s band;
    beyond it ``continuous``'s detail / bicubic interpolation's) or ``auto`` (the
    method's ``render_coords``: DA-INR renders ``continuous`` when it was trained off the
    pixel centres, ``jitter``, else ``band+cubic``; see :func:`resolve_coords`).
    """
    if not supports_render(method):
        raise ValueError(
            f"method {getattr(method, 'name', method)!r} has no continuous representation to "
            "render; upscaling and frames between need a learned continuous method (dainr)"
        )
    if not upscale >= 1.0:
        raise ValueError(f"upscale must be >= 1, got {upscale}")
    n = method.prep.n_frames
    t = (
        np.arange(n, dtype=np.float64)
        if times is None
        else np.asarray(times, dtype=np.float64).reshape(-1)
    )
    if t.size and (t.min() < 0 or t.max() > n - 1):
        raise ValueError(
            f"times must lie in [0, {n - 1}] (frame units), got [{t.min():g}, {t.max():g}]"
        )
    coords = resolve_coords(method, coords)
    tt = torch.as_tensor(t, dtype=torch.float32, device=method.prep.device)
    out = []
    with torch.no_grad():
        for i in range(0, len(tt), chunk):
            x, oom = oom_guarded(method.render_frames, tt[i : i + chunk], upscale, coords)
            if oom is not None:
                # the failed chunk's tensors left with the exception: the cache can go now
                free_device_memory(method.prep.device)
                raise FitError(
                    f"{method.prep.device} ran out of memory rendering frames at {upscale:g}x "
                    f"({oom}): render fewer frames between, a smaller upscale, or on the CPU"
                )
            out.append((x / method.prep.scale).to(torch.complex64).cpu().numpy())
    if not out:
        h, w = method.prep.image_shape
        return np.zeros((0, int(round(h * upscale)), int(round(w * upscale))), np.complex64)
    return np.concatenate(out)


def resolve_coords(method, coords: str = "auto") -> str:
    """``coords`` with ``auto`` replaced by the method's own choice (``render_coords``)."""
    if coords == "auto":
        return getattr(method, "render_coords", "nearest")
    if coords not in RENDER_COORDS:
        choices = ", ".join(("auto",) + RENDER_COORDS)
        raise ValueError(f"coords must be one of {choices}, got {coords!r}")
    return coords


def render_result(
    method,
    result: Reconstruction,
    upscale: float = 1.0,
    frames_between: int = 0,
    coords: str = "auto",
) -> Reconstruction:
    """A copy of ``result`` whose frames are rendered at ``upscale`` with ``frames_between``
    extra frames in each gap; the times rendered are kept in ``attrs['frame_times']``."""
    times = render_times(method.prep.n_frames, frames_between)
    coords = resolve_coords(method, coords)
    frames = render(method, upscale=upscale, times=times, coords=coords)
    attrs = dict(result.attrs)
    if frames_between:
        attrs["frame_times"] = [float(x) for x in times]
    if upscale != 1.0:
        attrs["render_coords"] = coords
    log.info("rendered %d frames at %gx: %s", len(times), upscale, frames.shape[1:])
    return dataclasses.replace(result, frames=frames, upscale=float(upscale), attrs=attrs)


__all__ = [
    "check_render_request",
    "render",
    "render_result",
    "render_times",
    "resolve_coords",
    "supports_render",
]
