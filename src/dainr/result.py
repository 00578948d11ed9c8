"""The result of any reconstruction method, as saved per the output contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Reconstruction:
    """A reconstructed series and everything needed to reproduce and judge it."""

    frames: np.ndarray  #: complex64 [n_frames, ny*r, nx*r]
    method: str
    config: dict[str, Any]
    spokes_per_frame: int
    seconds: float = 0.0  #: wall time of the fit
    peak_memory_bytes: int = 0  #: CPU RSS peak, or the CUDA allocator's peak on a GPU
    partial: bool = False  #: stopped before the configured end
    steps_done: int | None = None
    loss_history: list[float] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)  #: the input's attributes, carried over
    upscale: float = 1.0

    @property
    def magnitude(self) -> np.ndarray:
        return np.abs(self.frames)
