"""The shared fit loop (dainr.loop): stop, resume, snapshots, determinism, errors."""

import numpy as np
import pytest

import dainr
from dainr.errors import FitError, InputError
from dainr.loop import Done, Progress, RunOptions, Snapshot, StopRequest, drain, run_fit

from .conftest import TINY_DAINR as TINY


def _fit(data, steps, **kw):
    # On the CPU: equal seeds must give bit-equal results, which CUDA's atomic scatters
    # (the hash table's gradient) do not promise.
    return dainr.fit(data, "dainr", steps=steps, device="cpu", **TINY, **kw)


def test_messages_and_snapshots(tiny_data):
    msgs = list(_fit(tiny_data, 6, snapshot_every=2))
    prog = [m for m in msgs if isinstance(m, Progress)]
    snaps = [m for m in msgs if isinstance(m, Snapshot)]
    assert [m.step for m in prog] == [1, 2, 3, 4, 5, 6] and prog[-1].total == 6
    assert all(m.seconds >= 0 and np.isfinite(m.loss) for m in prog)
    assert prog[-1].eta == 0
    # every 2 steps before the end, then the final frames
    assert [s.step for s in snaps] == [2, 4, 6]
    assert snaps[0].frames.shape == (6, 32, 32) and snaps[0].frames.dtype == np.complex64
    assert isinstance(msgs[-1], Done)
    r = msgs[-1].result
    assert r.steps_done == 6 and not r.partial and len(r.loss_history) == 6
    np.testing.assert_array_equal(r.frames, snaps[-1].frames)


def test_same_seed_same_result_other_seed_differs(tiny_data):
    a = drain(_fit(tiny_data, 4, seed=3))
    b = drain(_fit(tiny_data, 4, seed=3))
    c = drain(_fit(tiny_data, 4, seed=4))
    np.testing.assert_array_equal(a.frames, b.frames)
    assert a.loss_history == b.loss_history
    assert not np.array_equal(a.frames, c.frames)


def test_stop_returns_a_usable_partial_result(tiny_data):
    stop = StopRequest()
    result = None
    for m in _fit(tiny_data, 50, stop=stop):
        if isinstance(m, Progress) and m.step == 3:
            stop.request()
        if isinstance(m, Done):
            result = m.result
    assert result.partial and result.steps_done == 3 and len(result.loss_history) == 3
    assert result.frames.shape == (6, 32, 32) and np.isfinite(result.frames).all()
    assert np.abs(result.frames).max() > 0


def test_resume_equals_an_uninterrupted_run(tiny_data, tmp_path):
    ck = tmp_path / "ck.pt"
    whole = drain(_fit(tiny_data, 8, seed=1))
    stop = StopRequest()
    for m in _fit(tiny_data, 8, seed=1, stop=stop, checkpoint=ck):
        if isinstance(m, Progress) and m.step == 5:
            stop.request()
    resumed = drain(_fit(tiny_data, 8, seed=1, resume=ck))
    assert resumed.steps_done == 8 and not resumed.partial
    assert resumed.loss_history == whole.loss_history
    np.testing.assert_allclose(
        resumed.frames, whole.frames, rtol=0, atol=1e-6 * np.abs(whole.frames).max()
    )


def test_checkpoint_every_and_wrong_method(tiny_data, tmp_path):
    ck = tmp_path / "sub" / "ck.pt"
    m = dainr.make_method(tiny_data, "dainr", steps=4, device="cpu", **TINY)
    seen = []
    for msg in run_fit(m, RunOptions(checkpoint=ck, checkpoint_every=2)):
        if isinstance(msg, Progress) and msg.step in (1, 3):
            seen.append(ck.exists())  # the checkpoint of step 2 is written after its messages
    assert seen == [False, True]
    nufft = dainr.make_method(tiny_data, "nufft")
    with pytest.raises(FitError, match="checkpoint is for method 'dainr'"):
        drain(run_fit(nufft, RunOptions(resume=ck)))
    with pytest.raises(InputError, match="no such checkpoint"):
        drain(run_fit(m, RunOptions(resume=tmp_path / "none.pt")))
    # a checkpoint of another configuration (here: the paper's features, without the
    # prior's two value channels) names what differs instead of torch's shape error
    other = dainr.make_method(tiny_data, "dainr", steps=4, device="cpu", feature_values=0, **TINY)
    with pytest.raises(FitError, match=r"feature_values 3.0 -> 0"):
        drain(run_fit(other, RunOptions(resume=ck)))


def test_diverging_fit_raises_a_fit_error(tiny_data):
    with pytest.raises(FitError, match="loss became"):
        drain(_fit(tiny_data, 30, lr=1e30))
