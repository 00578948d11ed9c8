"""The dock's input: which k-space layer to fit, at how many spokes per frame.

Follows the viewer's k-space layers (gridding previews that carry their k-space).
Spokes per frame are chosen at reconstruction time; changing them re-grids the
preview layer, so that what the user sees is binned as the fit will bin it. A spin box
emits one change per tick, so the re-gridding (and the engine's one "spokes are
dropped" log line that comes with binning) waits until the value has settled.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from magicgui.widgets import ComboBox, Container, Label, PushButton, SpinBox
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import QFileDialog, QVBoxLayout, QWidget

from dainr.data import KSpaceData
from dainr.errors import DainrError

from . import _layers as L

log = logging.getLogger(__name__)

#: ms without a further spin-box change before the preview is re-gridded
SETTLE_MS = 400


def frames_text(layer: Any) -> str:
    """What the preview layer shows: frames, matrix and spokes left over by the binning."""
    data: KSpaceData = layer.metadata[L.KSPACE]
    n_frames = int(layer.data.shape[0])
    unused = data.n_spokes - n_frames * int(layer.metadata[L.SPOKES])
    extra = f", {unused} spokes unused" if unused else ""
    return f"→ {n_frames} frames of {data.image_shape[0]}×{data.image_shape[1]}{extra}"


class InputPanel(QWidget):
    """The k-space layer chooser, "Open k-space file…", spokes per frame and their frames."""

    #: the preview layer was re-gridded at new spokes per frame (the layer)
    preview_updated = Signal(object)

    def __init__(self, viewer: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = viewer
        self.input = ComboBox(label="k-space", choices=self._choices, nullable=True)
        self.input.tooltip = "A layer opened from a k-space file or a napari-dainr sample"
        self.open_button = PushButton(text="Open k-space file…")
        self.spokes = SpinBox(label="spokes / frame", min=1, max=1_000_000, value=13)
        self.spokes.tooltip = (
            "Golden-angle spokes binned into each frame (chosen at reconstruction time)"
        )
        self.frames_label = Label(label="", value="")
        self.form = Container(
            widgets=[self.input, self.open_button, self.spokes, self.frames_label], labels=True
        )
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.form.native)
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(SETTLE_MS)
        self._settle.timeout.connect(self.refresh_preview)
        self._regrid = None  #: the running re-gridding worker
        self._regrid_spf: int | None = None  #: spokes per frame it was started for
        self._connected = False
        self.input.changed.connect(self._on_input_changed)
        self.open_button.changed.connect(self._open_file_dialog)
        self.spokes.changed.connect(self._on_spokes_changed)
        self.connect_viewer()

    # ------------------------------------------------------------ viewer events
    def connect_viewer(self) -> None:
        """Follow the viewer's layers (again); called when the dock is shown."""
        if not self._connected:
            ev = self.viewer.layers.events
            for e in (ev.inserted, ev.removed, ev.reordered):
                e.connect(self._on_layers_changed)
            self._connected = True
        self._on_layers_changed()

    def disconnect_viewer(self) -> None:
        """Stop following the viewer (the dock was closed or hidden)."""
        self._settle.stop()
        if self._connected:
            ev = self.viewer.layers.events
            for e in (ev.inserted, ev.removed, ev.reordered):
                e.disconnect(self._on_layers_changed)
            self._connected = False

    # ------------------------------------------------------------ what to fit
    @property
    def layer(self) -> Any | None:
        """The chosen k-space layer (None when there is none)."""
        return self.input.value

    @property
    def data(self) -> KSpaceData | None:
        return None if self.layer is None else self.layer.metadata[L.KSPACE]

    @property
    def spokes_per_frame(self) -> int:
        return int(self.spokes.value)

    @property
    def regridding(self) -> bool:
        """Whether a preview re-gridding is pending or running."""
        return self._settle.isActive() or self._regrid is not None

    def _choices(self, _widget=None) -> list[tuple[str, Any]]:
        return [(x.name, x) for x in self.viewer.layers if L.KSPACE in x.metadata]

    def _on_layers_changed(self, event=None) -> None:
        before = None if self.layer is None else self.layer.name
        self.input.reset_choices()
        if self.input.value is None and self.input.choices:
            self.input.value = self.input.choices[-1]
        elif before != (None if self.layer is None else self.layer.name):
            self._on_input_changed()

    def _on_input_changed(self, *_: Any) -> None:
        layer = self.layer
        if layer is None:
            self.frames_label.value = "open a k-space file or a sample (File > Open Sample)"
            return
        self.spokes.max = self.data.n_spokes
        self.spokes.value = int(
            layer.metadata.get(L.SPOKES) or self.data.default_spokes_per_frame()
        )
        self.frames_label.value = frames_text(layer)

    # ------------------------------------------------------------ re-gridding
    def _on_spokes_changed(self, *_: Any) -> None:
        if self.layer is not None and self.spokes_per_frame != self.layer.metadata.get(L.SPOKES):
            self.frames_label.value = f"→ re-gridding at {self.spokes_per_frame} spokes / frame…"
        self._settle.start()  # (re)start: only a settled value is gridded

    def refresh_preview(self) -> None:
        """Re-grid the preview layer at the chosen spokes per frame, in a worker thread."""
        self._settle.stop()
        layer = self.layer
        if layer is None or self._regrid is not None:
            return  # a running re-gridding checks the value again when it ends
        spf = self.spokes_per_frame
        if spf == layer.metadata.get(L.SPOKES):
            self.frames_label.value = frames_text(layer)
            return
        worker = create_worker(
            L.gridding_preview, self.data, spf, _start_thread=False, _ignore_errors=True
        )
        worker.returned.connect(lambda preview: self._on_regridded(layer, preview))
        worker.errored.connect(self._on_regrid_error)
        worker.finished.connect(self._on_regrid_finished)
        self._regrid, self._regrid_spf = worker, spf
        worker.start()

    def _on_regridded(self, layer: Any, preview: Any) -> None:
        if layer not in self.viewer.layers:
            return
        data, kwargs, _ = L.kspace_layer(self.data, preview, layer.name)
        layer.metadata.update(kwargs["metadata"])
        layer.data = data
        lo, hi = kwargs["contrast_limits"]
        layer.contrast_limits_range = (lo, max(hi, float(data.max()) if data.size else hi))
        layer.contrast_limits = (lo, hi)
        self.frames_label.value = frames_text(layer)
        self.preview_updated.emit(layer)

    def _on_regrid_error(self, exc: BaseException) -> None:
        self.frames_label.value = str(exc)

    def _on_regrid_finished(self) -> None:
        self._regrid = None
        # The value may have changed while it gridded (not retried after a failure).
        if self._connected and self.spokes_per_frame != self._regrid_spf:
            self.refresh_preview()

    def wait(self, msecs: int = 60_000) -> None:
        """Block until a running re-gridding has ended (for closing and tests)."""
        if self._regrid is not None:
            self._regrid.await_workers(msecs=msecs)

    # ------------------------------------------------------------ files
    def _open_file_dialog(self, *_: Any) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open radial k-space", "", "k-space (*.h5 *.hdf5 *.mat);;All files (*)"
        )
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path) -> Any | None:
        """Read ``path`` with the plugin's reader into a new layer; select it if k-space."""
        from ._reader import read_file

        try:
            data, kwargs, _ = read_file(path)
        except DainrError as e:
            show_error(str(e))
            return None
        layer = self.viewer.add_image(data, **kwargs)
        if L.KSPACE not in kwargs["metadata"]:
            show_error(f"{path}: a reconstruction, not k-space; it opens as an image only")
            return None
        self.input.value = layer
        return layer
