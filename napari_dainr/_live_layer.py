"""The layer a running fit streams into: one layer updated in place, contrast set once.

Qt-free (napari's layer model only). The result is placed over its input in world
coordinates, takes the input preview's contrast on the first snapshot (results are in
the input's intensity scale; a dim early snapshot would otherwise set limits that
saturate later ones), and keeps whatever contrast the user sets afterwards.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from dainr.result import Reconstruction

from . import _layers as L

log = logging.getLogger(__name__)


def result_name(input_name: str, method: str) -> str:
    """``"tiny (gridding)"`` fitted with dainr -> ``"tiny [dainr]"``."""
    return f"{input_name.removesuffix(' (gridding)')} [{method}]"


def find_layer(viewer: Any, name: str) -> Any | None:
    # Plugins may be handed proxies of layers: compare by name, never by identity.
    return next((x for x in viewer.layers if x.name == name), None)


def place_over(kwargs: dict[str, Any], source: Any) -> dict[str, Any]:
    """Compose a result layer's placement with its input layer's (a user may have scaled it)."""
    if source is None:
        return kwargs
    s_in = np.asarray(source.scale, float)[-2:]
    t_in = np.asarray(source.translate, float)[-2:]
    scale = np.asarray(kwargs["scale"], float)
    translate = np.asarray(kwargs["translate"], float)
    kwargs["scale"] = (scale[0], *(scale[-2:] * s_in))
    kwargs["translate"] = (translate[0], *(translate[-2:] * s_in + t_in))
    return kwargs


class LiveResultLayer:
    """The result layer of one fit: :meth:`show` each snapshot, :meth:`finish` with the result."""

    def __init__(self, viewer: Any, source: Any, method: str, spokes_per_frame: int):
        self.viewer = viewer
        self.source_name = source.name
        self.name = result_name(source.name, method)
        self.method = method
        self.spokes_per_frame = int(spokes_per_frame)
        self.layer = None  #: the napari layer, once the first snapshot arrived
        self.shown = 0  #: snapshots shown so far

    def source(self) -> Any | None:
        """The input layer, while it is still in the viewer."""
        return find_layer(self.viewer, self.source_name)

    def show(self, frames: np.ndarray) -> Any:
        """Put one snapshot ``[F, ny, nx]`` (complex) on screen; returns the layer."""
        mag = np.abs(frames).astype(np.float32)
        layer = self.layer if self.layer in self.viewer.layers else None
        layer = layer or find_layer(self.viewer, self.name)
        if layer is None:
            stub = Reconstruction(frames, self.method, {}, self.spokes_per_frame)
            data, kwargs, _ = L.result_layer(stub, self.name)
            place_over(kwargs, self.source())
            kwargs["contrast_limits"] = self._first_limits(mag)
            layer = self.viewer.add_image(data, **kwargs)
        else:
            layer.data = mag
            top = float(mag.max()) if mag.size else 1.0
            if self.shown == 0:  # a layer of an earlier fit of the same name: contrast anew
                limits = self._first_limits(mag)
                layer.contrast_limits_range = (limits[0], max(limits[1], top))
                layer.contrast_limits = limits
            else:  # keep the user's contrast; only widen the slider's range
                lo, hi = layer.contrast_limits_range
                if top > hi:
                    layer.contrast_limits_range = (lo, top)
        self.layer = layer
        self.shown += 1
        return layer

    def _first_limits(self, mag: np.ndarray) -> tuple[float, float]:
        src = self.source()
        if src is not None:
            lo, hi = (float(x) for x in src.contrast_limits)
            if hi > lo:
                return lo, hi
        return L.display_limits(mag)

    def finish(self, result: Reconstruction) -> None:
        """Attach the result to the layer; an ensemble's ``std`` gets its own layer."""
        if self.layer is not None:
            self.layer.metadata[L.RESULT] = result
            self.layer.metadata[L.FRAME_TIMES] = L.result_times(result)
            self.layer.metadata[L.SPOKES] = int(result.spokes_per_frame)
        if getattr(result, "std", None) is not None:
            self.add_std(result)

    def add_std(self, result: Reconstruction) -> Any:
        """The per-pixel standard deviation series as layer "<name> [std]", over the result."""
        old = find_layer(self.viewer, self.name + L.STD_SUFFIX)
        if old is not None:  # of an earlier fit of the same name
            self.viewer.layers.remove(old)
        data, kwargs, _ = L.std_layer(result, self.name)
        return self.viewer.add_image(data, **place_over(kwargs, self.source()))

    def add_rendered(self, rendered: Reconstruction, name: str, base_shape: tuple) -> Any:
        """A rendering of the fit on a finer grid / more frames, over the same field of view."""
        data, kwargs, _ = L.result_layer(rendered, name, base_shape=base_shape)
        place_over(kwargs, self.source())
        return self.viewer.add_image(data, **kwargs)
