"""The live loss plot: training and held-out curves, the best step, and the progress text."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from dainr.result import Reconstruction
from napari_dainr._loss_plot import LossPlot

pytestmark = pytest.mark.gui


def progress(step: int, total: int = 10, heldout: float = math.nan, best=None):
    """A progress message as the engine sends it once held-out spokes are evaluated."""
    return SimpleNamespace(
        step=step, total=total, loss=1.0 / step, seconds=0.1 * step, eta=0.0,
        heldout=heldout, best_step=best,
    )  # fmt: skip


#: held-out loss every 2 steps, lowest at step 6 (then it rises: the fit starts on noise)
HELDOUT = {2: 0.9, 4: 0.7, 6: 0.6, 8: 0.65, 10: 0.8}


def feed(plot_or_signal) -> None:
    best, lowest = None, math.inf
    for s in range(1, 11):
        h = HELDOUT.get(s, math.nan)
        if h < lowest:
            best, lowest = s, h
        plot_or_signal(progress(s, heldout=h, best=best))


def legend_texts(plot) -> list[str]:
    return [t.get_text() for t in plot.axes.get_legend().get_texts()]


def test_both_curves_and_the_best_step_are_drawn(qtbot):
    plot = LossPlot("dark")
    qtbot.addWidget(plot)
    feed(plot.add_progress)
    assert plot.train == [(s, 1.0 / s) for s in range(1, 11)]
    assert plot.heldout == sorted(HELDOUT.items())
    assert plot.best_step == 6
    train, best = plot.axes.get_lines()
    (heldout,) = plot.heldout_axes.get_lines()  # its own axis: other units than training
    np.testing.assert_array_equal(train.get_xdata(), np.arange(1, 11))
    np.testing.assert_array_equal(heldout.get_xdata(), [2, 4, 6, 8, 10])
    np.testing.assert_array_equal(heldout.get_ydata(), [0.9, 0.7, 0.6, 0.65, 0.8])
    assert list(best.get_xdata()) == [6, 6]  # a vertical line at the best step
    assert legend_texts(plot) == ["training", "held-out", "best, step 6"]
    assert plot.heldout_axes.get_ylim()[0] > 0.5 and plot.axes.get_ylim()[0] < 0.2
    plot.refresh()  # a redraw replaces the twin axis instead of stacking another
    assert len(plot.figure.axes) == 2


def test_a_repeated_heldout_value_is_one_evaluation(qtbot):
    plot = LossPlot("dark")
    qtbot.addWidget(plot)
    for s in range(1, 5):  # an engine that repeats the latest held-out value between evaluations
        plot.add_progress(progress(s, heldout=0.5 if s < 3 else 0.4, best=1 if s < 3 else 3))
    assert plot.heldout == [(1, 0.5), (3, 0.4)]


def test_without_heldout_only_the_training_curve(qtbot):
    plot = LossPlot("light")
    qtbot.addWidget(plot)
    for s in range(1, 4):
        plot.add_progress(SimpleNamespace(step=s, total=3, loss=1.0 / s))  # an older engine
    assert len(plot.axes.get_lines()) == 1 and plot.axes.get_legend() is None
    assert plot.heldout_axes is None and len(plot.figure.axes) == 1
    assert plot.heldout == [] and plot.best_step is None


def test_the_result_history_replaces_the_live_curves(qtbot):
    plot = LossPlot("dark")
    qtbot.addWidget(plot)
    feed(plot.add_progress)
    result = Reconstruction(np.zeros((1, 4, 4), np.complex64), "dainr", {}, 13)
    result.loss_history = [3.0, 2.0, 1.0, 0.5]
    result.history = np.array([[1, 3.0, np.nan], [2, 2.0, 1.5], [3, 1.0, np.nan], [4, 0.5, 1.7]])
    result.chosen_step = 2
    plot.set_result(result)
    assert plot.train == [(1, 3.0), (2, 2.0), (3, 1.0), (4, 0.5)]
    assert plot.heldout == [(2, 1.5), (4, 1.7)] and plot.best_step == 2


def test_progress_text_says_where_the_best_was(viewer_widget):
    viewer, widget = viewer_widget
    feed(widget.session.progress.emit)  # what the session emits while a fit runs
    assert widget.progress.format().startswith("step 10/10 · loss 0.1 · best so far at step 6")
    assert widget.progress.value() == 10
    assert widget.loss_plot.heldout == sorted(HELDOUT.items())
