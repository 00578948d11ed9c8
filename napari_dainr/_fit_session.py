"""The fit (and render) lifecycle of the dock, as a QObject with signals.

One job at a time runs in napari's thread worker: a fit (the engine's one path into a
fit, :func:`napari_dainr._worker.fit_stream`) or a rendering of the last fit. The
session keeps what the job produced (:attr:`method`, :attr:`result`) and turns the
worker's messages into typed signals; it knows nothing of layers or controls.

A job's end signal (``finished``, ``rendered`` or ``failed``) comes after its thread
has ended, so :attr:`running` is already False for whoever receives it.
"""

from __future__ import annotations

import logging
from typing import Any

from napari.qt.threading import create_worker
from qtpy.QtCore import QObject, Signal

from dainr.errors import FitError
from dainr.loop import Done, Progress, Snapshot, Stage, StopRequest
from dainr.result import Reconstruction

from ._worker import FitRequest, Prepared, fit_stream

log = logging.getLogger(__name__)


class FitSession(QObject):
    """Start, stop and observe fits and renderings; one at a time."""

    #: a job began: "fit" or "render"
    started = Signal(str)
    #: the method is built (:class:`dainr.session.Prepared`: total steps, frames, device)
    prepared = Signal(object)
    #: :class:`dainr.loop.Stage`: work before the first step (DA-INR's GRASP prior)
    stage = Signal(object)
    #: :class:`dainr.loop.Progress` (thinned to a few per second)
    progress = Signal(object)
    #: :class:`dainr.loop.Snapshot`: the current frames, to be shown
    snapshot = Signal(object)
    #: the fit ended with a :class:`Reconstruction` (complete, or partial after a stop)
    finished = Signal(object)
    #: a rendering ended: (rendered :class:`Reconstruction`, upscale, frames between)
    rendered = Signal(object, float, int)
    #: a job ended with an error: ("fit" or "render", the exception)
    failed = Signal(str, object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.request: FitRequest | None = None  #: the last fit's request
        self.method = None  #: the last fit's method object (to render it)
        self.result: Reconstruction | None = None  #: the last fit's result
        self._worker = None
        self._kind = ""
        self._stop: StopRequest | None = None
        self._outcome: tuple[str, Any] | None = None

    @property
    def running(self) -> bool:
        return self._worker is not None

    @property
    def can_render(self) -> bool:
        """Whether the last fit's method has a continuous representation to render."""
        from dainr.render import supports_render

        return self.method is not None and self.result is not None and supports_render(self.method)

    # ------------------------------------------------------------ jobs
    def start(self, req: FitRequest) -> bool:
        """Run ``req`` in a background thread; False (nothing started) while a job runs."""
        if self.running:
            return False
        self.request, self.method, self.result = req, None, None
        self._stop = StopRequest()
        worker = create_worker(
            fit_stream, req, self._stop, _start_thread=False, _ignore_errors=True
        )
        worker.yielded.connect(self._on_message)
        self._run(worker, "fit")
        return True

    def render(self, upscale: float, frames_between: int) -> bool:
        """Render the last fit at ``upscale`` with ``frames_between`` interpolated frames."""
        if self.running or not self.can_render:
            return False
        from dainr.render import render_result

        worker = create_worker(
            render_result,
            self.method,
            self.result,
            upscale=upscale,
            frames_between=frames_between,
            _start_thread=False,
            _ignore_errors=True,
        )
        worker.returned.connect(lambda r: self._end("rendered", (r, upscale, frames_between)))
        self._run(worker, "render")
        return True

    def stop(self) -> None:
        """Ask a running fit to finish its current step; its result so far is kept."""
        if self._stop is not None and self.running:
            self._stop.request()

    def wait(self, msecs: int = 60_000) -> None:
        """Block until the running job's thread has ended (for closing and tests)."""
        if self._worker is not None:
            self._worker.await_workers(msecs=msecs)

    # ------------------------------------------------------------ worker plumbing
    def _run(self, worker, kind: str) -> None:
        worker.errored.connect(lambda e: self._end("failed", e))
        worker.finished.connect(self._on_worker_finished)
        self._worker, self._kind, self._outcome = worker, kind, None
        self.started.emit(kind)
        worker.start()

    def _end(self, what: str, payload: Any) -> None:
        self._outcome = (what, payload)

    def _on_message(self, m: Any) -> None:
        if isinstance(m, Prepared):
            self.method = m.method
            self.prepared.emit(m)
        elif isinstance(m, Stage):
            self.stage.emit(m)
        elif isinstance(m, Progress):
            self.progress.emit(m)
        elif isinstance(m, Snapshot):
            self.snapshot.emit(m)
        elif isinstance(m, Done):
            self.result = m.result
            self._end("finished", m.result)

    def _on_worker_finished(self) -> None:
        kind, outcome = self._kind, self._outcome
        self._worker, self._stop = None, None
        if outcome is None:  # the generator ended without Done: not expected from the engine
            outcome = ("failed", FitError(f"the {kind} ended without a result"))
        what, payload = outcome
        if what == "failed":
            if kind == "fit":
                # A fault after some snapshots keeps the last good one (FitError.partial),
                # so that the user can still save it; it cannot be rendered.
                self.method, self.result = None, getattr(payload, "partial", None)
            self.failed.emit(kind, payload)
        elif what == "rendered":
            self.rendered.emit(*payload)
        else:
            self.finished.emit(payload)
