"""Dock widget "DA-INR reconstruction": pick k-space and a method, Fit, watch, Stop, Save, Render.

A thin UI: the fit is the engine's generator (:mod:`napari_dainr._worker`) run in
napari's thread worker; this module only turns its messages into layer updates, a
progress bar and a loss plot.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, PushButton, SpinBox
from napari.qt.threading import create_worker
from napari.utils.notifications import notification_manager, show_error, show_info, show_warning
from qtpy.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from dainr.errors import DainrError
from dainr.loop import Done, Progress, Snapshot, StopRequest
from dainr.methods import DEFAULT_METHOD, available_methods, get_method
from dainr.physics.binning import plan_binning
from dainr.result import Reconstruction

from . import _layers as L
from ._config_form import build_form, default_steps, has_steps, read_overrides
from ._plot import ThemedCanvas
from ._worker import FitRequest, Prepared, fit_stream

log = logging.getLogger(__name__)

#: default seconds between live snapshots: each costs one full forward pass of the model
#: over all frames, so a few seconds keeps the overhead to a few percent of the fit.
LIVE_EVERY_S = 2.0
#: the loss plot redraws at most this often (s); matplotlib's Agg draw takes ~20 ms.
PLOT_INTERVAL = 0.5


def format_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "--:--"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _name(layer: Any) -> str | None:
    # Plugins may be handed proxies of layers: compare by name, never by identity.
    return None if layer is None else layer.name


def base_name(layer_name: str) -> str:
    return layer_name.removesuffix(" (gridding)")


class ReconstructionWidget(QWidget):
    """The reconstruction dock; ``fit``, ``stop``, ``save`` and ``render`` are its actions."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.result: Reconstruction | None = None  #: the last fit's result
        self.result_layer = None  #: the layer the last fit streamed into
        self.method = None  #: the last fit's method object, kept for Render
        self._worker = None
        self._stop: StopRequest | None = None
        self._snapshots = 0
        self._losses: list[tuple[int, float]] = []
        self._last_plot = 0.0
        self._build()
        self._connect()
        self._on_layers_changed()
        self._on_method_changed()
        self._set_running(False)

    # ---------------------------------------------------------------- layout
    def _build(self) -> None:
        methods = available_methods()
        self.input = ComboBox(label="k-space", choices=self._kspace_choices, nullable=True)
        self.input.tooltip = "A layer opened from a k-space file or a napari-dainr sample"
        self.open_button = PushButton(text="Open k-space file…")
        self.spokes = SpinBox(label="spokes / frame", min=1, max=1_000_000, value=13)
        self.spokes.tooltip = (
            "Golden-angle spokes binned into each frame (chosen at reconstruction time)"
        )
        self.frames_label = Label(label="", value="")
        self.method_box = ComboBox(
            label="method",
            choices=methods,
            value=DEFAULT_METHOD if DEFAULT_METHOD in methods else methods[0],
        )
        # 0 shows as "method default": for methods that derive their step count
        self.steps = SpinBox(label="steps", min=0, max=10_000_000, value=1000)
        self.steps.native.setSpecialValueText("method default")
        self.device = ComboBox(label="device", choices=["auto", "cpu", "cuda"], value="auto")
        self.device.tooltip = "auto: a CUDA GPU when there is one, else the CPU"
        self.seed = SpinBox(label="seed", min=0, max=2**31 - 1, value=0)
        self.main_form = Container(
            widgets=[
                self.input,
                self.open_button,
                self.spokes,
                self.frames_label,
                self.method_box,
                self.steps,
                self.device,
                self.seed,
            ],
            labels=True,
        )

        self.live_every = FloatSpinBox(
            label="live update every (s)", min=0.0, max=3600.0, step=0.5, value=LIVE_EVERY_S
        )
        self.live_every.tooltip = (
            "Seconds between images streamed into the layer; 0 = after every step"
        )
        self.dcf = ComboBox(
            label="density compensation", choices=["ramp", "pipe-menon", "file"], value="ramp"
        )
        self.run_form = Container(widgets=[self.live_every, self.dcf], labels=True)
        self.config_form = build_form(None)
        self.advanced = QCollapsible("Advanced settings")
        adv = QWidget()
        self._adv_layout = QVBoxLayout(adv)
        self._adv_layout.setContentsMargins(0, 0, 0, 0)
        self._adv_layout.addWidget(self.run_form.native)
        self._adv_layout.addWidget(self.config_form.native)
        self.advanced.addWidget(adv)

        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip(
            "Reconstruct the chosen k-space; the result streams into a layer"
        )
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Finish the current step and keep the result so far")
        buttons = QHBoxLayout()
        buttons.addWidget(self.fit_button)
        buttons.addWidget(self.stop_button)

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.loss_plot = ThemedCanvas(self.viewer.theme, height_px=120)
        self._plot_empty()

        self.upscale = FloatSpinBox(label="upscale r", min=1.0, max=4.0, step=0.25, value=2.0)
        self.upscale.tooltip = "Spatial factor: r x r pixels per fitted pixel (fractional allowed)"
        self.between = SpinBox(label="frames between", min=0, max=15, value=0)
        self.between.tooltip = "Interpolated frames rendered in each gap between fitted frames"
        self.result_form = Container(widgets=[self.upscale, self.between], labels=True)
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip(
            "Write the result (the selected result layer, else the last fit) as .h5"
        )
        self.render_button = QPushButton("Render")
        self.render_button.setToolTip(
            "Evaluate the fitted continuous model on a finer grid into a new layer"
        )
        rbuttons = QHBoxLayout()
        rbuttons.addWidget(self.save_button)
        rbuttons.addWidget(self.render_button)
        rbox = QGroupBox("Result")
        rlay = QVBoxLayout(rbox)
        rlay.addWidget(self.result_form.native)
        rlay.addLayout(rbuttons)

        lay = QVBoxLayout(self)
        lay.addWidget(self.main_form.native)
        lay.addWidget(self.advanced)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(self.loss_plot)
        lay.addWidget(rbox)
        lay.addStretch(1)

    def _connect(self) -> None:
        ev = self.viewer.layers.events
        for e in (ev.inserted, ev.removed, ev.reordered):
            e.connect(self._on_layers_changed)
        self.viewer.events.theme.connect(self._on_theme)
        self.input.changed.connect(self._on_input_changed)
        self.open_button.changed.connect(self._open_file_dialog)
        self.spokes.changed.connect(self._update_frames_label)
        self.method_box.changed.connect(self._on_method_changed)
        self.fit_button.clicked.connect(self.fit)
        self.stop_button.clicked.connect(self.stop)
        self.save_button.clicked.connect(self._save_dialog)
        self.render_button.clicked.connect(self.render)

    # ---------------------------------------------------------------- inputs
    def _kspace_choices(self, _widget=None) -> list[tuple[str, Any]]:
        return [(layer.name, layer) for layer in self.viewer.layers if L.KSPACE in layer.metadata]

    def _on_layers_changed(self, event=None) -> None:
        before = _name(self.input.value)
        self.input.reset_choices()
        if self.input.value is None and self.input.choices:
            self.input.value = self.input.choices[-1]
        elif before != _name(self.input.value):
            self._on_input_changed()

    def _on_input_changed(self, *_: Any) -> None:
        layer = self.input.value
        if layer is None:
            self.frames_label.value = "open a k-space file or a sample (File > Open Sample)"
            return
        data = layer.metadata[L.KSPACE]
        self.spokes.max = data.n_spokes
        self.spokes.value = int(layer.metadata.get(L.SPOKES) or data.default_spokes_per_frame())
        self._update_frames_label()

    def _update_frames_label(self, *_: Any) -> None:
        layer = self.input.value
        if layer is None:
            return
        data = layer.metadata[L.KSPACE]
        try:
            b = plan_binning(data.n_spokes, int(self.spokes.value), data.source)
        except DainrError as e:
            self.frames_label.value = str(e)
            return
        unused = f", {b.n_dropped} spokes unused" if b.n_dropped else ""
        self.frames_label.value = (
            f"→ {b.n_frames} frames of {data.image_shape[0]}×{data.image_shape[1]}{unused}"
        )

    def _on_method_changed(self, *_: Any) -> None:
        try:
            _, config_cls = get_method(self.method_box.value)
        except Exception as e:  # a method module that fails to import: say so, keep the UI
            log.warning("method %s unavailable: %s", self.method_box.value, e)
            config_cls = None
        self._config_cls = config_cls
        self.steps.enabled = has_steps(config_cls)
        self.steps.value = default_steps(config_cls) or 0
        self.steps.tooltip = (
            "optimisation steps" if has_steps(config_cls) else "this method runs in one pass"
        )
        new = build_form(config_cls)
        self._adv_layout.replaceWidget(self.config_form.native, new.native)
        self.config_form.native.deleteLater()
        self.config_form = new

    def _open_file_dialog(self, *_: Any) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open radial k-space", "", "k-space (*.h5 *.hdf5 *.mat);;All files (*)"
        )
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path) -> None:
        """Read ``path`` with the plugin's reader into a new k-space layer and select it."""
        from ._reader import read_file

        try:
            data, kwargs, _ = read_file(path)
        except DainrError as e:
            show_error(str(e))
            return
        if L.KSPACE not in kwargs["metadata"]:
            show_error(f"{path}: a reconstruction, not k-space; it opens as an image only")
            self.viewer.add_image(data, **kwargs)
            return
        layer = self.viewer.add_image(data, **kwargs)
        self.input.value = layer

    # ---------------------------------------------------------------- fit
    def _set_running(self, running: bool) -> None:
        for w in (self.main_form, self.run_form, self.config_form, self.result_form):
            w.enabled = not running
        if not running:
            self.steps.enabled = has_steps(self._config_cls)
        self.fit_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        has_result = self.result is not None and not running
        self.save_button.setEnabled(has_result)
        self.render_button.setEnabled(has_result and self.can_render)

    @property
    def can_render(self) -> bool:
        """Whether the last fit's method has a continuous representation to render."""
        from dainr.render import supports_render

        return self.method is not None and supports_render(self.method)

    @property
    def running(self) -> bool:
        return self._worker is not None

    def fit_request(self) -> FitRequest:
        """The fit the controls describe (raises ValueError for an unusable setting)."""
        layer = self.input.value
        if layer is None:
            raise ValueError("no k-space: open a k-space file or a napari-dainr sample first")
        overrides = read_overrides(self.config_form, self._config_cls)
        if has_steps(self._config_cls) and self.steps.value > 0:
            overrides["steps"] = int(self.steps.value)
        return FitRequest(
            data=layer.metadata[L.KSPACE],
            method=self.method_box.value,
            spokes_per_frame=int(self.spokes.value),
            device=self.device.value,
            seed=int(self.seed.value),
            snapshot_seconds=float(self.live_every.value),
            dcf=self.dcf.value,
            overrides=overrides,
        )

    def fit(self, *_: Any) -> None:
        """Start a fit in a background thread (the button's action)."""
        if self.running:
            return
        try:
            req = self.fit_request()
        except ValueError as e:
            show_error(str(e))
            return
        self._input_layer = self.input.value
        self._out_name = f"{base_name(self._input_layer.name)} [{req.method}]"
        self.method = None
        self.result = None
        self._snapshots = 0
        self._losses = []
        self._plot_empty()
        self._stop = StopRequest()
        self.progress.setRange(0, 0)  # busy until the method is built
        self.progress.setFormat("preparing…")
        self.status.setText(f"{req.method}: binning, coil maps, gridding…")
        worker = create_worker(
            fit_stream, req, self._stop, _start_thread=False, _ignore_errors=True
        )
        worker.yielded.connect(self._on_message)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._set_running(True)
        worker.start()

    def stop(self, *_: Any) -> None:
        """Ask the running fit to stop after its current step; its result is kept."""
        if self._stop is not None and self.running:
            self._stop.request()
            self.status.setText("stopping after this step…")

    def _on_message(self, m: Any) -> None:
        if isinstance(m, Prepared):
            self.method = m.method
            self.progress.setRange(0, m.total)
            self.progress.setValue(0)
            self.progress.setFormat(f"step 0/{m.total}")
            self.status.setText(
                f"fitting {m.n_frames} frames on {m.device}"
            )
        elif isinstance(m, Progress):
            self.progress.setValue(m.step)
            self.progress.setFormat(
                f"step {m.step}/{m.total} · loss {m.loss:.4g} · ETA {format_seconds(m.eta)}"
            )
            self._losses.append((m.step, m.loss))
            self._plot_losses()
        elif isinstance(m, Snapshot):
            # A display failure (a layer closed mid-update, a plugin hooked to the layer's
            # events) must not end a fit that may have run for many minutes.
            try:
                self._show_snapshot(m)
            except Exception as e:
                log.exception("could not display the snapshot of step %d", m.step)
                show_warning(
                    f"could not display the snapshot of step {m.step}: {e}; the fit goes on"
                )
        elif isinstance(m, Done):
            self._on_done(m.result)

    def _show_snapshot(self, m: Snapshot) -> None:
        mag = np.abs(m.frames).astype(np.float32)
        layer = self.result_layer
        if layer is None or layer not in self.viewer.layers:
            layer = next((x for x in self.viewer.layers if x.name == self._out_name), None)
        first = self._snapshots == 0
        if layer is None:
            data, kwargs, _ = L.result_layer(
                Reconstruction(m.frames, self.method_box.value, {}, int(self.spokes.value)),
                self._out_name,
            )
            self._place_over_input(kwargs)
            kwargs["contrast_limits"] = self._first_limits(mag)
            layer = self.viewer.add_image(data, **kwargs)
        else:
            layer.data = mag
            if first:
                limits = self._first_limits(mag)
                layer.contrast_limits_range = (limits[0], max(limits[1], float(mag.max())))
                layer.contrast_limits = limits
            else:
                # Later snapshots keep the user's contrast; only widen the slider's range.
                lo, hi = layer.contrast_limits_range
                top = float(mag.max()) if mag.size else hi
                if top > hi:
                    layer.contrast_limits_range = (lo, top)
        self.result_layer = layer
        self._snapshots += 1

    def _first_limits(self, mag: np.ndarray) -> tuple[float, float]:
        """The input preview's contrast: results are in the input's intensity scale, and an
        early snapshot (the model still dim) would set limits that saturate later ones."""
        src = self._input_layer
        if src is not None and src in self.viewer.layers:
            lo, hi = (float(x) for x in src.contrast_limits)
            if hi > lo:
                return lo, hi
        return L.display_limits(mag)

    def _place_over_input(self, kwargs: dict[str, Any]) -> None:
        """Compose the result's placement with the input layer's (a user may have scaled it)."""
        src = self._input_layer
        if src is None or src not in self.viewer.layers:
            return
        s_in = np.asarray(src.scale, float)[-2:]
        t_in = np.asarray(src.translate, float)[-2:]
        scale = np.asarray(kwargs["scale"], float)
        translate = np.asarray(kwargs["translate"], float)
        kwargs["scale"] = (scale[0], *(scale[-2:] * s_in))
        kwargs["translate"] = (translate[0], *(translate[-2:] * s_in + t_in))

    def _on_done(self, result: Reconstruction) -> None:
        self.result = result
        if self.result_layer is not None:
            self.result_layer.metadata[L.RESULT] = result
            self.result_layer.metadata[L.FRAME_TIMES] = np.arange(
                result.frames.shape[0], dtype=float
            )
            self.result_layer.metadata[L.SPOKES] = int(result.spokes_per_frame)
        if result.loss_history:
            self._losses = list(enumerate(result.loss_history, start=1))
            self._plot_losses(force=True)
        state = f"stopped at step {result.steps_done}" if result.partial else "done"
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        last = result.loss_history[-1] if result.loss_history else float("nan")
        self.progress.setFormat(f"{state} · loss {last:.4g} · {format_seconds(result.seconds)}")
        self.status.setText(
            f"{result.method}: {state} after {result.seconds:.1f} s, "
            f"{result.frames.shape[0]} frames → layer '{self._out_name}'"
        )

    def _on_error(self, exc: BaseException) -> None:
        if isinstance(exc, (DainrError, ValueError)):
            # The engine's errors are one line that says what to change.
            show_error(f"DA-INR fit: {exc}")
        else:
            log.error("fit failed", exc_info=exc)
            notification_manager.receive_error(type(exc), exc, exc.__traceback__)
        self.status.setText(f"failed: {exc}")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("failed")
        self.method = None

    def _on_finished(self) -> None:
        self._worker = None
        self._stop = None
        self._set_running(False)

    # ---------------------------------------------------------------- plot
    def _on_theme(self, event=None) -> None:
        self.loss_plot.apply_theme(self.viewer.theme)
        self._plot_losses(force=True)

    def _plot_empty(self) -> None:
        self.loss_plot.clear()
        ax = self.loss_plot.axes
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("loss", fontsize=8)
        self.loss_plot.draw()

    def _plot_losses(self, force: bool = False) -> None:
        import time

        now = time.perf_counter()
        if not force and now - self._last_plot < PLOT_INTERVAL:
            return
        self._last_plot = now
        self._plot_empty()
        if not self._losses:
            return
        steps, losses = np.asarray(self._losses, dtype=float).T
        ax = self.loss_plot.axes
        ax.plot(
            steps, losses, color="#4ea0ff" if self.viewer.theme != "light" else "#1f5fbf", lw=1.2
        )
        if np.all(losses > 0) and losses.max() / losses.min() > 5:
            from matplotlib.ticker import NullFormatter

            ax.set_yscale("log")
            ax.yaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks collide
        ax.set_xlim(left=0)
        self.loss_plot.draw()

    # ---------------------------------------------------------------- save / render
    def _save_target(self) -> Reconstruction | None:
        active = self.viewer.layers.selection.active
        if active is not None and isinstance(active.metadata.get(L.RESULT), Reconstruction):
            if L.KSPACE not in active.metadata or active == self.result_layer:
                return active.metadata[L.RESULT]
        return self.result

    def _save_dialog(self, *_: Any) -> None:
        result = self._save_target()
        if result is None:
            return
        src = self.input.value.metadata.get(L.SOURCE) if self.input.value is not None else None
        start = (
            Path(src).with_name(f"{Path(src).stem}_{result.method}.h5")
            if src
            else Path(f"{result.method}.h5")
        )
        path, _ = QFileDialog.getSaveFileName(
            self, "Save reconstruction", str(start), "HDF5 (*.h5)"
        )
        if path:
            self.save(path)

    def save(self, path: str | Path, result: Reconstruction | None = None) -> Path | None:
        """Write ``result`` (default: what Save would pick) per the output contract."""
        from dainr.io import write_recon_h5

        result = result or self._save_target()
        if result is None:
            show_error("nothing to save yet: run a fit first")
            return None
        src = self.input.value.metadata.get(L.SOURCE) if self.input.value is not None else None
        try:
            write_recon_h5(path, result, input_path=src)
        except (DainrError, OSError) as e:
            show_error(f"save failed: {e}")
            return None
        show_info(f"saved {result.method} result to {path}")
        return Path(path)

    def render(self, *_: Any) -> None:
        """Render the last fit at the chosen upscale / frames-between into a new layer."""
        if self.result is None or self.running or not self.can_render:
            return
        r, k = float(self.upscale.value), int(self.between.value)
        from dainr.render import render_result

        worker = create_worker(
            render_result,
            self.method,
            self.result,
            upscale=r,
            frames_between=k,
            _start_thread=False,
            _ignore_errors=True,
        )
        worker.returned.connect(lambda res: self._on_rendered(res, r, k))
        worker.errored.connect(self._on_render_error)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._set_running(True)
        self.stop_button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.progress.setFormat(f"rendering ×{r:g}…")
        worker.start()

    def _on_rendered(self, rendered: Reconstruction, r: float, k: int) -> None:
        name = f"{self._out_name} ×{r:g}" + (f" +{k} between" if k else "")
        base_shape = tuple(self.result.frames.shape[-2:])
        data, kwargs, _ = L.result_layer(rendered, name, base_shape=base_shape)
        self._place_over_input(kwargs)
        self.viewer.add_image(data, **kwargs)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat(
            f"rendered {data.shape[0]} frames of {data.shape[1]}×{data.shape[2]}"
        )

    def _on_render_error(self, exc: BaseException) -> None:
        show_error(f"Render: {exc}")
        self.progress.setRange(0, 1)
        self.progress.setFormat("render failed")
