"""The fit as the plugin runs it: the engine's one path into a fit, paced for a GUI.

Qt-free: ``fit_stream`` is a plain generator that the widget hands to napari's
``thread_worker``. The engine's :func:`dainr.session.fit_stream` builds the method in
the worker thread (preparation grids the series and estimates coil maps, which takes
seconds on real data) and frees device memory however the fit ends; this module only
thins out the per-step progress messages so that the GUI thread is not flooded.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dainr.data import KSpaceData
from dainr.loop import Done, Message, Progress, RunOptions, Snapshot, Stage, StopRequest
from dainr.session import FitSpec, Prepared
from dainr.session import fit_stream as engine_fit_stream

log = logging.getLogger(__name__)

#: GUI updates of the progress bar at most this often (s); a step can take milliseconds.
PROGRESS_INTERVAL = 0.1


@dataclass(frozen=True)
class FitRequest:
    """Everything the widget's controls say about one fit: the data, what the fit
    computes (:class:`FitSpec`) and how it runs (:class:`RunOptions`)."""

    data: KSpaceData
    spec: FitSpec
    run: RunOptions = RunOptions()

    @property
    def method(self) -> str:
        return self.spec.method

    @property
    def spokes_per_frame(self) -> int | None:
        return self.spec.spokes_per_frame


def thin_progress(messages: Iterator[Any], interval: float = PROGRESS_INTERVAL) -> Iterator[Any]:
    """Pass every snapshot and the end; pass a progress message only every ``interval`` s.

    The last progress before a snapshot or the end is always passed, so that the
    displayed step matches the displayed image, and so is every progress that brings a
    new held-out loss (evaluated every few steps), so that the plot gets all its points.
    """
    last_sent = -float("inf")
    last_heldout = math.nan
    held: Progress | None = None
    for m in messages:
        if isinstance(m, Progress):
            now = time.perf_counter()
            heldout = getattr(m, "heldout", math.nan)  # engines without held-out spokes
            new_heldout = math.isfinite(heldout) and heldout != last_heldout
            if now - last_sent >= interval or m.step == m.total or new_heldout:
                last_sent, held = now, None
                if new_heldout:
                    last_heldout = heldout
                yield m
            else:
                held = m
            continue
        if held is not None:
            yield held
            held = None
        yield m


def fit_stream(req: FitRequest, stop: StopRequest) -> Iterator[Prepared | Message]:
    """Build the method of ``req`` and run it: ``Prepared``, then the engine's messages."""
    yield from thin_progress(engine_fit_stream(req.data, req.spec, req.run, stop=stop))


__all__ = [
    "Done",
    "FitRequest",
    "Prepared",
    "Progress",
    "Snapshot",
    "Stage",
    "fit_stream",
    "thin_progress",
]
