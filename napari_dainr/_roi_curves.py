"""ROI signal curves over napari layers, through world coordinates; CSV in and out.

Qt-free. An ROI drawn once (on any grid) is carried into every image layer's own pixel
grid through world coordinates, so the same ellipse measures the gridding preview,
the fitted series and an r-times upscaled rendering alike. Masks are rasterised by
napari's own shape code (pixel centres at integer data coordinates); the curve is
the engine's :func:`dainr.metrics.roi_curve`.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from napari.layers import Image, Shapes

from dainr.metrics import roi_curve

from ._layers import FRAME_TIMES

log = logging.getLogger(__name__)

#: the shapes that enclose an area; lines and paths have none to average over
AREA_SHAPES = ("rectangle", "ellipse", "polygon")
CSV_HEADER = ("roi", "layer", "frame", "time", "mean_magnitude")


@dataclass
class Curve:
    roi: str
    layer: str
    times: np.ndarray  #: time of each frame, in units of the fitted frame index
    values: np.ndarray  #: mean magnitude inside the ROI per frame (NaN: ROI outside the layer)
    color: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)


def roi_names(shapes: Shapes) -> list[str]:
    """The name of every shape (``"ROI <i>"`` where a shape has none)."""
    if "name" in shapes.features:
        raw = list(shapes.features["name"])
    else:
        raw = [None] * shapes.nshapes
    return [str(n) if n not in (None, "") and n == n else f"ROI {i + 1}" for i, n in enumerate(raw)]


def _vertices_in(shapes: Shapes, verts: np.ndarray, image: Image) -> np.ndarray:
    """Vertices of one shape -> the image layer's (y, x) data coordinates."""
    out = []
    for v in verts:
        world = np.asarray(shapes.data_to_world(v), dtype=float)
        out.append(np.asarray(image.world_to_data(world), dtype=float)[-2:])
    return np.asarray(out)


def roi_masks(shapes: Shapes, image: Image) -> dict[str, np.ndarray]:
    """name -> bool mask on ``image``'s pixel grid; shapes sharing a name are united."""
    ny, nx = image.data.shape[-2:]
    names = roi_names(shapes)
    keep = [i for i, t in enumerate(shapes.shape_type) if t in AREA_SHAPES]
    if not keep:
        return {}
    verts = [_vertices_in(shapes, shapes.data[i], image) for i in keep]
    types = [shapes.shape_type[i] for i in keep]
    # A throwaway layer in the image's data coordinates: napari rasterises it exactly as it
    # draws it, so what the user sees outlined is what is averaged.
    masks = Shapes(verts, shape_type=types, ndim=2).to_masks(mask_shape=(ny, nx))
    out: dict[str, np.ndarray] = {}
    for i, m in zip(keep, masks):
        out[names[i]] = out.get(names[i], np.zeros((ny, nx), bool)) | m.astype(bool)
    return out


def roi_colors(shapes: Shapes) -> dict[str, tuple[float, float, float, float]]:
    """name -> the edge colour of its first shape (the plot uses the same colour)."""
    out: dict[str, tuple[float, float, float, float]] = {}
    colors = np.asarray(shapes.edge_color)
    for name, c in zip(roi_names(shapes), colors):
        out.setdefault(name, tuple(float(x) for x in c))
    return out


def layer_times(image: Image) -> np.ndarray:
    """Time of each frame of a layer (its stored frame times, else 0, 1, 2, ...)."""
    n = image.data.shape[0] if image.data.ndim >= 3 else 1
    t = image.metadata.get(FRAME_TIMES)
    if t is not None and len(t) == n:
        return np.asarray(t, dtype=float)
    return np.arange(n, dtype=float)


def displayed_slice(image: Image, point: Sequence[float] | None) -> int:
    """The slice of a 4-D (frame, slice, y, x) layer shown at the viewer's world ``point``."""
    n = image.data.shape[1]
    if point is None:
        return 0
    data_point = np.asarray(image.world_to_data(tuple(point)[-image.ndim :]), dtype=float)
    return int(np.clip(np.round(data_point[1]), 0, n - 1))


def layer_curves(
    shapes: Shapes, images: list[Image], point: Sequence[float] | None = None
) -> list[Curve]:
    """One curve per ROI name per image layer, ROIs in order of first appearance.

    A volume layer (frame, slice, y, x) gives the curve of the slice displayed at the
    viewer's world ``point`` (its first slice without one): ROIs are drawn on a slice.
    """
    colors = roi_colors(shapes)
    curves = []
    for image in images:
        series = np.asarray(image.data)
        if series.ndim == 2:
            series = series[None]
        if series.ndim == 4:
            series = series[:, displayed_slice(image, point)]
        series = series.reshape(-1, *series.shape[-2:])
        for name, mask in roi_masks(shapes, image).items():
            curves.append(
                Curve(name, image.name, layer_times(image), roi_curve(series, mask), colors[name])
            )
    order = list(colors)
    curves.sort(key=lambda c: order.index(c.roi))
    return curves


def write_csv(path: str | os.PathLike, curves: list[Curve]) -> None:
    """Long format, one row per ROI, layer and frame (spreadsheets pivot it either way)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_HEADER)
        for c in curves:
            for i, (t, v) in enumerate(zip(c.times, c.values)):
                w.writerow((c.roi, c.layer, i, repr(float(t)), repr(float(v))))


def read_csv(path: str | os.PathLike) -> list[Curve]:
    """The curves of a file written by :func:`write_csv`."""
    rows: dict[tuple[str, str], list[tuple[int, float, float]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        header = tuple(next(r))
        if header != CSV_HEADER:
            raise ValueError(
                f"{path}: expected columns {', '.join(CSV_HEADER)}, got {', '.join(header)}"
            )
        for roi, layer, frame, t, v in r:
            rows.setdefault((roi, layer), []).append((int(frame), float(t), float(v)))
    out = []
    for (roi, layer), vals in rows.items():
        vals.sort()
        out.append(
            Curve(roi, layer, np.array([x[1] for x in vals]), np.array([x[2] for x in vals]))
        )
    return out


def ellipse_from_mask(mask: np.ndarray, shrink: float = 0.8) -> np.ndarray | None:
    """The 4 corners (y, x) of the rotated box of the ellipse with ``mask``'s second moments.

    A filled ellipse with semi-axis a has variance a^2 / 4 along it, so the semi-axes
    are twice the standard deviations. ``shrink`` keeps the ROI inside the vessel wall,
    as one draws a vessel ROI by hand (away from partial-volume edge pixels).
    """
    ys, xs = np.nonzero(mask)
    if ys.size < 3:
        return None
    c = np.array([ys.mean(), xs.mean()])
    cov = np.cov(np.stack([ys, xs]).astype(float)) + np.eye(2) / 12.0  # pixel extent
    evals, evecs = np.linalg.eigh(cov)
    half = shrink * 2.0 * np.sqrt(np.maximum(evals, 1e-6))
    u, v = evecs[:, 0] * half[0], evecs[:, 1] * half[1]
    return np.array([c - u - v, c + u - v, c + u + v, c - u + v])
