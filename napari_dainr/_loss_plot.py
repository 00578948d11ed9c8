"""The live loss plot of a fit: training loss, held-out loss, and the best held-out step.

The training loss keeps falling while the image starts to fit noise and streaks; the
loss on the held-out spokes (never used for training) turns up when that happens, so
the two curves together show when the picture was best. The engine's messages may
predate held-out spokes: a missing ``heldout`` / ``best_step`` just draws less.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from matplotlib.ticker import NullFormatter

from ._plot import PlotCanvas

#: the plot redraws at most this often (s) while a fit streams; matplotlib's Agg draw
#: takes ~20 ms, a step can take a millisecond.
REDRAW_INTERVAL = 0.5
#: line colours per theme: training (blue) and held-out (orange), distinct for colour-blind
#: viewers (Okabe-Ito), brighter on the dark theme
COLORS = {
    "dark": {"train": "#56b4e9", "heldout": "#e69f00", "best": "#f0e442"},
    "light": {"train": "#0072b2", "heldout": "#d55e00", "best": "#009e73"},
}


class LossPlot(PlotCanvas):
    """Curves of one fit; feed it :meth:`add_progress` while it runs, :meth:`set_result` at the end."""

    def __init__(self, theme: str = "dark", height_px: int = 130, parent=None):
        self.train: list[tuple[int, float]] = []  #: (step, training loss)
        self.heldout: list[tuple[int, float]] = []  #: (step, held-out loss) where evaluated
        self.best_step: int | None = None  #: step of the lowest held-out loss so far (or chosen)
        self._last_draw = -math.inf
        #: the right-hand axis of the held-out curve (None until there is one)
        self.heldout_axes = None
        super().__init__(theme, height_px, parent)

    def reset(self) -> None:
        """Forget the curves (a new fit starts)."""
        self.train, self.heldout, self.best_step = [], [], None
        self.refresh()

    def add_progress(self, m: Any) -> None:
        """One progress message (``step``, ``loss``, optional ``heldout`` and ``best_step``)."""
        self.train.append((int(m.step), float(m.loss)))
        heldout = float(getattr(m, "heldout", math.nan))
        # A new evaluation (every few steps); engines may repeat the latest value in between.
        if math.isfinite(heldout) and (not self.heldout or self.heldout[-1][1] != heldout):
            self.heldout.append((int(m.step), heldout))
        best = getattr(m, "best_step", None)
        if best is not None:
            self.best_step = int(best)
        now = time.perf_counter()
        if now - self._last_draw >= REDRAW_INTERVAL or m.step == m.total:
            self._last_draw = now
            self.refresh()

    def set_result(self, result: Any) -> None:
        """The finished fit's full record: ``history`` [N, 3] (step, train, held-out) when it
        has one, else its per-step ``loss_history``; ``chosen_step`` marks the kept state."""
        history = getattr(result, "history", None)
        if history is not None and len(history):
            h = np.asarray(history, dtype=float).reshape(-1, 3)
            self.train = [(int(s), float(v)) for s, v in h[:, :2] if math.isfinite(v)]
            self.heldout = [(int(s), float(v)) for s, v in h[:, [0, 2]] if math.isfinite(v)]
        elif result.loss_history:
            self.train = list(enumerate(map(float, result.loss_history), start=1))
        chosen = getattr(result, "chosen_step", None)
        if chosen is not None:
            self.best_step = int(chosen)
        self.refresh()

    def draw(self) -> None:
        """Training loss on the left axis, held-out loss on its own right axis: they are in
        different units (mean |r| of the training samples against the ramp-weighted mean
        |r|^2 of the held-out ones, docs/kspace-format.md), so only their shapes compare."""
        ax = self.axes
        if self.heldout_axes is not None:  # the previous draw's twin (the base clears only ax)
            self.heldout_axes.remove()
            self.heldout_axes = None
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("training loss", fontsize=8)
        if not self.train:
            return
        colors = COLORS["light" if self.theme == "light" else "dark"]
        steps, losses = np.asarray(self.train, dtype=float).T
        handles = ax.plot(steps, losses, color=colors["train"], lw=1.2, label="training")
        _log_if_wide(ax, losses)
        ax.yaxis.label.set_color(colors["train"])
        if self.heldout:
            hs, hl = np.asarray(self.heldout, dtype=float).T
            twin = self.heldout_axes = ax.twinx()
            handles += twin.plot(
                hs, hl, color=colors["heldout"], lw=1.2, marker="o", ms=2.5, label="held-out"
            )
            _log_if_wide(twin, hl)
            twin.set_ylabel("held-out loss", fontsize=8, color=colors["heldout"])
            twin.tick_params(colors=self.colors["text"], labelsize=8)
            for spine in twin.spines.values():
                spine.set_color(self.colors["text"])
        if self.best_step is not None:
            handles.append(
                ax.axvline(
                    self.best_step,
                    color=colors["best"],
                    lw=1.0,
                    ls="--",
                    label=f"best, step {self.best_step}",
                )
            )
        ax.set_xlim(left=0)
        if len(handles) > 1:
            ax.legend(handles=handles, fontsize=7, loc="upper right", framealpha=0.8)


def _log_if_wide(ax, values: np.ndarray) -> None:
    """A log scale when the values span more than a factor 5 (a loss falling by decades)."""
    if np.all(values > 0) and values.max() / values.min() > 5:
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks collide
