"""Dock widget "ROI signal curves": named ROIs (AO, PV, ...) and their mean magnitude per frame.

The ROIs live in one 2D Shapes layer ("ROIs") that applies to every frame. Curves are
drawn for every chosen image layer (e.g. the DA-INR fit next to the gridding preview,
as in the paper's Fig. 3b) and follow edits of the shapes and the frames a running fit
streams into its layer.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import napari
import numpy as np
from magicgui.widgets import LineEdit, Select
from napari.layers import Image, Shapes
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from . import _layers as L
from ._dock import DockWatcher
from ._plot import PlotCanvas
from ._roi_curves import Curve, ellipse_from_mask, layer_curves, write_csv

log = logging.getLogger(__name__)

ROI_LAYER = "ROIs"
#: the paper's two curves (Fig. 3b): aorta and portal vein, with fixed, distinct colours
PRESETS = {"AO": "#ff4d4d", "PV": "#3fb8ff"}
#: colours for further ROIs, in order of creation (colour-blind-friendly Okabe-Ito)
CYCLE = ("#e69f00", "#009e73", "#f0e442", "#cc79a7", "#d55e00", "#56b4e9")
#: names that simulated files use for the paper's ROIs
STORED_NAMES = {"aorta": "AO", "portal_vein": "PV"}
LINESTYLES = ("-", "--", ":", "-.")
#: coalesce bursts of events (a drag emits dozens) into one recomputation
UPDATE_DELAY_MS = 120
#: outline width in data pixels: thin enough to see inside a vessel a few pixels wide
EDGE_WIDTH = 0.4


class CurvesPlot(PlotCanvas):
    """ROI curves, one colour per ROI, one line style per layer (reconstructions solid)."""

    def __init__(self, theme: str = "dark", height_px: int = 220, parent=None):
        self.curves: list[Curve] = []
        self.layer_order: list[str] = []  #: layer names in line-style order
        super().__init__(theme, height_px, parent)

    def draw(self) -> None:
        ax = self.axes
        ax.set_xlabel("frame", fontsize=8)
        ax.set_ylabel("mean magnitude", fontsize=8)
        if not self.curves:
            ax.text(
                0.5,
                0.5,
                "draw an ROI (AO, PV, …)",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color=self.colors["text"],
                fontsize=9,
                alpha=0.7,
            )
            return
        for c in self.curves:
            order = self.layer_order.index(c.layer) if c.layer in self.layer_order else 0
            ax.plot(
                c.times,
                c.values,
                LINESTYLES[order % len(LINESTYLES)],
                color=c.color[:3],
                lw=1.4,
                marker="o" if len(c.values) <= 40 else None,
                ms=2.5,
                label=f"{c.roi} · {c.layer}",
            )
        ax.legend(fontsize=7, loc="best", framealpha=0.8)


class RoiCurvesWidget(QWidget):
    """The ROI dock: draw / name ROIs, pick layers, see and export their curves."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.curves: list[Curve] = []
        self._excluded: set[str] = set()  #: image layers the user unticked
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(UPDATE_DELAY_MS)
        self._timer.timeout.connect(self.update_curves)
        self._connected = False
        self._build()
        self._connect()
        self.open_dock()
        self._dock = DockWatcher(self, on_close=self.close_dock, on_open=self.open_dock)

    # ---------------------------------------------------------------- layout
    def _build(self) -> None:
        self.ao_button = QPushButton("AO")
        self.ao_button.setToolTip("Draw an ellipse named AO (aorta)")
        self.pv_button = QPushButton("PV")
        self.pv_button.setToolTip("Draw an ellipse named PV (portal vein)")
        self.name_edit = LineEdit(value="")
        self.name_edit.native.setPlaceholderText("other ROI name")
        self.draw_button = QPushButton("Draw")
        self.draw_button.setToolTip("Draw an ellipse with the name typed on the left")
        self.rename_button = QPushButton("Rename selected")
        self.rename_button.setToolTip("Give the selected shapes the name typed on the left")
        self.stored_button = QPushButton("ROIs from file")
        self.stored_button.setToolTip(
            "Place AO / PV ellipses from ROI masks stored with the k-space (simulated samples)"
        )
        grid = QGridLayout()
        grid.addWidget(QLabel("Draw ROI:"), 0, 0)
        grid.addWidget(self.ao_button, 0, 1)
        grid.addWidget(self.pv_button, 0, 2)
        grid.addWidget(self.stored_button, 0, 3)
        grid.addWidget(self.name_edit.native, 1, 0, 1, 2)
        grid.addWidget(self.draw_button, 1, 2)
        grid.addWidget(self.rename_button, 1, 3)

        self.layer_select = Select(choices=[], allow_multiple=True)
        self.layer_select.native.setMaximumHeight(64)
        self.layer_select.tooltip = "Image layers to measure (Ctrl-click to add or remove)"
        self.plot = CurvesPlot(self.viewer.theme, height_px=220)
        self.csv_button = QPushButton("Export CSV…")
        self.png_button = QPushButton("Save plot PNG…")
        exports = QHBoxLayout()
        exports.addWidget(self.csv_button)
        exports.addWidget(self.png_button)

        lay = QVBoxLayout(self)
        lay.addLayout(grid)
        lay.addWidget(QLabel("Layers:"))
        lay.addWidget(self.layer_select.native)
        lay.addWidget(self.plot, 1)
        lay.addLayout(exports)

    def _connect(self) -> None:
        self.layer_select.changed.connect(self._on_selection)
        self.ao_button.clicked.connect(lambda: self.draw("AO"))
        self.pv_button.clicked.connect(lambda: self.draw("PV"))
        self.draw_button.clicked.connect(lambda: self.draw(self.name_edit.value.strip() or None))
        self.rename_button.clicked.connect(
            lambda: self.rename_selected(self.name_edit.value.strip())
        )
        self.stored_button.clicked.connect(self.add_stored_rois)
        self.csv_button.clicked.connect(self._csv_dialog)
        self.png_button.clicked.connect(self._png_dialog)

    # ---------------------------------------------------------------- dock lifecycle
    def _viewer_emitters(self) -> list[tuple[Any, Any]]:
        """(emitter, callback) of every viewer and layer event the dock follows."""
        ev = self.viewer.layers.events
        out = [(e, self._refresh_layers) for e in (ev.inserted, ev.removed, ev.reordered)]
        out.append((self.viewer.events.theme, self._on_theme))
        # curves of a volume layer follow the displayed slice
        out.append((self.viewer.dims.events.current_step, self._on_dims))
        for layer in self.viewer.layers:
            out += [
                (layer.events.data, self.schedule_update),
                (layer.events.name, self._refresh_layers),
            ]
            if isinstance(layer, Shapes):
                out += [
                    (layer.events.features, self.schedule_update),
                    (layer.events.edge_color, self.schedule_update),
                ]
        return out

    def open_dock(self) -> None:
        """Follow the viewer's layers, shapes and theme (on creation, and when shown again)."""
        ev = self.viewer.layers.events
        for e in (ev.inserted, ev.removed, ev.reordered):
            e.connect(self._refresh_layers)
        self.viewer.events.theme.connect(self._on_theme)
        self.viewer.dims.events.current_step.connect(self._on_dims)
        self._connected = True
        self._on_theme()
        self._refresh_layers()
        self.update_curves()

    def close_dock(self) -> None:
        """The dock was closed or hidden: follow nothing until it is shown again."""
        self._timer.stop()
        self._connected = False
        for emitter, callback in self._viewer_emitters():
            emitter.disconnect(callback)

    # ---------------------------------------------------------------- layers
    def roi_layer(self, create: bool = True) -> Shapes | None:
        """The "ROIs" Shapes layer, created (2D, named shapes, labels shown) on demand."""
        for layer in self.viewer.layers:
            if layer.name == ROI_LAYER and isinstance(layer, Shapes):
                return layer
        if not create:
            return None
        layer = self.viewer.add_shapes(
            ndim=2,
            name=ROI_LAYER,
            axis_labels=L.AXES[-2:],
            # "color" labels each shape in its outline's colour (the plot uses it too).
            features={"name": np.array([], dtype=object), "color": np.array([], dtype=object)},
            face_color="transparent",
            edge_width=EDGE_WIDTH,
            text={
                "string": "{name}",
                "anchor": "upper_left",
                "size": 10,
                # lifted a pixel so a label never sits on a small bright vessel it names
                "translation": (-1.5, 0.0),
                "color": {"feature": "color", "fallback": "white"},
            },
        )
        layer.feature_defaults = {"name": None, "color": "#ffffff"}
        layer.current_face_color = "transparent"
        return layer

    def image_layers(self) -> list[Image]:
        return [x for x in self.viewer.layers if isinstance(x, Image)]

    def chosen_layers(self) -> list[Image]:
        chosen = set(self.layer_select.value)
        return [x for x in self.image_layers() if x.name in chosen]

    def _refresh_layers(self, event=None) -> None:
        if not self._connected:
            return
        names = [x.name for x in self.image_layers()]
        with self.layer_select.changed.blocked():
            self.layer_select.choices = names
            self.layer_select.value = [n for n in names if n not in self._excluded]
        for layer in self.viewer.layers:
            # Connecting twice is a no-op in napari's event system: no bookkeeping needed.
            layer.events.data.connect(self.schedule_update)
            layer.events.name.connect(self._refresh_layers)
            if isinstance(layer, Shapes):
                layer.events.features.connect(self.schedule_update)
                layer.events.edge_color.connect(self.schedule_update)
        self._keep_rois_on_top()
        self.stored_button.setEnabled(bool(self._stored_source()))
        self.schedule_update()

    def _keep_rois_on_top(self) -> None:
        """Outlines stay visible over layers added later (a fit's result layer)."""
        layer = self.roi_layer(create=False)
        if layer is None:
            return
        idx = self.viewer.layers.index(layer)
        if idx != len(self.viewer.layers) - 1:
            self.viewer.layers.move(idx, len(self.viewer.layers))

    def _on_selection(self, *_: Any) -> None:
        chosen = set(self.layer_select.value)
        self._excluded = {x.name for x in self.image_layers()} - chosen
        self.schedule_update()

    # ---------------------------------------------------------------- ROIs
    def _color_for(self, name: str, layer: Shapes) -> str:
        if name in PRESETS:
            return PRESETS[name]
        others = [
            n for n in dict.fromkeys(layer.features.get("name", [])) if n and n not in PRESETS
        ]
        idx = others.index(name) if name in others else len(others)
        return CYCLE[idx % len(CYCLE)]

    def _set_defaults(self, layer: Shapes, name: str) -> None:
        """What the next shape drawn or added is called and coloured."""
        color = self._color_for(name, layer)
        layer.feature_defaults = {"name": name, "color": color}
        layer.current_edge_color = color

    def draw(self, name: str | None) -> None:
        """Switch to drawing an ellipse that will be named ``name``."""
        if not name:
            show_info("type a name for the ROI first")
            return
        layer = self.roi_layer()
        layer.selected_data = set()
        self._set_defaults(layer, name)
        self.viewer.layers.selection.active = layer
        layer.mode = "add_ellipse"

    def rename_selected(self, name: str) -> None:
        layer = self.roi_layer(create=False)
        if layer is None or not name or not layer.selected_data:
            show_info("select shapes in the ROIs layer and type a name first")
            return
        color = self._color_for(name, layer)
        features = layer.features.copy()
        idx = sorted(layer.selected_data)
        features.loc[idx, "name"] = name
        features.loc[idx, "color"] = color
        layer.features = features
        layer.current_edge_color = color  # applies to the selected shapes
        layer.refresh_text()
        self.schedule_update()

    def add_ellipse(self, name: str, corners_world: np.ndarray) -> None:
        """Add an ellipse from its 4 box corners in world (y, x) coordinates."""
        layer = self.roi_layer()
        layer.selected_data = set()
        self._set_defaults(layer, name)
        layer.add_ellipses(np.asarray([layer.world_to_data(c) for c in corners_world], dtype=float))
        layer.refresh_text()

    def _stored_source(self) -> tuple[Image, dict] | None:
        """The first k-space layer whose data carries stored AO / PV masks."""
        from dainr.io.h5contract import stored_rois

        for layer in self.image_layers():
            data = layer.metadata.get(L.KSPACE)
            if data is None:
                continue
            rois = {k: v for k, v in stored_rois(data).items() if k in STORED_NAMES}
            if rois:
                return layer, rois
        return None

    def add_stored_rois(self, *_: Any) -> int:
        """Place AO / PV from the masks a (simulated) file stores; returns how many."""
        found = self._stored_source()
        if found is None:
            show_info("no k-space layer with stored ROI masks")
            return 0
        image, rois = found
        existing = set(self.roi_layer().features.get("name", []))
        added = 0
        for stored, (mask, _) in rois.items():
            name = STORED_NAMES[stored]
            corners = ellipse_from_mask(mask)
            if corners is None or name in existing:
                continue
            world = [np.asarray(image.data_to_world((0.0, *c)), float)[-2:] for c in corners]
            self.add_ellipse(name, np.asarray(world))
            added += 1
        self.schedule_update()
        return added

    # ---------------------------------------------------------------- curves
    def schedule_update(self, *_: Any) -> None:
        self._timer.start()

    def update_curves(self) -> list[Curve]:
        """Recompute and redraw every curve now (also what the debounce timer calls)."""
        layer = self.roi_layer(create=False)
        images = self.chosen_layers()
        try:
            self.curves = (
                layer_curves(layer, images, self.viewer.dims.point)
                if layer is not None and layer.nshapes
                else []
            )
        except Exception as e:  # a half-drawn shape must never break the dock
            log.debug("ROI curves not updated: %s", e)
            return self.curves
        self._draw()
        return self.curves

    def _on_dims(self, event=None) -> None:
        # only a volume layer's curves depend on where the viewer stands (its slice)
        if any(np.ndim(layer.data) == 4 for layer in self.chosen_layers()):
            self.schedule_update()

    def _on_theme(self, event=None) -> None:
        self.plot.apply_theme(self.viewer.theme)

    def _draw(self) -> None:
        self.plot.curves = self.curves
        self.plot.layer_order = self._layer_order()
        self.plot.refresh()

    def _layer_order(self) -> list[str]:
        """Layers in line-style order: reconstructions first (solid), gridding previews after."""
        names = list(dict.fromkeys(c.layer for c in self.curves))
        previews = set()
        for x in self.image_layers():
            if L.KSPACE in x.metadata:
                previews.add(x.name)
        return [n for n in names if n not in previews] + [n for n in names if n in previews]

    # ---------------------------------------------------------------- export
    def export_csv(self, path: str | Path) -> None:
        write_csv(path, self.update_curves())

    def export_png(self, path: str | Path) -> None:
        self.update_curves()
        self.plot.save_png(str(path))

    def _csv_dialog(self, *_: Any) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export ROI curves", "roi_curves.csv", "CSV (*.csv)"
        )
        if path:
            try:
                self.export_csv(path)
            except OSError as e:
                show_error(f"export failed: {e}")

    def _png_dialog(self, *_: Any) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save ROI plot", "roi_curves.png", "PNG (*.png)"
        )
        if path:
            try:
                self.export_png(path)
            except OSError as e:
                show_error(f"save failed: {e}")
