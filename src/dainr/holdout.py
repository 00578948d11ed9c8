"""Held-out spokes: a seeded, spread subset of every frame's spokes that training never sees.

Without a ground truth, the only honest judge of a reconstruction is data it was not
fitted to. Each frame gives up the same number of spokes (so that the training and
held-out samples stay rectangular tensors ``[F, C, K]``); their positions inside the
frame are stratified with a seeded random phase, so that they are spread over the
frame's acquisition (and, golden angle, over its angles) and differ from frame to frame.
The fit loop scores the current estimate on these samples every few steps, keeps the
best-scoring state and stops when the score has not improved for a while.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from .data import RadialSeries

log = logging.getLogger(__name__)

#: Fraction of each frame's spokes held out when nothing is asked for (iterative methods).
DEFAULT_FRACTION = 0.05
#: A frame keeps at least this many training spokes; with fewer, nothing is held out.
MIN_KEPT_SPOKES = 2
#: Added to the user's seed so that the split is not the same stream as the network's
#: initialisation (a separate generator either way: the global RNGs are left untouched).
_SALT = 0x5EED


def held_per_frame(spokes_per_frame: int, fraction: float) -> int:
    """Spokes held out of each frame: ``round(fraction * S)``, at least one when asked for.

    None when that would take more than twice the fraction asked for (one of fewer than
    ``1 / (2 fraction)`` spokes: 10 at the default 5%): measured on the real cine at 5
    spokes per frame, holding one out cost GRASP 2 dB (benchmarks/README.md), more than
    any choice of step can win back.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"held-out fraction must be in [0, 1), got {fraction}")
    if fraction == 0:
        return 0
    S = spokes_per_frame
    n = max(1, int(round(fraction * S)))
    if n > 2 * fraction * S or S - n < MIN_KEPT_SPOKES:
        log.warning(
            "%d spokes per frame: holding %d out would take %.0f%% of the data (asked: %.0f%%): "
            "no held-out spokes, the last step is returned (ask for more with --holdout)",
            S, n, 100 * n / S, 100 * fraction,
        )  # fmt: skip
        return 0
    return n


@dataclass(frozen=True)
class HoldoutSplit:
    """Which spokes of which frame are held out (positions inside each frame)."""

    fraction: float  #: what was asked for
    seed: int
    spokes_per_frame: int
    held: np.ndarray  #: int64 [F, n_held], sorted positions 0..S-1 inside each frame

    @property
    def n_frames(self) -> int:
        return self.held.shape[0]

    @property
    def n_held(self) -> int:
        return self.held.shape[1]

    @property
    def kept(self) -> np.ndarray:
        """int64 [F, S - n_held]: the training spokes' positions inside each frame."""
        mask = np.ones((self.n_frames, self.spokes_per_frame), dtype=bool)
        np.put_along_axis(mask, self.held, False, axis=1)
        return np.nonzero(mask)[1].reshape(self.n_frames, -1)

    def acquisition_index(self, which: str = "held") -> np.ndarray:
        """Spoke indices in acquisition order (as in the file's /kspace), ``[F, n]``."""
        pos = self.held if which == "held" else self.kept
        return pos + self.spokes_per_frame * np.arange(self.n_frames)[:, None]

    def settings(self) -> dict:
        """What an output records about the split (the positions go to /holdout_spokes)."""
        return {
            "fraction": self.fraction,
            "seed": self.seed,
            "spokes_held_per_frame": self.n_held,
            "spokes_kept_per_frame": self.spokes_per_frame - self.n_held,
        }


