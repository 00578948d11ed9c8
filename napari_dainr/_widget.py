"""Dock widget "DA-INR reconstruction": pick k-space and a method, Fit, watch, Stop, Save, Render.

The composition of the dock's parts: the input panel (which k-space, spokes per
frame), the settings panel (method and its configuration), the fit session (the
background job and its signals), the live result layer, the loss plot and the result
box. This module only wires the session's signals to the others.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import napari
from napari.utils.notifications import notification_manager, show_error, show_warning
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from dainr.errors import DainrError, FitStopped
from dainr.result import Reconstruction

from ._dock import DockWatcher
from ._fit_session import FitSession
from ._input_panel import InputPanel
from ._live_layer import LiveResultLayer
from ._loss_plot import LossPlot
from ._result_panel import ResultPanel
from ._settings_panel import SettingsPanel
from ._volume_fit import VolumeFitPanel
from ._worker import FitRequest

log = logging.getLogger(__name__)


def format_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "--:--"
    h, rem = divmod(int(round(s)), 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class ReconstructionWidget(QWidget):
    """The reconstruction dock; ``fit``, ``stop``, ``save`` and ``render`` are its actions."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.inputs = InputPanel(napari_viewer)
        self.settings = SettingsPanel()
        self.session = FitSession(self)
        self.live: LiveResultLayer | None = None  #: the layer the last fit streamed into
        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip(
            "Reconstruct the chosen k-space; the result streams into a layer"
        )
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Finish the current step and keep the result so far")
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self._in_stage = False  #: a preparation stage (the prior) shows in the status line
        self._fitting_text = ""
        self.loss_plot = LossPlot(napari_viewer.theme)
        self.results = ResultPanel(napari_viewer, self.session, self.inputs)
        #: volumes (4-D input layers): all or selected slices through Dask
        self.volume = VolumeFitPanel(napari_viewer, self.settings)

        buttons = QHBoxLayout()
        buttons.addWidget(self.fit_button)
        buttons.addWidget(self.stop_button)
        lay = QVBoxLayout(self)
        for w in (self.inputs, self.settings):
            lay.addWidget(w)
        lay.addLayout(buttons)
        for w in (self.progress, self.status, self.loss_plot, self.results, self.volume.box):
            lay.addWidget(w)
        lay.addStretch(1)

        self.fit_button.clicked.connect(self.fit)
        self.stop_button.clicked.connect(self.stop)
        self.results.render_button.clicked.connect(self.render)
        s = self.session
        s.started.connect(self._on_started)
        s.prepared.connect(self._on_prepared)
        s.stage.connect(self._on_stage)
        s.progress.connect(self._on_progress)
        s.snapshot.connect(self._on_snapshot)
        s.finished.connect(self._on_finished)
        s.rendered.connect(self._on_rendered)
        s.failed.connect(self._on_failed)
        self._theme_connected = False
        self.open_dock()
        self._dock = DockWatcher(self, on_close=self.close_dock, on_open=self.open_dock)
        self._set_running(False)

    # ------------------------------------------------------------ dock lifecycle
    def open_dock(self) -> None:
        """Follow the viewer (layers, theme); done on creation and when the dock is shown."""
        self.inputs.connect_viewer()
        if not self._theme_connected:
            self.viewer.events.theme.connect(self._on_theme)
            self._theme_connected = True
            self._on_theme()

    def close_dock(self) -> None:
        """The dock was closed or hidden: stop the fit (its result is kept), stop following."""
        self.session.stop()
        self.volume.stop()
        self.inputs.disconnect_viewer()
        if self._theme_connected:
            self.viewer.events.theme.disconnect(self._on_theme)
            self._theme_connected = False

    def _on_theme(self, event=None) -> None:
        self.loss_plot.apply_theme(self.viewer.theme)

    # ------------------------------------------------------------ actions
    @property
    def running(self) -> bool:
        return self.session.running

    @property
    def result(self) -> Reconstruction | None:
        """The last fit's result (partial after Stop)."""
        return self.session.result

    def fit_request(self) -> FitRequest:
        """The fit the controls describe (raises ValueError for an unusable setting)."""
        if self.inputs.data is None:
            raise ValueError("no k-space: open a k-space file or a napari-dainr sample first")
        return self.settings.request(self.inputs.data, self.inputs.spokes_per_frame)

    def fit(self, *_: Any) -> None:
        """Start a fit in a background thread (the Fit button)."""
        if self.running:
            return
        try:
            req = self.fit_request()
        except ValueError as e:  # dainr.config.ConfigError is one
            show_error(str(e))
            return
        self.live = LiveResultLayer(
            self.viewer, self.inputs.layer, req.method, req.spokes_per_frame
        )
        self.loss_plot.reset()
        self.session.start(req)

    def stop(self, *_: Any) -> None:
        """Ask the running fit to stop after its current step; its result is kept."""
        if self.running:
            self.session.stop()
            self.status.setText("stopping after this step…")

    def save(self, path, result: Reconstruction | None = None):
        """Write ``result`` (default: the selected result layer's, else the last fit's)."""
        return self.results.save(path, result)

    def render(self, *_: Any) -> None:
        """Render the last fit at the chosen upscale / frames between into a new layer."""
        self.session.render(float(self.results.upscale.value), int(self.results.between.value))

    # ------------------------------------------------------------ session signals
    def _set_running(self, running: bool) -> None:
        self.inputs.form.enabled = not running
        self.settings.set_enabled(not running)
        self.results.set_enabled(not running)
        self.fit_button.setEnabled(not running)
        self.stop_button.setEnabled(running)

    def _show_progress(self, value: int, total: int, text: str) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(value)
        self.progress.setFormat(text)

    def _on_started(self, kind: str) -> None:
        self._set_running(True)
        if kind == "render":
            self.stop_button.setEnabled(False)  # a rendering is one pass
            self._show_progress(0, 0, f"rendering ×{self.results.upscale.value:g}…")
            return
        self._show_progress(0, 0, "preparing…")  # busy until the method is built
        self.status.setText(f"{self.session.request.method}: binning, coil maps, gridding…")

    def _on_prepared(self, m: Any) -> None:
        self._show_progress(0, m.total, f"step 0/{m.total}")
        self._fitting_text = f"fitting {m.n_frames} frames on {m.device}"
        self._in_stage = False
        self.status.setText(self._fitting_text)

    def _on_stage(self, m: Any) -> None:
        self._show_progress(
            m.done, m.total, f"{m.name} {m.done}/{m.total} · ETA {format_seconds(m.eta)}"
        )
        if not self._in_stage:
            self._in_stage = True
            self.status.setText(f"computing the {m.name} before the first step (Stop ends it)")

    def _on_progress(self, m: Any) -> None:
        if self._in_stage:  # the steps have begun
            self._in_stage = False
            self.status.setText(self._fitting_text)
        best = getattr(m, "best_step", None)
        best_text = "" if best is None else f" · best so far at step {best}"
        self._show_progress(
            m.step,
            m.total,
            f"step {m.step}/{m.total} · loss {m.loss:.3g}{best_text} · ETA {format_seconds(m.eta)}",
        )
        self.loss_plot.add_progress(m)

    def _on_snapshot(self, m: Any) -> None:
        # A display failure (a layer closed mid-update, a plugin hooked to the layer's
        # events) must not end a fit that may have run for many minutes.
        try:
            self.live.show(m.frames)
        except Exception as e:
            log.exception("could not display the snapshot of step %d", m.step)
            show_warning(f"could not display the snapshot of step {m.step}: {e}; the fit goes on")

    def _on_finished(self, result: Reconstruction) -> None:
        self._set_running(False)
        self.live.finish(result)
        self.loss_plot.set_result(result)
        state = f"stopped at step {result.steps_done}" if result.partial else "done"
        chosen = getattr(result, "chosen_step", None)
        kept = "" if chosen is None else f" · kept step {chosen}"
        last = result.loss_history[-1] if result.loss_history else float("nan")
        self._show_progress(
            1, 1, f"{state}{kept} · loss {last:.4g} · {format_seconds(result.seconds)}"
        )
        self.status.setText(
            f"{result.method}: {state} after {result.seconds:.1f} s, "
            f"{result.frames.shape[0]} frames → layer '{self.live.name}'"
        )

    def _on_rendered(self, rendered: Reconstruction, r: float, k: int) -> None:
        self._set_running(False)
        name = f"{self.live.name} ×{r:g}" + (f" +{k} between" if k else "")
        layer = self.live.add_rendered(rendered, name, self.session.result.frames.shape[-2:])
        n, ny, nx = layer.data.shape
        self._show_progress(1, 1, f"rendered {n} frames of {ny}×{nx}")

    def _on_failed(self, kind: str, exc: BaseException) -> None:
        self._set_running(False)
        if kind == "fit" and self.session.result is not None:
            self.live.finish(self.session.result)  # the last good snapshot, kept to save
        what = "DA-INR fit" if kind == "fit" else "Render"
        if isinstance(exc, FitStopped):  # the user's own stop, before there was a result
            self.status.setText(str(exc))
            self._show_progress(0, 1, "stopped")
            return
        if isinstance(exc, (DainrError, ValueError)):
            show_error(f"{what}: {exc}")  # the engine's errors are one line: what to change
        else:
            log.error("%s failed", kind, exc_info=exc)
            notification_manager.receive_error(type(exc), exc, exc.__traceback__)
        self.status.setText(f"failed: {exc}")
        self._show_progress(0, 1, f"{kind} failed" if kind == "render" else "failed")
