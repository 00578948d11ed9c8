"""Held-out spokes: a seeded, spread subset of the series' spokes that training never sees.

Without a ground truth, the only honest judge of a reconstruction is data it was not
fitted to. A fraction of all spokes (``--holdout``; none by default) is set aside: one spoke (more
only for large fractions) in each of a set of frames spread evenly over the series with
a seeded random phase, at a stratified random position inside the frame. Spreading one
spoke over many frames, rather than a few spokes out of every frame, keeps the cost
small: no frame loses more than that spoke (measured on the bundled DCE sample,
DA-INR, seed 0: one of 34 spokes in every fourth frame, 0.7% of the data, cost nothing
measurable, where 2 of every frame's 34 had cost 1.7 dB).

The training samples keep their shape ``[F, C, K]``: a held-out spoke's samples are
zero there and its weight in :attr:`dainr.prepare.PreparedSeries.train_mask` (and in the
density compensation) is zero, so every method's data term skips it. The fit loop scores
the current estimate of the frames that hold spokes out on those spokes every few steps,
keeps the best-scoring state and stops when the score has not improved for a while.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

log = logging.getLogger(__name__)

#: Fraction of all spokes held out by the methods that hold out without being asked
#: (``Method.holdout_by_default``; none does today): 2% is 6-7 spokes of a 25-frame,
#: 13-spoke cine, 15 of a 48-frame, 16-spoke perfusion series.
DEFAULT_FRACTION = 0.02
#: A frame keeps at least this many training spokes; with fewer, nothing is held out.
MIN_KEPT_SPOKES = 2
#: Added to the user's seed so that the split is not the same stream as the network's
#: initialisation (a separate generator either way: the global RNGs are left untouched).
_SALT = 0x5EED


def held_layout(n_frames: int, spokes_per_frame: int, fraction: float) -> tuple[int, int]:
    """``(frames, per_frame)``: how many frames hold spokes out, and how many each.

    ``round(fraction * F * S)`` spokes in all, at least one when asked for, rounded up to
    ``frames * per_frame``; one per frame over as many frames as that takes, more per
    frame only when there are more spokes than frames. None (``(0, 0)``) when a frame would keep fewer than
    :data:`MIN_KEPT_SPOKES` training spokes.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"held-out fraction must be in [0, 1), got {fraction}")
    if fraction == 0 or n_frames < 1:
        return 0, 0
    F, S = n_frames, spokes_per_frame
    total = max(1, int(round(fraction * F * S)))
    per_frame = math.ceil(total / F)
    if S - per_frame < MIN_KEPT_SPOKES:
        log.warning(
            "%d spokes per frame: holding %d out of a frame would leave fewer than %d: "
            "no held-out spokes, the last step is returned",
            S, per_frame, MIN_KEPT_SPOKES,
        )  # fmt: skip
        return 0, 0
    return math.ceil(total / per_frame), per_frame


@dataclass(frozen=True)
class HoldoutSplit:
    """Which spokes of which frames are held out (positions inside each frame)."""

    fraction: float  #: what was asked for
    seed: int
    spokes_per_frame: int
    n_frames: int  #: frames of the series (not only those holding spokes out)
    frames: np.ndarray  #: int64 [H], sorted: the frames that hold spokes out
    held: np.ndarray  #: int64 [H, n_held], sorted positions 0..S-1 inside each of those frames

    @property
    def n_held(self) -> int:
        """Spokes held out of each frame in :attr:`frames`."""
        return self.held.shape[1]

    @property
    def n_spokes(self) -> int:
        return self.held.size

    def acquisition_index(self) -> np.ndarray:
        """The held-out spokes' indices in acquisition order (as in /kspace), ``[H, n_held]``."""
        return self.held + self.spokes_per_frame * self.frames[:, None]

    def spoke_mask(self) -> np.ndarray:
        """bool ``[F, S]``: True for a training spoke, False for a held-out one."""
        mask = np.ones((self.n_frames, self.spokes_per_frame), dtype=bool)
        if self.n_spokes:
            mask[self.frames[:, None], self.held] = False
        return mask

    def settings(self) -> dict:
        """What an output records about the split (the indices go to /holdout_spokes)."""
        return {
            "fraction": self.fraction,
            "seed": self.seed,
            "spokes_held": int(self.n_spokes),
            "frames_holding_out": int(len(self.frames)),
            "spokes_held_per_frame": self.n_held,
        }


