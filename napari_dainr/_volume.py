"""Volumes in napari: 4-D layers (frame, slice, y, x) of raw input and of volume outputs.

Raw input (ISMRMRD stack-of-stars / multi-slice, BART) opens as the gridding preview of
every slice, with the header's voxel size (mm) as the layer's scale; the layer carries
the :class:`dainr.volume.KSpaceVolume` so that the reconstruction dock can fit it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: metadata key: the KSpaceVolume a 4-D preview was made from
VOLUME = "dainr_volume"
#: metadata key: volume indices of the layer's slice axis
SLICES = "dainr_slices"


def _limits(mag: np.ndarray) -> tuple[float, float]:
    hi = float(np.percentile(mag, 99.5)) if mag.size else 1.0
    return 0.0, hi if hi > 0 else 1.0


def volume_scale(pixel_size_mm) -> tuple[float, float, float, float]:
    """(frame, z, y, x) scale: one unit per frame, millimetres in space when the file says."""
    if not pixel_size_mm:
        return (1.0, 1.0, 1.0, 1.0)
    dz, dy, dx = (float(v) for v in pixel_size_mm)
    return (1.0, dz, dy, dx)


def volume_preview_layer(
    vol, name: str, source: str | Path | None = None, spokes_per_frame: int | None = None
):
    """The gridding preview ``[F, Z, ny, nx]`` of every slice as one image layer."""
    from dainr.volume import grid_slices

    mag = np.abs(grid_slices(vol, spokes_per_frame)).astype(np.float32)
    meta: dict[str, Any] = {
        VOLUME: vol,
        SLICES: list(range(vol.n_slices)),
        "dainr_source": str(source) if source else None,
    }
    return (
        mag,
        {
            "name": f"{name} (gridding)",
            "metadata": meta,
            "scale": volume_scale(vol.pixel_size_mm),
            "contrast_limits": _limits(mag),
            "axis_labels": ("frame", "slice", "y", "x"),
        },
        "image",
    )


def volume_result_layer(r, name: str):
    """A volume output (:class:`dainr.volume.VolumeReconstruction`) as a 4-D image layer."""
    mag = np.abs(r.frames).astype(np.float32)
    pixel = r.attrs.get("pixel_size_mm")
    return (
        mag,
        {
            "name": f"{name} [{r.method}]",
            "metadata": {SLICES: list(r.slices), "dainr_volume_result": r},
            "scale": volume_scale(None if pixel is None else list(pixel)),
            "contrast_limits": _limits(mag),
            "axis_labels": ("frame", "slice", "y", "x"),
        },
        "image",
    )
