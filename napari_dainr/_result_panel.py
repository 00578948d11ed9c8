"""The dock's "Result" box: save a result as the output ``.h5``, render the fit finer,
show the coil maps the fit used.

What Save writes: the selected layer's result when the selection is a result layer
(a read-back output, a rendering, the live layer), else the last fit's result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magicgui.widgets import Container, FloatSpinBox, SpinBox
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QFileDialog, QGroupBox, QHBoxLayout, QPushButton, QVBoxLayout

from dainr.errors import DainrError
from dainr.result import Reconstruction

from . import _layers as L
from ._live_layer import place_over


class ResultPanel(QGroupBox):
    """Upscale / frames-between controls and the Save and Render buttons."""

    def __init__(self, viewer: Any, session: Any, inputs: Any, parent=None):
        super().__init__("Result", parent)
        self.viewer, self.session, self.inputs = viewer, session, inputs
        self.upscale = FloatSpinBox(label="upscale r", min=1.0, max=4.0, step=0.25, value=2.0)
        self.upscale.tooltip = "Spatial factor: r x r pixels per fitted pixel (fractional allowed)"
        self.between = SpinBox(label="frames between", min=0, max=15, value=0)
        self.between.tooltip = "Interpolated frames rendered in each gap between fitted frames"
        self.form = Container(widgets=[self.upscale, self.between], labels=True)
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip(
            "Write the result (the selected result layer, else the last fit) as .h5"
        )
        self.render_button = QPushButton("Render")
        self.render_button.setToolTip(
            "Evaluate the fitted continuous model on a finer grid into a new layer"
        )
        self.maps_button = QPushButton("Coil maps")
        self.maps_button.setToolTip(
            "Add the coil maps the fit used as a layer (magnitude, one coil per slider step)"
        )
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.render_button)
        buttons.addWidget(self.maps_button)
        lay = QVBoxLayout(self)
        lay.addWidget(self.form.native)
        lay.addLayout(buttons)
        self.save_button.clicked.connect(self._save_dialog)
        self.maps_button.clicked.connect(self.add_coil_maps)

    def set_enabled(self, enabled: bool) -> None:
        """Controls follow whether a job runs and what the last fit left."""
        self.form.enabled = enabled
        has_result = enabled and self.session.result is not None
        self.save_button.setEnabled(has_result)
        self.render_button.setEnabled(has_result and self.session.can_render)
        self.maps_button.setEnabled(has_result and self.session.result.coil_maps is not None)

    def save_target(self) -> Reconstruction | None:
        active = self.viewer.layers.selection.active
        if active is not None and isinstance(active.metadata.get(L.RESULT), Reconstruction):
            if L.KSPACE not in active.metadata:  # not a gridding preview
                return active.metadata[L.RESULT]
        return self.session.result

    def _source(self) -> str | None:
        layer = self.inputs.layer
        return None if layer is None else layer.metadata.get(L.SOURCE)

    def _save_dialog(self, *_: Any) -> None:
        result = self.save_target()
        if result is None:
            return
        src = self._source()
        name = f"{Path(src).stem}_{result.method}.h5" if src else f"{result.method}.h5"
        start = Path(src).with_name(name) if src else Path(name)
        path, _ = QFileDialog.getSaveFileName(
            self, "Save reconstruction", str(start), "HDF5 (*.h5)"
        )
        if path:
            self.save(path)

    def save(self, path: str | Path, result: Reconstruction | None = None) -> Path | None:
        """Write ``result`` (default: what Save would pick) per the output contract."""
        from dainr.io import write_recon_h5

        result = result or self.save_target()
        if result is None:
            show_error("nothing to save yet: run a fit first")
            return None
        try:
            write_recon_h5(path, result, input_path=self._source())
        except (DainrError, OSError) as e:
            show_error(f"save failed: {e}")
            return None
        show_info(f"saved {result.method} result to {path}")
        return Path(path)

    def add_coil_maps(self, *_: Any) -> Any:
        """The coil maps of the selected result (else the last fit's) as an image layer
        ``[coils, ny, nx]`` of their magnitude, over the input layer."""
        import numpy as np

        result = self.save_target()
        if result is None or result.coil_maps is None:  # a layer without them: the last fit's
            result = self.session.result
        if result is None or result.coil_maps is None:
            show_error("no coil maps: run a fit first")
            return None
        source = self.inputs.layer
        name = f"{result.method} coil maps"
        if source is not None:
            name = f"{source.name.replace(' (gridding)', '')} coil maps"
        kwargs = {"name": name, "colormap": "magma", "scale": (1, 1, 1), "translate": (0, 0, 0)}
        return self.viewer.add_image(np.abs(result.coil_maps), **place_over(kwargs, source))