def make_split(n_frames: int, spokes_per_frame: int, fraction: float, seed: int) -> HoldoutSplit:
    """Frames ``floor((i + u) F / H)`` for ``i < H`` (one random phase ``u``), and in each
    the stratified positions ``floor((j + v_f) S / n)`` for ``j < n`` (a random ``v_f`` each)."""
    H, n = held_layout(n_frames, spokes_per_frame, fraction)
    rng = np.random.default_rng(int(seed) + _SALT)
    u = rng.random()
    frames = np.floor((np.arange(H) + u) * n_frames / max(H, 1)).astype(np.int64)
    frames = np.minimum(frames, n_frames - 1)
    v = rng.random(H)
    held = np.floor((np.arange(n)[None, :] + v[:, None]) * spokes_per_frame / max(n, 1))
    held = np.minimum(held.astype(np.int64), spokes_per_frame - 1).reshape(H, n)
    return HoldoutSplit(
        float(fraction), int(seed), int(spokes_per_frame), int(n_frames), frames, held
    )


def sample_mask(split: HoldoutSplit, n_readout: int) -> np.ndarray:
    """float32 ``[F, S * R]`` in a frame's spoke-major sample order: 0 on held-out samples."""
    return np.repeat(split.spoke_mask(), n_readout, axis=1).astype(np.float32)


def held_samples(split: HoldoutSplit, n_readout: int) -> np.ndarray:
    """Positions ``[H, n_held * R]`` of the held-out samples inside their frames' samples."""
    pos = split.held
    return (pos[:, :, None] * n_readout + np.arange(n_readout)).reshape(pos.shape[0], -1)


@dataclass
class HeldOut:
    """The held-out samples of a prepared series, on its device, in its scaled units."""

    split: HoldoutSplit
    op: object  #: a RadialOperator on the held-out trajectories of :attr:`frames` (same maps)
    kspace: torch.Tensor  #: [H, C, n_held * R] complex, times the series' scale
    #: [H, n_held * R]: the radial ramp |k| of each held-out sample (see :meth:`loss`)
    weights: torch.Tensor

    @property
    def frames(self) -> torch.Tensor:
        """int64 [H]: the frames holding spokes out (the only frames :meth:`loss` reads)."""
        return torch.as_tensor(self.split.frames, device=self.kspace.device)

    def loss(self, frames: torch.Tensor) -> float:
        """``sum_k w_k |A_h x - y_h|^2 / sum_k w_k``, averaged over coils, of the images
        ``frames`` of :attr:`frames` (``[H, ny, nx]``; or all ``F`` frames, subset here).

        The ramp ``w`` makes the radial samples count as a uniform cover of k-space, so
        that (Parseval) this estimates each coil image's squared error plus the noise
        variance: what PSNR measures. On the real cine it chose the truly best state
        within 0.01 dB where the unweighted mean ``|r|`` (eq. 1) or ``|r|^2``, ruled by
        the strong samples near the centre, missed by up to 0.4 dB
        (benchmarks/README.md, "Held-out spokes and ensembles").
        """
        if frames.shape[0] != self.kspace.shape[0]:
            frames = frames[self.frames.to(frames.device)]
        with torch.no_grad():
            d = self.op.forward(frames.to(self.kspace.dtype)) - self.kspace
            w = self.weights[:, None]
            return float((d.abs() ** 2 * w).sum() / (w.sum() * d.shape[1]))


#: Evaluations per fit when the interval is not given: ``every = ceil(total / EVALUATIONS)``.
#: An evaluation renders only the frames holding spokes out (see
#: :meth:`dainr.loop.Method.heldout_loss`): for DA-INR at 2%, 6 of a 25-frame cine's
#: frames. DA-INR's quality moves by tenths of a dB from one state
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
    "held_layout",
    "held_samples",
    "make_split",
    "sample_mask",
]
