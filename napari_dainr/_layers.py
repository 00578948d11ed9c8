"""What the plugin puts into napari layers: layer-data tuples and their metadata keys.

Qt-free, so that the reader, the sample data and the widgets share one description of
a "k-space layer" (a gridding preview that carries its k-space) and a "result layer"
(a reconstruction that carries its :class:`dainr.Reconstruction`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from dainr.data import KSpaceData
from dainr.result import Reconstruction

log = logging.getLogger(__name__)

#: metadata key: the :class:`KSpaceData` a preview layer was made from (the widget fits it)
KSPACE = "dainr_kspace"
#: metadata key: the file the k-space came from (None for samples made in memory)
SOURCE = "dainr_source"
#: metadata key: spokes per frame of the series shown in the layer
SPOKES = "dainr_spokes_per_frame"
#: metadata key: the :class:`Reconstruction` a result layer shows
RESULT = "dainr_result"
#: metadata key: time of every frame of the layer, in units of the fitted frame index
FRAME_TIMES = "dainr_frame_times"

#: axis names of every series layer (the ROI layer names its two axes the same way)
AXES = ("frame", "y", "x")

#: upper display limit as a percentile of the magnitude: a few hot pixels (streaks,
#: coil-edge noise in gridding images) would otherwise compress the anatomy to black.
CONTRAST_PERCENTILE = 99.5


def display_limits(magnitude: np.ndarray) -> tuple[float, float]:
    """Contrast limits for a magnitude series: 0 to a high percentile (never an empty range)."""
    hi = float(np.percentile(magnitude, CONTRAST_PERCENTILE)) if magnitude.size else 1.0
    if not np.isfinite(hi) or hi <= 0:
        hi = float(np.nanmax(magnitude)) if magnitude.size else 1.0
    return 0.0, hi if np.isfinite(hi) and hi > 0 else 1.0


def upscale_placement(
    base_shape: tuple[int, int], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """``(scale, translate)`` of a ``shape`` grid covering the same field of view as ``base_shape``.

    World coordinates are the base grid's pixel indices, pixel ``i`` covering
    ``[i - 1/2, i + 1/2]``. A finer grid with ``s = base / fine`` pixel size has its pixel
    ``j`` covering ``[j s - 1/2, (j + 1) s - 1/2]``, centre ``j s + (s - 1) / 2``: both grids
    then span the same field of view and an r-times grid's r x r block is centred on the
    base pixel it subdivides. Computed from the shapes, so a fractional r that was
    rounded to whole pixels still overlays exactly.
    """
    s = np.asarray(base_shape, dtype=float) / np.asarray(shape, dtype=float)
    return s, (s - 1.0) / 2.0


def kspace_layer(
    data: KSpaceData,
    preview: Reconstruction,
    name: str,
    source: str | Path | None = None,
) -> tuple[np.ndarray, dict[str, Any], str]:
    """The gridding preview of ``data`` as an image layer that carries the k-space."""
    mag = np.abs(preview.frames).astype(np.float32)
    meta = {
        KSPACE: data,
        SOURCE: None if source is None else str(source),
        SPOKES: int(preview.spokes_per_frame),
        RESULT: preview,
        FRAME_TIMES: np.arange(mag.shape[0], dtype=float),
    }
    kwargs = {
        "name": name,
        "metadata": meta,
        "colormap": "gray",
        "contrast_limits": display_limits(mag),
        "axis_labels": AXES,
    }
    return mag, kwargs, "image"


def result_layer(
    result: Reconstruction,
    name: str,
    base_shape: tuple[int, int] | None = None,
) -> tuple[np.ndarray, dict[str, Any], str]:
    """A reconstruction as an image layer, placed over the ``base_shape`` grid in world space.

    ``base_shape`` defaults to the fitted matrix (the frames divided by the result's
    upscale factor), so that a result read back from a file overlays its input too.
    A rendering with frames between the fitted ones (its times in
    ``attrs["frame_times"]``, in fitted-frame units) gets its time axis scaled to match,
    so that scrubbing shows all layers in step.
    """
    mag = np.abs(result.frames).astype(np.float32)
    shape = tuple(mag.shape[-2:])
    if base_shape is None:
        base_shape = tuple(int(round(n / max(result.upscale, 1e-6))) for n in shape)
    scale, translate = upscale_placement(base_shape, shape)
    times = result_times(result)
    dt = float(times[1] - times[0]) if len(times) > 1 else 1.0
    kwargs = {
        "name": name,
        "metadata": {RESULT: result, FRAME_TIMES: times, SPOKES: int(result.spokes_per_frame)},
        "colormap": "gray",
        "contrast_limits": display_limits(mag),
        "axis_labels": AXES,
        "scale": (dt, *scale),
        "translate": (float(times[0]) if len(times) else 0.0, *translate),
    }
    return mag, kwargs, "image"


#: suffix of the layer that shows an ensemble's per-pixel standard deviation
STD_SUFFIX = " [std]"


def std_layer(
    result: Reconstruction, name: str, base_shape: tuple[int, int] | None = None
) -> tuple[np.ndarray, dict[str, Any], str]:
    """An ensemble's per-pixel std series (``result.std``) as layer "<name> [std]", placed
    exactly as :func:`result_layer` places the result it belongs to."""
    std = np.asarray(result.std, dtype=np.float32)
    _, kwargs, _ = result_layer(result, name + STD_SUFFIX, base_shape=base_shape)
    kwargs["colormap"] = "magma"  # not gray: it must not be mistaken for an image
    kwargs["contrast_limits"] = display_limits(std)
    return std, kwargs, "image"


def result_times(result: Reconstruction) -> np.ndarray:
    """Time of each frame of ``result`` in fitted-frame units (0, 1, 2, ... unless rendered between)."""
    n = result.frames.shape[0]
    t = result.attrs.get("frame_times")
    if t is not None and len(np.ravel(t)) == n:
        return np.asarray(t, dtype=float).ravel()
    return np.arange(n, dtype=float)


def stem_name(source: str | Path | None, fallback: str = "k-space") -> str:
    """A short layer name from a file path."""
    return Path(source).stem if source else fallback


def gridding_preview(
    data: KSpaceData, spokes_per_frame: int | None = None, device: str = "auto"
) -> Reconstruction:
    """The quick look a user gets on opening k-space: the engine's gridding baseline."""
    import dainr

    return dainr.reconstruct(data, "nufft", spokes_per_frame=spokes_per_frame, device=device)


def preview_layer(
    data: KSpaceData,
    name: str,
    source: str | Path | None = None,
    spokes_per_frame: int | None = None,
) -> tuple[np.ndarray, dict[str, Any], str]:
    """Grid ``data`` and wrap it as a k-space layer (the widget fits what it carries)."""
    preview = gridding_preview(data, spokes_per_frame)
    log.info("%s: gridding preview of %d frames", name, preview.frames.shape[0])
    return kspace_layer(data, preview, f"{name} (gridding)", source)
