"""The shared fit loop: a plain generator of typed messages, stoppable, resumable.

Every method (learned or iterative) implements :class:`Method`; :func:`run_fit` drives
it step by step and yields :class:`Progress`, :class:`Snapshot` and finally
:class:`Done`. No Qt here: the plugin wraps the generator in a thread worker, the CLI
drains it with a progress bar, tests drain it directly.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import to_dict
from .device import OOM_ADVICE, free_device_memory, oom_guarded
from .errors import FitError
from .holdout import Selection
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
class Snapshot:
    step: int
    frames: np.ndarray  #: complex64 [F, ny, nx], in the input's intensity scale
    loss: float = float("nan")


@dataclass(frozen=True)
class Done:
    result: Reconstruction


Message = Progress | Snapshot | Done


class StopRequest:
    """Cooperative stop: the loop finishes the current step and returns what it has."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def request(self) -> None:
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()


class Method(ABC):
    """One reconstruction method on one prepared series."""

    name: str = "method"

    def __init__(self, prep: PreparedSeries, config: Any):
        self.prep = prep
        self.config = config

    @property
    @abstractmethod
    def total_steps(self) -> int: ...

    @abstractmethod
    def step(self, step: int) -> float:
        """Run step ``step`` (0-based); return its loss."""

    @abstractmethod
    def current_frames(self) -> torch.Tensor:
        """The current estimate ``[F, ny, nx]`` complex, in the prepared (scaled) units."""

    #: attributes with their own ``state_dict`` (networks, optimisers, schedulers) that
    #: make up a checkpoint; methods with other state override the two methods below
    stateful: tuple[str, ...] = ()

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name).state_dict() for name in self.stateful}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.stateful:
            getattr(self, name).load_state_dict(state[name])

    #: False for one-shot methods (gridding): no held-out spokes, no /history, no chosen step
    iterative: bool = True
    #: whether spokes are held out when the user does not say (FitSpec.holdout None).
    #: No method does: on the real cine (128², 13 spokes, DA-INR, seed 1) the held-out
    #: loss of 2% of the spokes rose from step 550 on while the truth kept improving to
    #: the last step (31.99 dB chosen against 33.20 dB at step 950): a frame missing a
    #: spoke is not a frame with all of them (benchmarks/README.md, "Held-out spokes").
    holdout_by_default: bool = False

    def heldout_loss(self, frames: torch.Tensor | None = None) -> float:
        """The ramp-weighted squared residual on the held-out spokes of every frame
        (:meth:`dainr.holdout.HeldOut.loss`); nan when none are held out.

        ``frames`` is the current estimate when the loop has it at hand already (a
        snapshot at the same step); methods with a cheaper path may override this.
        """
        held = self.prep.heldout
        if held is None:
            return float("nan")
        if frames is None:  # only the frames that hold spokes out
            with torch.no_grad():
                frames = self.frames_at(held.frames).detach()
        return held.loss(frames)

    def frames_at(self, frames: torch.Tensor) -> torch.Tensor:
        """The current estimate of some frames ``[len(frames), ny, nx]`` (scaled units);
        methods that can render a subset for less than all frames override this."""
        return self.current_frames()[frames]

    def result_state(self) -> dict[str, Any]:
        """A CPU copy of what :meth:`current_frames` (and rendering) depend on.

        The networks' weights among :attr:`stateful` (no optimiser state); methods
        without networks copy their whole :meth:`state_dict`.
        """
        nets = {n: getattr(self, n) for n in self.stateful}
        nets = {n: m for n, m in nets.items() if isinstance(m, torch.nn.Module)}
        if not nets:
            return _cpu_copy(self.state_dict())
        return {n: _cpu_copy(m.state_dict()) for n, m in nets.items()}

    def load_result_state(self, state: dict[str, Any]) -> None:
        nets = {n: getattr(self, n) for n in self.stateful}
        if set(state) and set(state) <= set(nets):
            for n, sd in state.items():
                nets[n].load_state_dict(sd)
        else:
            self.load_state_dict(state)

    def done(self) -> bool:
        """True once further steps would change nothing (an iterative method converged):
        the loop then ends with a complete result of the steps run so far."""
        return False

    def release(self) -> None:
        """Drop large tensors (the plugin calls this at the end of a fit)."""


