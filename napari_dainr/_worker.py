"""The fit as the plugin runs it: the engine's generator, prepared and paced for a GUI.

Qt-free: ``fit_stream`` is a plain generator that the widget hands to napari's
``thread_worker``. It builds the method in the worker thread (preparation grids the
series and estimates coil maps, which takes seconds on real data), thins out the
per-step progress messages so that the GUI thread is not flooded, and frees GPU memory
whatever way the fit ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dainr.data import KSpaceData
from dainr.fit import (
    Done,
    Message,
    Method,
    Progress,
    Snapshot,
    StopRequest,
    run_fit,
)

log = logging.getLogger(__name__)

#: GUI updates of the progress bar at most this often (s); a step can take milliseconds.
PROGRESS_INTERVAL = 0.1


@dataclass(frozen=True)
class FitRequest:
    """Everything the widget's controls say about one fit."""

    data: KSpaceData
    method: str
    spokes_per_frame: int
    device: str = "auto"
    seed: int = 0
    #: seconds between live snapshots; 0 means one after every step
    snapshot_seconds: float = 2.0
    dcf: str = "ramp"
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Prepared:
    """The method is built and about to run its first step."""

    method: Method
    total: int


def thin_progress(
    messages: Iterator[Message], interval: float = PROGRESS_INTERVAL
) -> Iterator[Message]:
    """Pass every snapshot and the end; pass a progress message only every ``interval`` s.

    The last progress before a snapshot or the end is always passed, so that the
    displayed step matches the displayed image.
    """
    last_sent = -float("inf")
    held: Progress | None = None
    for m in messages:
        if isinstance(m, Progress):
            now = time.perf_counter()
            if now - last_sent >= interval or m.step == m.total:
                last_sent, held = now, None
                yield m
            else:
                held = m
            continue
        if held is not None:
            yield held
            held = None
        yield m


def release_memory(method: Method | None, device_type: str) -> None:
    """Drop the method's large tensors and return cached GPU blocks to the driver."""
    if method is not None:
        method.release()
    if device_type == "cuda":
        import torch

        torch.cuda.empty_cache()


def fit_stream(req: FitRequest, stop: StopRequest) -> Iterator[Prepared | Message]:
    """Build the method of ``req`` and run it: ``Prepared``, then the engine's messages."""
    from dainr.api import make_method

    method = None
    device_type = "cpu"
    try:
        method = make_method(
            req.data,
            req.method,
            spokes_per_frame=req.spokes_per_frame,
            device=req.device,
            dcf=req.dcf,
            seed=req.seed,
            **req.overrides,
        )
        device_type = method.prep.device.type
        yield Prepared(method, method.total_steps)
        messages = run_fit(
            method,
            stop=stop,
            seed=req.seed,
            snapshot_seconds=req.snapshot_seconds,
        )
        yield from thin_progress(messages)
    finally:
        release_memory(method, device_type)


__all__ = ["Done", "FitRequest", "Prepared", "Progress", "Snapshot", "fit_stream", "thin_progress"]
