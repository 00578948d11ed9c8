"""What every method fitted by a torch optimiser shares: one gradient step per loop step.

A learned method builds its networks, hands its optimiser (and a step schedule, if it
has one) to :meth:`LearnedMethod.use_optimizer`, and implements
:meth:`LearnedMethod.training_loss`, the forward pass and objective of one step. The
base owns the rest: the step itself (zero, backward, update, schedule, then
:meth:`LearnedMethod.after_update`), the step count, what a checkpoint holds and what
:meth:`release` frees. Work before the first step (DA-INR's GRASP prior) is the
method's :meth:`~dainr.methods.base.Method.stages`; a method stepped by hand prepares on its
first step.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch

from ..prepare import PreparedSeries
from .base import Method


def random_frames(n_frames: int, k: int, device: torch.device | str) -> torch.Tensor:
    """``k`` distinct random frame indices (one draw of the global RNG), on ``device``.

    One frame is drawn with ``randint`` and several with ``randperm``, as the released
    codes did; drawing on the CPU keeps a seed's frames the same on every device.
    """
    idx = torch.randperm(n_frames)[:k] if k > 1 else torch.randint(n_frames, (1,))
    return idx.to(device)


class LearnedMethod(Method):
    """A method whose state is networks fitted by gradient steps.

    ``networks`` names the attributes (``nn.Module``) whose weights, with the optimiser's
    and the schedule's state, make up a checkpoint. The config has a ``steps`` field.
    """

    #: attributes holding the networks (their names are the checkpoint's keys)
    networks: tuple[str, ...] = ()
    #: zero gradients in place instead of dropping them: for modules that accumulate
    #: into their own gradient buffer (the hash tables' in-place scatter)
    keep_grad_buffers: bool = False

    def __init__(self, prep: PreparedSeries, config: Any):
        super().__init__(prep, config)
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None

    def use_optimizer(
        self,
        optimizer: torch.optim.Optimizer,
        lr_step: int | None = None,
        lr_gamma: float = 1.0,
    ) -> None:
        """Fit with ``optimizer``; with ``lr_step``, its rate is multiplied by ``lr_gamma``
        every ``lr_step`` steps (``StepLR``, the schedule of the released codes)."""
        self.optimizer = optimizer
        self.scheduler = (
            None
            if lr_step is None
            else torch.optim.lr_scheduler.StepLR(optimizer, step_size=lr_step, gamma=lr_gamma)
        )

    @property
    def stateful(self) -> tuple[str, ...]:  # type: ignore[override]
        sched = ("scheduler",) if self.scheduler is not None else ()
        return (*self.networks, "optimizer", *sched)

    @property
    def total_steps(self) -> int:
        return self.config.steps

    @abstractmethod
    def training_loss(self, step: int) -> torch.Tensor:
        """The loss of step ``step`` (0-based), with gradients."""

    def after_update(self) -> None:
        """Called after each optimiser update (e.g. to update an average of the weights)."""

    def step(self, step: int) -> float:
        self.prepare()  # driven by hand rather than by run_fit: prepare on first use
        loss = self.training_loss(step)
        self.optimizer.zero_grad(set_to_none=not self.keep_grad_buffers)
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.after_update()
        return float(loss.detach())

    def release(self) -> None:
        """Drop the optimiser's moments (as large as the networks); the weights stay."""
        if self.optimizer is not None:
            self.optimizer.state.clear()


__all__ = ["LearnedMethod", "random_frames"]