def _cpu_copy(obj: Any) -> Any:
    """``obj`` with every tensor copied to the CPU (nested dicts, lists and tuples kept)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_copy(v) for v in obj)
    return obj


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    s = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def _set_rng_state(s: dict[str, Any]) -> None:
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def _mismatch_message(path: str | os.PathLike, saved: dict[str, Any], method: Method) -> str:
    """Why a checkpoint's state does not load: the configuration fields that differ."""
    now = to_dict(method.config)
    diff = sorted(k for k in set(now) | set(saved) if now.get(k) != saved.get(k))
    fields = ", ".join(f"{k} {saved.get(k)!r} -> {now.get(k)!r}" for k in diff[:6])
    return (
        f"{path}: the checkpoint's state does not fit this {method.name} configuration"
        + (f" (it was written with {fields})" if fields else "")
        + "; resume with the configuration it was written with"
    )


def save_checkpoint(
    path: str | os.PathLike,
    method: Method,
    step: int,
    losses: list[float],
    selection: dict[str, Any] | None = None,
) -> None:
    """Model, optimiser, RNG, step and held-out bookkeeping, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    torch.save(
        {
            "method": method.name,
            "config": to_dict(method.config),
            "step": step,
            "losses": list(losses),
            "state": method.state_dict(),
            "rng": _rng_state(),
            "selection": selection,
        },
        tmp,
    )
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    from .errors import InputError

    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "no such checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise InputError(
            path, None, f"not a readable checkpoint ({e.__class__.__name__})"
        ) from None


def run_fit(
    method: Method,
    *,
    stop: StopRequest | None = None,
    snapshot_every: int | None = None,
    snapshot_seconds: float | None = None,
    seed: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: str | os.PathLike | None = None,
    holdout_every: int | None = None,
    early_stop: int | None = None,
) -> Iterator[Message]:
    """Drive ``method`` to its end (or to a stop, or until it is done) and yield messages.

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
    total = method.total_steps
    losses: list[float] = []
    sel = Selection(method, total, holdout_every, early_stop)
    start = 0
    if seed is not None:
        seed_everything(seed)
    if resume is not None:
        ck = load_checkpoint(resume)
        if ck["method"] != method.name:
            raise FitError(
                f"{resume}: checkpoint is for method {ck['method']!r}, not {method.name!r}"
            )
        try:
            method.load_state_dict(ck["state"])
        except (RuntimeError, KeyError, ValueError, IndexError):
            raise FitError(_mismatch_message(resume, ck.get("config") or {}, method)) from None
        _set_rng_state(ck["rng"])
        start, losses = ck["step"], list(ck["losses"])
        if ck.get("selection"):
            sel.load(ck["selection"])
        log.info("resumed from %s at step %d", resume, start)
    t0 = time.perf_counter()
    last_snap_t = t0
    # a result's wall time counts the preparation (coil maps, DA-INR's GRASP prior) that
    # fit_stream recorded, for a partial result of a fault as for the final one
    prepared_s = float(method.prep.settings.get("seconds", 0.0))
    last_good: tuple[int, torch.Tensor] | None = None
    step = start
    partial = False

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

    with PeakMemory(method.prep.device) as mem:
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
    final.peak_memory_bytes = mem.peak
    final.seconds = prepared_s + time.perf_counter() - t0
    yield Snapshot(done, final.frames, losses[-1] if losses else float("nan"))
    yield Done(final)


def _frames(method: Method) -> torch.Tensor:
    with torch.no_grad():
        return method.current_frames().detach()


def _to_user(frames: torch.Tensor, prep: PreparedSeries) -> np.ndarray:
    return (frames / prep.scale).to(torch.complex64).cpu().numpy()


def drain(messages: Iterator[Message]) -> Reconstruction:
    """Run a fit to the end and return its result (for notebooks and tests)."""
    for m in messages:
        if isinstance(m, Done):
            return m.result
    raise FitError("the fit ended without a result")


__all__ = [
    "Done",
    "Message",
    "Method",
    "Progress",
    "Snapshot",
    "StopRequest",
    "drain",
    "load_checkpoint",
    "run_fit",
    "save_checkpoint",
    "seed_everything",
]
