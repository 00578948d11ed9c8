"""The shared fit loop: a plain generator of typed messages, stoppable, resumable.

Every method (learned or iterative) implements :class:`dainr.methods.base.Method`; :func:`run_fit` drives
it step by step and yields :class:`Progress`, :class:`Snapshot` and finally
:class:`Done`. No Qt here: the plugin wraps the generator in a thread worker, the CLI
drains it with a progress bar, tests drain it directly.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .checkpoint import (
    load_checkpoint,
    mismatch_message,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from .config import to_dict
from .device import OOM_ADVICE, free_device_memory, oom_guarded
from .errors import FitError, FitStopped
from .holdout import Selection
from .methods.base import Method
from .metrics import PeakMemory
from .prepare import PreparedSeries
from .result import Reconstruction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    step: int  #: steps done so far (1-based after the first step)
    total: int
    loss: float
    seconds: float  #: wall time since the fit started
    #: held-out loss of the latest evaluation (:mod:`dainr.holdout`); nan before the first
    heldout: float = float("nan")
    #: step of the best held-out loss so far (the state the fit will return); None before
    best_step: int | None = None

    @property
    def eta(self) -> float:
        return self.seconds / max(self.step, 1) * (self.total - self.step)


@dataclass(frozen=True)
class Stage:
    """Progress of work a method does before its first step (DA-INR's GRASP prior)."""

    name: str  #: what runs, e.g. "prior"
    done: int  #: units done (iterations)
    total: int
    seconds: float  #: since the stage began

    @property
    def eta(self) -> float:
        return self.seconds / max(self.done, 1) * (self.total - self.done)


@dataclass(frozen=True)
class Snapshot:
    step: int
    frames: np.ndarray  #: complex64 [F, ny, nx], in the input's intensity scale
    loss: float = float("nan")


@dataclass(frozen=True)
class Done:
    result: Reconstruction


Message = Stage | Progress | Snapshot | Done


@dataclass(frozen=True)
class RunOptions:
    """How a fit is run, as opposed to what it computes (:class:`dainr.session.FitSpec`):
    live snapshots, checkpoints, and the checkpoint to resume from."""

    #: a :class:`Snapshot` every this many steps (None: none by count)
    snapshot_every: int | None = None
    #: a :class:`Snapshot` whenever this many seconds have passed since the last
    snapshot_seconds: float | None = None
    #: write a resumable checkpoint here: at the end, and every ``checkpoint_every`` steps
    checkpoint: str | os.PathLike | None = None
    checkpoint_every: int | None = None
    #: continue from this checkpoint (the RNG state included: as if never interrupted)
    resume: str | os.PathLike | None = None


class StopRequest:
    """Cooperative stop: the loop finishes the current step and returns what it has."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def request(self) -> None:
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()


def run_fit(
    method: Method,
    options: RunOptions | None = None,
    *,
    stop: StopRequest | None = None,
    seed: int | None = None,
    holdout_every: int | None = None,
    early_stop: int | None = None,
) -> Iterator[Message]:
    """Drive ``method`` to its end (or to a stop, or until it is done) and yield messages.

    First the method's :meth:`~Method.stages` (a :class:`Stage` message per unit; a stop
    request there ends the fit with :class:`~dainr.errors.FitStopped`, as there is no
    result yet), then its steps.

    ``seed`` (when given) fixes every RNG before the first step; :mod:`dainr.session`
    seeds once before building the method and passes none. Resuming restores the RNG
    state saved with the checkpoint, so a resumed run equals an uninterrupted one.

    With held-out spokes (``method.prep.heldout``) the estimate is scored on them every
    ``holdout_every`` steps (default: about 20 times per fit) and at the last step; the
    result is the best-scoring state (``chosen_step``), and the fit ends early once
    ``early_stop`` evaluations in a row brought no new best (None: the default of
    :mod:`dainr.holdout`, 0: never).
    """
    stop = stop or StopRequest()
    if seed is not None:
        seed_everything(seed)
    with PeakMemory(method.prep.device) as mem:
        if not method.ready:
            yield from _run_stages(method, stop)
        yield from _run_steps(method, options or RunOptions(), stop, holdout_every, early_stop, mem)


def _run_stages(method: Method, stop: StopRequest) -> Iterator[Stage]:
    """The method's preparation stages, stoppable and out-of-memory guarded between units.

    The preparation settings get each stage's seconds (``stage_seconds_<name>``) and the
    stages' whole time (``stages_seconds``, with the work after the last report).
    """
    t0 = t_stage = time.perf_counter()
    units = method.stages()
    name, done, total = "preparation", 0, 0
    while True:
        if stop.requested:
            if hasattr(units, "close"):
                units.close()
            where = f"the {name} ({done}/{total})" if total else f"the {name}"
            raise FitStopped(f"stopped during {where}, before the first step: no result")
        unit, oom = oom_guarded(next, units, None)
        if oom is not None:
            free_device_memory(method.prep.device)
            raise FitError(
                f"{method.prep.device} ran out of memory in the {name} ({oom}): {OOM_ADVICE}"
            )
        if unit is None:
            break
        if unit[0] != name:
            t_stage = time.perf_counter()
        name, done, total = unit
        now = time.perf_counter() - t_stage
        method.prep.settings[f"stage_seconds_{name}"] = round(now, 3)
        yield Stage(name, done, total, now)
    method.prep.settings["stages_seconds"] = round(time.perf_counter() - t0, 3)


def _run_steps(
    method: Method,
    opts: RunOptions,
    stop: StopRequest,
    holdout_every: int | None,
    early_stop: int | None,
    mem: PeakMemory,
) -> Iterator[Message]:
    snapshot_every, snapshot_seconds = opts.snapshot_every, opts.snapshot_seconds
    checkpoint, checkpoint_every, resume = opts.checkpoint, opts.checkpoint_every, opts.resume
    total = method.total_steps
    losses: list[float] = []
    sel = Selection(method, total, holdout_every, early_stop)
    start = 0
    if resume is not None:
        ck = load_checkpoint(resume)
        if ck["method"] != method.name:
            raise FitError(
                f"{resume}: checkpoint is for method {ck['method']!r}, not {method.name!r}"
            )
        try:
            method.load_state_dict(ck["state"])
        except (RuntimeError, KeyError, ValueError, IndexError):
            raise FitError(mismatch_message(resume, ck.get("config") or {}, method)) from None
        set_rng_state(ck["rng"])
        start, losses = ck["step"], list(ck["losses"])
        if ck.get("selection"):
            sel.load(ck["selection"])
        log.info("resumed from %s at step %d", resume, start)
    t0 = time.perf_counter()
    last_snap_t = t0
    # a result's wall time counts the preparation (coil maps, DA-INR's GRASP prior) that
    # fit_stream and the stages recorded, for a partial result of a fault as for the final one
    prepared_s = float(method.prep.settings.get("seconds", 0.0)) + float(
        method.prep.settings.get("stages_seconds", 0.0)
    )
    last_good: tuple[int, torch.Tensor] | None = None
    step = start
    partial = False

    maps = method.prep.op.maps.detach().to("cpu", torch.complex64).numpy()

    def result(frames: torch.Tensor, steps_done: int, is_partial: bool) -> Reconstruction:
        return Reconstruction(
            frames=_to_user(frames, method.prep),
            method=method.name,
            config=to_dict(method.config),
            spokes_per_frame=method.prep.series.spokes_per_frame,
            seconds=prepared_s + time.perf_counter() - t0,
            peak_memory_bytes=mem.peak_so_far(),
            partial=is_partial,
            steps_done=steps_done,
            loss_history=list(losses),
            history=sel.history(losses),
            heldout_spokes=None
            if method.prep.heldout is None
            else method.prep.heldout.split.acquisition_index(),
            coil_maps=maps,
            attrs=dict(method.prep.series.attrs)
            | {
                "coil_maps_source": method.prep.coil_maps_source,
                "preparation": json.dumps(method.prep.settings, sort_keys=True),
            },
        )

    def fault(message: str) -> FitError:
        kept = None if last_good is None else result(last_good[1], last_good[0], True)
        return FitError(message, partial=kept)

    def out_of_memory(where: str, detail: str) -> FitError:
        # The failed computation's tensors went with the exception (see oom_guarded), so
        # the cache can really be emptied now.
        method.release()
        free_device_memory(method.prep.device)
        return fault(f"{method.prep.device} ran out of memory in {where} ({detail}): {OOM_ADVICE}")

    for step in range(start, total):
        if stop.requested:
            partial = True
            break
        if method.done():
            break
        loss, oom = oom_guarded(method.step, step)
        if oom is not None:
            raise out_of_memory(f"step {step + 1}", oom)
        loss = float(loss)
        if not math.isfinite(loss):
            raise fault(
                f"the loss became {loss} at step {step + 1}: lower the learning rate or check "
                "the input scale" + ("; the last good snapshot is kept" if last_good else "")
            )
        losses.append(loss)
        now = time.perf_counter()
        due = (snapshot_every and (step + 1) % snapshot_every == 0) or (
            snapshot_seconds is not None and now - last_snap_t >= snapshot_seconds
        )
        due = bool(due and step + 1 < total)
        frames = None
        if due:  # a held-out evaluation reuses it; alone it renders only its frames
            frames, oom = oom_guarded(_frames, method)
            if oom is not None:
                raise out_of_memory(f"the estimate after step {step + 1}", oom)
        _, oom = oom_guarded(sel.after_step, step + 1, frames)  # may render its frames
        if oom is not None:
            raise out_of_memory(f"the held-out evaluation after step {step + 1}", oom)
        yield Progress(step + 1, total, loss, now - t0, sel.latest, sel.best_step)
        if due:
            last_snap_t = now
            last_good = (step + 1, frames)
            yield Snapshot(step + 1, _to_user(last_good[1], method.prep), loss)
        if checkpoint and checkpoint_every and (step + 1) % checkpoint_every == 0:
            save_checkpoint(checkpoint, method, step + 1, losses, sel.state())
        if sel.should_stop and step + 1 < total:
            sel.stopped_early = True
            log.info(
                "early stop after step %d: no better held-out loss in %d evaluations "
                "(best at step %d)",
                step + 1,
                sel.patience,
                sel.best_step,
            )
            step += 1
            break
    else:
        step = total
    done = step  # the steps run: fewer than total after a stop or a convergence
    if checkpoint:
        save_checkpoint(checkpoint, method, done, losses, sel.state())
    chosen = sel.choose(done)
    frames, oom = oom_guarded(_frames, method)
    if oom is not None:
        raise out_of_memory("the final frames", oom)
    final = result(frames, done, partial)
    final.chosen_step = chosen
    final.early_stopped = sel.stopped_early
    final.peak_memory_bytes = mem.peak_so_far()
    final.seconds = prepared_s + time.perf_counter() - t0
    yield Snapshot(done, final.frames, losses[-1] if losses else float("nan"))
    yield Done(final)


def _frames(method: Method) -> torch.Tensor:
    with torch.no_grad():
        return method.current_frames().detach()


def _to_user(frames: torch.Tensor, prep: PreparedSeries) -> np.ndarray:
    return (frames / prep.scale).to(torch.complex64).cpu().numpy()


def drain(messages: Iterator[Any]) -> Reconstruction:
    """Run a stream of messages to its :class:`Done` and return its result."""
    for m in messages:
        if isinstance(m, Done):
            return m.result
    raise FitError("the fit ended without a result")


__all__ = [
    "Done",
    "Message",
    "Progress",
    "RunOptions",
    "Snapshot",
    "StopRequest",
    "drain",
    "run_fit",
]
