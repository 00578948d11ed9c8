"""The gridding baseline: density-compensated adjoint NUFFT, SENSE-normalised coil combination."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Method


@dataclass(frozen=True)
class NufftConfig:
    """Nothing to set: the density compensation is chosen when the series is prepared
    (``dcf`` of :class:`dainr.session.FitSpec`, ``--dcf`` on the command line)."""


class NufftMethod(Method):
    name = "nufft"
    iterative = False  # one shot: no held-out spokes, no /history

    @property
    def total_steps(self) -> int:
        return 1

    def step(self, step: int) -> float:
        # The gridding images were made when the series was prepared; report their
        # L1 data consistency so that the loss is comparable with the learned methods.
        with torch.no_grad():
            y = self.prep.op.forward(self.prep.gridding)
            return float((y - self.prep.kspace).abs().mean())

    def current_frames(self) -> torch.Tensor:
        return self.prep.gridding


METHOD = NufftMethod
CONFIG = NufftConfig