def make_split(n_frames: int, spokes_per_frame: int, fraction: float, seed: int) -> HoldoutSplit:
    """Stratified positions: ``floor((j + u_f) S / n)`` for ``j < n`` with a random ``u_f`` per frame."""
    n = held_per_frame(spokes_per_frame, fraction)
    rng = np.random.default_rng(int(seed) + _SALT)
    u = rng.random(n_frames)
    j = np.arange(n)
    held = np.floor((j[None, :] + u[:, None]) * spokes_per_frame / max(n, 1)).astype(np.int64)
    held = np.minimum(held, spokes_per_frame - 1)
    return HoldoutSplit(float(fraction), int(seed), int(spokes_per_frame), held)


def _samples(pos: np.ndarray, n_readout: int) -> np.ndarray:
    """Spoke positions ``[F, n]`` -> sample positions ``[F, n * R]`` in a frame's spoke-major samples."""
    return (pos[:, :, None] * n_readout + np.arange(n_readout)).reshape(pos.shape[0], -1)


def split_series(series: RadialSeries, split: HoldoutSplit) -> tuple[RadialSeries, RadialSeries]:
    """``series`` as its training part and its held-out part (same frames, binning, maps)."""

    def part(pos: np.ndarray) -> RadialSeries:
        idx = _samples(pos, series.n_readout)
        return RadialSeries(
            kspace=np.ascontiguousarray(np.take_along_axis(series.kspace, idx[:, None], axis=2)),
            trajectory=np.ascontiguousarray(
                np.take_along_axis(series.trajectory, idx[:, :, None], axis=1)
            ),
            dcf=None if series.dcf is None else np.take_along_axis(series.dcf, idx, axis=1),
            image_shape=series.image_shape,
            coil_maps=series.coil_maps,
            reference=series.reference,
            binning=series.binning,
            n_readout=series.n_readout,
            attrs=series.attrs,
            source=series.source,
        )

    return part(split.kept), part(split.held)


@dataclass
class HeldOut:
    """The held-out samples of a prepared series, on its device, in its scaled units."""

    split: HoldoutSplit
    op: object  #: a RadialOperator on the held-out trajectories (same coil maps)
    kspace: torch.Tensor  #: [F, C, n_held * R] complex, times the series' scale
    #: [F, n_held * R]: the radial ramp |k| of each held-out sample (see :meth:`loss`)
    weights: torch.Tensor

    def loss(self, frames: torch.Tensor) -> float:
        """``sum_k w_k |A_h x - y_h|^2 / sum_k w_k``, averaged over coils.

        The ramp ``w`` makes the radial samples count as a uniform cover of k-space, so
        that (Parseval) this estimates each coil image's squared error plus the noise
        variance: what PSNR measures. On the real cine it chose the truly best state
        within 0.01 dB where the unweighted mean ``|r|`` (eq. 1) or ``|r|^2``, ruled by
        the strong samples near the centre, missed by up to 0.4 dB
        (benchmarks/README.md, "Held-out spokes and ensembles").
        """
        with torch.no_grad():
            d = self.op.forward(frames.to(self.kspace.dtype)) - self.kspace
            w = self.weights[:, None]
            return float((d.abs() ** 2 * w).sum() / (w.sum() * d.shape[1]))


#: Evaluations per fit when the interval is not given: ``every = ceil(total / EVALUATIONS)``.
#: An evaluation of DA-INR (render all frames, held-out NUFFT of all frames and coils)
#: costs about 4.4 training steps (64^2, 25 frames, 12 coils, loaded CPU), so every 50 of
#: its 1000 steps costs about 9%. DA-INR's quality moves by tenths of a dB from one state
#: to the next: on the real cine, evaluating every 40-60 steps chose within 0.19 dB of
#: the truth's best step, every 100 missed it by up to 0.39 dB (benchmarks/README.md).
EVALUATIONS = 20
#: Evaluations without a new best before the fit stops (``--early-stop``; 0 = never):
#: half the run at the default interval. Single states are noisy: on the real cine a
#: patience of 5 x 40 steps stopped a still-improving 1000-step DA-INR fit at 960 with
#: the state of step 760 (0.46 dB below the best), 8 or more never stopped one early
#: (benchmarks/README.md). So early stopping guards fits that stall for long.
DEFAULT_PATIENCE = 10


