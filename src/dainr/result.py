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
    #: float64 [N, 3] per step: step, training loss, held-out loss (nan where not evaluated);
    #: None for one-shot methods (gridding)
    history: np.ndarray | None = None
    #: the step whose state ``frames`` is: the best held-out loss (the last step without
    #: held-out spokes); None for one-shot methods
    chosen_step: int | None = None
    early_stopped: bool = False  #: the fit ended before its step count: no better held-out loss
    #: ensembles: float32 [F, ny, nx], per pixel and frame the standard deviation over the
    #: members of the magnitude (ddof=1), in the input's intensity scale; ``frames`` is then
    #: the members' complex mean
    std: np.ndarray | None = None
    ensemble: int = 1  #: members averaged into ``frames``
    #: int64 [F, n]: acquisition-order indices of the spokes held out of the fit, if any
    heldout_spokes: np.ndarray | None = None
    #: complex64 [C, ny, nx]: the coil maps the fit used (the file's, the user's or the
    #: estimated ones), so that the result can be checked against the data it explains
    coil_maps: np.ndarray | None = None

    @property
    def magnitude(self) -> np.ndarray:
        return np.abs(self.frames)
