"""The dock's volume mode: fit all (or selected) slices of a 4-D input through Dask.

:func:`volume_events` is Qt-free: a generator over the engine's
:func:`dainr.volume.fit_volume_stream` (one Dask task per slice, retried once), which
napari's thread worker drains. :class:`VolumeFitPanel` owns the controls (slices,
workers or a scheduler address, Fit volume, Stop) and fills one 4-D result layer
(frame, slice, y, x) slice by slice as results arrive. Stop cancels the pending slices;
finished ones stay in the layer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from dainr.loop import StopRequest
from dainr.volume import SliceFailed, SliceResult, VolumeStarted, fit_volume_stream, parse_slices

from ._volume import SLICES, VOLUME, volume_scale

log = logging.getLogger(__name__)


def volume_events(
    vol,
    spec,
    slices: list[int],
    stop: StopRequest,
    scheduler: str | None = None,
    workers: int | None = None,
    client=None,
) -> Iterator[Any]:
    """The engine's volume events, for a thread worker (Qt-free)."""
    logging.getLogger("distributed").setLevel(logging.ERROR)
    yield from fit_volume_stream(
        vol, spec, slices, client=client, scheduler=scheduler, workers=workers, stop=stop
    )


def find_volume_layer(viewer):
    """The selected layer if it carries a volume, else the last such layer, else None."""
    active = viewer.layers.selection.active
    if active is not None and VOLUME in active.metadata:
        return active
    for layer in reversed(list(viewer.layers)):
        if VOLUME in layer.metadata:
            return layer
    return None


class VolumeFitPanel:
    """Builds the Qt controls lazily (so that the Qt-free parts import without Qt)."""

    def __init__(self, viewer, settings):
        from qtpy.QtWidgets import (
            QGroupBox,
            QHBoxLayout,
            QLabel,
            QLineEdit,
            QProgressBar,
            QPushButton,
            QSpinBox,
            QVBoxLayout,
        )

        self.viewer, self.settings = viewer, settings
        self.box = QGroupBox("Volume (stack-of-stars / multi-slice) on Dask")
        self.slices = QLineEdit()
        self.slices.setPlaceholderText("all slices, or e.g. 3,5-9")
        self.workers = QSpinBox()
        self.workers.setRange(0, 64)
        self.workers.setSpecialValueText("auto")
        self.scheduler = QLineEdit()
        self.scheduler.setPlaceholderText("local cluster, or tcp://host:8786")
        self.fit_button = QPushButton("Fit volume")
        self.stop_button = QPushButton("Stop volume")
        self.stop_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setFormat("idle")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        for w in (QLabel("slices"), self.slices, QLabel("workers"), self.workers):
            row.addWidget(w)
        buttons = QHBoxLayout()
        buttons.addWidget(self.fit_button)
        buttons.addWidget(self.stop_button)
        lay = QVBoxLayout(self.box)
        lay.addLayout(row)
        lay.addWidget(self.scheduler)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        self.fit_button.clicked.connect(self.fit)
        self.stop_button.clicked.connect(self.stop)
        self.layer = None  #: the 4-D result layer being filled
        self.positions: dict[int, int] = {}
        self.done = 0
        self._stop: StopRequest | None = None
        self._worker = None

    @property
    def running(self) -> bool:
        return self._worker is not None

    def fit(self, *_: Any) -> bool:
        from napari.qt.threading import create_worker
        from napari.utils.notifications import show_error

        if self.running:
            return False
        src = find_volume_layer(self.viewer)
        if src is None:
            show_error("no volume: open an ISMRMRD stack-of-stars or multi-slice file first")
            return False
        vol = src.metadata[VOLUME]
        try:
            slices = parse_slices(self.slices.text() or None, vol.n_slices, vol.source)
            spf = vol.default_spokes_per_frame()
            spec = self.settings.request(vol.slice(slices[0]), spf).spec
        except Exception as e:  # a bad slice list or setting: one line, the dock stays usable
            show_error(str(e))
            return False
        n_frames = vol.n_spokes // spf
        ny, nx = vol.image_shape
        name = f"{src.name.replace(' (gridding)', '')} [{spec.method} volume]"
        data = np.zeros((n_frames, len(slices), ny, nx), np.float32)
        self.layer = self.viewer.add_image(
            data,
            name=name,
            scale=volume_scale(vol.pixel_size_mm),
            metadata={SLICES: list(slices)},
            contrast_limits=(0.0, 1.0),
        )
        self.positions = {z: i for i, z in enumerate(slices)}
        self.done = 0
        self.progress.setRange(0, len(slices))
        self.progress.setValue(0)
        self.progress.setFormat(f"0/{len(slices)} slices")
        self._stop = StopRequest()
        worker = create_worker(
            volume_events,
            vol,
            spec,
            slices,
            self._stop,
            self.scheduler.text().strip() or None,
            self.workers.value() or None,
            _start_thread=False,
            _ignore_errors=True,
        )
        worker.yielded.connect(self.on_event)
        worker.errored.connect(lambda e: show_error(f"volume fit: {e}"))
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.fit_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        worker.start()
        return True

    def stop(self, *_: Any) -> None:
        if self._stop is not None:
            self._stop.request()
            self.status.setText("stopping: pending slices cancelled, finished ones kept")

    def wait(self, msecs: int = 300_000) -> None:
        if self._worker is not None:
            self._worker.await_workers(msecs=msecs)

    def on_event(self, ev: Any) -> None:
        """One engine event: a finished slice goes into its place in the 4-D layer."""
        if isinstance(ev, VolumeStarted):
            self.status.setText(f"{len(ev.slices)} slices on {ev.cluster}")
        elif isinstance(ev, SliceResult):
            i = self.positions[ev.index]
            mag = np.abs(ev.frames).astype(np.float32)
            self.layer.data[:, i] = mag
            if self.done == 0:
                hi = float(np.percentile(mag, 99.5)) or 1.0
                self.layer.contrast_limits = (0.0, hi)
            self.done += 1
            self.layer.refresh()
            self.progress.setValue(self.done)
            self.progress.setFormat(f"{self.done}/{len(self.positions)} slices")
            self.status.setText(f"slice {ev.index}: {ev.seconds:.0f} s on {ev.worker}")
        elif isinstance(ev, SliceFailed):
            what = "retrying" if ev.retrying else "left out"
            self.status.setText(f"slice {ev.index} failed ({ev.error}); {what}")

    def _on_finished(self) -> None:
        self._worker, self._stop = None, None
        self.fit_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        n = len(self.positions)
        state = "done" if self.done == n else f"{self.done} of {n} slices"
        self.progress.setFormat(f"{state}")