def default_every(total: int) -> int:
    return max(1, math.ceil(total / EVALUATIONS))


class Selection:
    """One fit's held-out bookkeeping: when to evaluate, the best state, the patience.

    ``heldout`` runs parallel to the loop's training losses (one entry per step, nan
    where the step was not evaluated). The best state is a CPU copy of what the method's
    frames depend on (:meth:`dainr.loop.Method.result_state`), taken whenever the
    held-out loss reaches a new minimum; ties keep the earlier state.
    """

    def __init__(self, method, total: int, every: int | None = None, patience: int | None = None):
        self.method = method
        self.enabled = method.iterative and method.prep.heldout is not None
        self.total = total
        self.every = default_every(total) if every is None else int(every)
        self.patience = DEFAULT_PATIENCE if patience is None else int(patience)
        if self.every < 1 or self.patience < 0:
            raise ValueError(
                f"held-out evaluation every {self.every} steps, patience {self.patience}: "
                "need every >= 1 and patience >= 0"
            )
        self.heldout: list[float] = []
        self.best_step: int | None = None
        self.best_loss = math.inf
        self.best_state: dict | None = None
        self.since_best = 0  #: evaluations since the best one
        self.latest = math.nan
        self.stopped_early = False

    def due(self, steps_done: int) -> bool:
        return self.enabled and (steps_done % self.every == 0 or steps_done == self.total)

    def after_step(self, steps_done: int, frames: torch.Tensor | None = None) -> None:
        """Record step ``steps_done``; evaluate it when due (``frames``: its estimate, if at hand)."""
        self.heldout.append(math.nan)
        if self.due(steps_done):
            self.evaluate(steps_done, frames)

    def evaluate(self, steps_done: int, frames: torch.Tensor | None = None) -> float:
        h = float(self.method.heldout_loss(frames))
        self.heldout[steps_done - 1] = h
        self.latest = h
        if h < self.best_loss:
            self.best_loss, self.best_step, self.since_best = h, steps_done, 0
            self.best_state = self.method.result_state()
        else:
            self.since_best += 1
        return h

    @property
    def should_stop(self) -> bool:
        return self.enabled and self.patience > 0 and self.since_best >= self.patience

    def history(self, losses: list[float]) -> np.ndarray | None:
        """float64 ``[N, 3]``: step, training loss, held-out loss (nan where not evaluated)."""
        if not self.method.iterative:
            return None
        n = len(losses)
        held = (self.heldout + [math.nan] * n)[:n]
        return np.column_stack([np.arange(1, n + 1), losses, held]).astype(np.float64)

    def choose(self, steps_done: int) -> int | None:
        """Put the method in its best held-out state; return that state's step.

        A last step that was not evaluated (a stop between evaluations) is evaluated
        first, so that the latest state is a candidate too. Without held-out spokes the
        chosen step is the last one.
        """
        if not self.method.iterative:
            return None
        if not self.enabled or steps_done == 0:
            return steps_done or None
        if math.isnan(self.heldout[steps_done - 1]):
            self.evaluate(steps_done)
        if self.best_step != steps_done and self.best_state is not None:
            self.method.load_result_state(self.best_state)
        return self.best_step

    def state(self) -> dict:
        """For checkpoints: a resumed fit chooses as an uninterrupted one would."""
        keys = ("heldout", "best_step", "best_loss", "best_state", "since_best", "latest")
        return {k: getattr(self, k) for k in keys}

    def load(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, list(v) if k == "heldout" else v)


__all__ = [
    "DEFAULT_FRACTION",
    "DEFAULT_PATIENCE",
    "EVALUATIONS",
    "HeldOut",
    "Selection",
    "default_every",
    "HoldoutSplit",
    "held_per_frame",
    "make_split",
    "split_series",
]
