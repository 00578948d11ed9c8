"""What every reconstruction method implements: :class:`Method`.

:func:`dainr.loop.run_fit` drives a method: its preparation :meth:`~Method.stages`, then
:meth:`~Method.step` after step; :meth:`~Method.current_frames` is the estimate at any
time. Learned methods share more (:mod:`dainr.methods.learned`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import torch

from ..prepare import PreparedSeries


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

    def stages(self) -> Iterator[tuple[str, int, int]]:
        """Work before the first step, one unit at a time, yielding ``(stage, done,
        total)`` after each unit; none by default. :func:`run_fit` runs it (a
        :class:`Stage` message per unit, a stop request honoured between units, out of
        memory reported as for a step), and so does :meth:`prepare`."""
        return iter(())

    @property
    def ready(self) -> bool:
        """Whether :meth:`stages` has run (or there are none): the first step may come."""
        return True

    def prepare(self) -> None:
        """Run :meth:`stages` to the end, without reports, unless the method is ready."""
        if not self.ready:
            for _ in self.stages():
                pass

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
    #: No method does: a frame missing a spoke is not a frame with all of them, and the
    #: held-out loss chose steps short of the truth's best on the development cases
    #: (benchmarks/README.md, "Held-out spokes and ensembles").
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


__all__ = ["Method"]
