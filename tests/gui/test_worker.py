"""The plugin's pacing of the engine's messages (no Qt needed)."""

from __future__ import annotations

import numpy as np

from dainr.loop import Done, Progress, Snapshot
from napari_dainr._worker import thin_progress


def test_thin_progress_keeps_snapshots_ends_and_the_step_before_each_snapshot():
    frames = np.zeros((1, 2, 2), np.complex64)
    msgs = [Progress(i, 1000, 1.0 / i, 0.0) for i in range(1, 1001)]
    msgs.insert(500, Snapshot(500, frames))  # after the progress of step 500
    msgs.append(Done(None))
    out = list(thin_progress(iter(msgs), interval=3600.0))
    steps = [m.step for m in out if isinstance(m, Progress)]
    assert steps == [1, 500, 1000]  # the first, the one a snapshot shows, the last
    kinds = [type(m).__name__ for m in out]
    assert kinds == ["Progress", "Progress", "Snapshot", "Progress", "Done"]


def test_thin_progress_passes_everything_when_steps_are_slow():
    msgs = [Progress(i, 5, 1.0, 0.0) for i in range(1, 6)]
    assert list(thin_progress(iter(msgs), interval=0.0)) == msgs


def test_thin_progress_passes_every_new_heldout_loss():
    # held-out evaluated every 10 steps; an engine may repeat the value in between
    msgs = []
    for i in range(1, 101):
        m = Progress(i, 100, 1.0 / i, 0.0)
        object.__setattr__(m, "heldout", 1.0 / (i // 10) if i >= 10 else float("nan"))
        msgs.append(m)
    out = list(thin_progress(iter(msgs), interval=3600.0))
    assert [m.step for m in out] == [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
