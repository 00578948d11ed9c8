"""Held-out spokes: the split, what training sees, choosing the best state, early stopping."""

import dataclasses
import math
from dataclasses import dataclass

import h5py
import numpy as np
import pytest
import torch

import dainr
from dainr.cli import main
from dainr.holdout import held_layout, make_split
from dainr.io import read_recon_h5, write_recon_h5
from dainr.loop import Done, Progress, RunOptions, Snapshot, StopRequest, drain, run_fit
from dainr.methods.base import Method
from dainr.prepare import prepare_series

from .conftest import TINY_DAINR as TINY


def test_split_is_seeded_spread_and_complete():
    a = make_split(40, 13, 0.02, seed=3)  # round(0.02 * 520) = 10 spokes, one in 10 frames
    assert a.n_held == 1 and a.held.shape == (10, 1) and a.n_spokes == 10
    np.testing.assert_array_equal(a.held, make_split(40, 13, 0.02, seed=3).held)
    assert not np.array_equal(a.held, make_split(40, 13, 0.02, seed=4).held)
    # the frames are spread evenly (every 4th, a seeded phase), distinct and sorted
    assert np.all(np.diff(a.frames) == 4) and 0 <= a.frames[0] < 4
    assert len(np.unique(a.held)) >= 5  # positions vary over the frames
    mask = a.spoke_mask()
    assert mask.shape == (40, 13) and (~mask).sum() == 10
    assert np.all((~mask).sum(1)[a.frames] == 1) and (~mask).sum(1).sum() == 10
    np.testing.assert_array_equal(a.acquisition_index()[2], a.held[2] + 13 * a.frames[2])
    b = make_split(10, 40, 0.1, seed=0)  # 40 spokes in 10 frames: four each, one per quarter
    assert b.n_held == 4 and len(b.frames) == 10
    np.testing.assert_array_equal(b.held // 10, np.tile(np.arange(4), (10, 1)))


def test_how_many_are_held_out(caplog):
    assert held_layout(25, 13, 0.02) == (6, 1)  # round(6.5) = 6: a 25-frame 13-spoke cine
    assert held_layout(48, 16, 0.02) == (15, 1) and held_layout(16, 34, 0.02) == (11, 1)
    assert held_layout(25, 13, 0.0) == (0, 0) and held_layout(25, 5, 0.001) == (1, 1)
    assert held_layout(10, 100, 0.1) == (10, 10)
    assert held_layout(4, 3, 0.5) == (0, 0) and "fewer than 2" in caplog.text
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        held_layout(13, 13, 1.0)


def test_training_never_sees_the_held_out_spokes(tiny_data):
    full = prepare_series(tiny_data, 13)
    prep = prepare_series(tiny_data, 13, holdout=0.05, holdout_seed=1)  # 4 of 78 spokes
    h = prep.heldout
    R = tiny_data.n_readout
    F = prep.n_frames
    assert h.split.n_held == 1 and len(h.split.frames) == 4 and h.kspace.shape[-1] == R
    assert prep.kspace.shape == full.kspace.shape  # zeros in place, same layout
    assert prep.settings["holdout"]["spokes_held"] == 4
    # the held-out samples are the file's samples of those spokes, in the prepared scale
    idx = h.split.acquisition_index()[:, 0]
    want = np.stack([tiny_data.kspace[:, s] for s in idx]) * prep.scale
    np.testing.assert_allclose(h.kspace.numpy(), want, rtol=1e-5, atol=1e-6 * np.abs(want).max())
    # in training they are zero data of zero weight; every other sample is untouched
    m = prep.train_mask
    assert m.shape == (F, 13 * R) and float((1 - m).sum()) == 4 * R
    assert float(prep.kspace[(m == 0)[:, None].expand_as(prep.kspace)].abs().max()) == 0
    assert float(prep.dcf[m == 0].abs().max()) == 0
    kept = (m == 1)[:, None].expand_as(prep.kspace)
    torch.testing.assert_close(
        prep.kspace[kept] / prep.scale, full.kspace[kept] / full.scale, rtol=1e-5, atol=1e-7
    )
    # the residual every method's data term uses is zero there whatever the estimate
    r = prep.train_residual(torch.ones_like(prep.kspace))
    assert float(r[(m == 0)[:, None].expand_as(r)].abs().max()) == 0
    # the gridding images (initial guesses) are made without them; gridding_all with them
    assert not torch.allclose(prep.gridding / prep.scale, full.gridding / full.scale)
    torch.testing.assert_close(
        prep.gridding_all / prep.scale, full.gridding / full.scale, rtol=1e-4, atol=1e-6
    )
    # loss of the truth on its own held-out data: noise-free, so near zero
    ref = torch.as_tensor(tiny_data.reference) * prep.scale
    assert h.loss(ref) < 1e-3 * h.loss(torch.zeros_like(ref))
    assert h.loss(ref[h.split.frames]) == h.loss(ref)  # all frames or only its own
    assert h.weights.shape == (4, R) and float(h.weights.min()) > 0


def test_every_method_skips_the_held_out_samples(tiny_data):
    """Changing the held-out samples' data changes no training step of any method, DA-INR's
    frozen features from its GRASP prior included (the paper's gridding features are made
    from all spokes, by design: a fixed linear function of the data, never fitted)."""
    from dainr.session import FitSpec, build_method

    for name in ("dainr", "grasp", "tddip", "hashinr"):
        losses = []
        for bump in (0.0, 1e3):
            data = dataclasses.replace(tiny_data, kspace=tiny_data.kspace.copy())
            spec = FitSpec(method=name, spokes_per_frame=13, holdout=0.1, seed=0,
                           overrides={"steps": 3} | (TINY if name == "dainr" else {}))  # fmt: skip
            split = build_method(data, spec).prep.heldout.split
            data.kspace[:, split.acquisition_index().ravel()] += bump
            m = build_method(data, spec)
            losses.append([float(m.step(i)) for i in range(3)])
        assert losses[0] == pytest.approx(losses[1], rel=1e-5), name


@dataclass(frozen=True)
class ScriptedConfig:
    steps: int = 20


class Scripted(Method):
    """A method whose estimate walks through a scripted path: truth + e(step) * noise,
    with e smallest at step 6, so that the held-out loss is best there."""

    name = "scripted"

    def __init__(self, prep, steps=20):
        super().__init__(prep, ScriptedConfig(steps))
        g = torch.Generator().manual_seed(0)
        self.truth = torch.as_tensor(prep.series.reference) * prep.scale
        self.noise = torch.randn(self.truth.shape, generator=g, dtype=torch.complex64)
        self.e = 0.0
        self.steps_run = 0

    @property
    def total_steps(self):
        return self.config.steps

    def step(self, step):
        self.steps_run += 1
        self.e = 0.3 + 0.05 * abs(step + 1 - 6)
        return self.e

    def current_frames(self):
        return self.truth + self.e * self.noise

    def state_dict(self):
        return {"e": self.e}

    def load_state_dict(self, state):
        self.e = state["e"]


def _scripted(tiny_data, steps=20):
    return Scripted(prepare_series(tiny_data, 13, holdout=0.05, holdout_seed=0), steps)


def test_the_best_held_out_state_is_returned(tiny_data):
    m = _scripted(tiny_data)
    msgs = list(run_fit(m, RunOptions(snapshot_every=2), holdout_every=2, early_stop=0))
    r = msgs[-1].result
    assert r.chosen_step == 6 and r.steps_done == 20 and not r.early_stopped
    h = r.history
    assert h.shape == (20, 3) and h.dtype == np.float64
    np.testing.assert_array_equal(h[:, 0], np.arange(1, 21))
    np.testing.assert_allclose(h[:, 1], [0.3 + 0.05 * abs(s - 6) for s in range(1, 21)])
    evaluated = np.isfinite(h[:, 2])
    np.testing.assert_array_equal(np.nonzero(evaluated)[0] + 1, np.arange(2, 21, 2))
    assert int(h[np.nanargmin(h[:, 2]), 0]) == 6
    # the returned frames are the state of step 6, as its snapshot showed them
    snap6 = next(s for s in msgs if isinstance(s, Snapshot) and s.step == 6)
    np.testing.assert_array_equal(r.frames, snap6.frames)
    prog = [p for p in msgs if isinstance(p, Progress)]
    assert math.isnan(prog[0].heldout) and prog[0].best_step is None
    assert prog[1].best_step == 2 and prog[9].best_step == 6 and prog[-1].best_step == 6
    assert prog[-1].heldout == h[-1, 2]
    assert r.heldout_spokes.shape == (4, 1)  # round(0.05 * 78) spokes, one per frame


def test_early_stop_after_the_patience(tiny_data):
    m = _scripted(tiny_data)
    r = drain(run_fit(m, holdout_every=2, early_stop=3))
    # best at 6; evaluations at 8, 10, 12 bring nothing better: stop after step 12
    assert r.early_stopped and r.steps_done == 12 and m.steps_run == 12
    assert r.chosen_step == 6 and not r.partial and r.history.shape == (12, 3)


def test_without_held_out_spokes_the_last_step_is_kept(tiny_data):
    m = Scripted(prepare_series(tiny_data, 13), steps=10)
    r = drain(run_fit(m, early_stop=2))
    assert r.chosen_step == 10 and r.steps_done == 10 and r.heldout_spokes is None
    assert np.isnan(r.history[:, 2]).all()


def test_a_stop_between_evaluations_still_considers_the_last_state(tiny_data):
    m = _scripted(tiny_data)
    stop = StopRequest()
    result = None
    for msg in run_fit(m, holdout_every=4, early_stop=0, stop=stop):
        if isinstance(msg, Progress) and msg.step == 7:
            stop.request()
        if isinstance(msg, Done):
            result = msg.result
    # evaluated: 4, then 7 at the stop; 7 (e = 0.35) beats 4 (e = 0.4)
    assert result.partial and result.steps_done == 7 and result.chosen_step == 7
    assert np.isfinite(result.history[6, 2])


def test_resume_chooses_as_an_uninterrupted_run(tiny_data, tmp_path):
    ck = tmp_path / "ck.pt"
    whole = drain(run_fit(_scripted(tiny_data), holdout_every=2, early_stop=0))
    stop = StopRequest()
    for msg in run_fit(
        _scripted(tiny_data), RunOptions(checkpoint=ck), holdout_every=2, early_stop=0, stop=stop
    ):
        if isinstance(msg, Progress) and msg.step == 9:
            stop.request()  # after the best (6): the best state must come from the checkpoint
    resumed = drain(
        run_fit(_scripted(tiny_data), RunOptions(resume=ck), holdout_every=2, early_stop=0)
    )
    assert resumed.chosen_step == whole.chosen_step == 6
    np.testing.assert_array_equal(resumed.history, whole.history)
    np.testing.assert_array_equal(resumed.frames, whole.frames)


def test_dainr_fit_records_history_and_round_trips(tiny_data, tmp_path):
    r = dainr.reconstruct(
        tiny_data, "dainr", steps=12, holdout=0.05, holdout_every=4, early_stop=0, **TINY
    )
    assert r.history.shape == (12, 3) and r.chosen_step in (4, 8, 12)
    assert np.isfinite(r.history[[3, 7, 11], 2]).all() and np.isnan(r.history[0, 2])
    assert r.chosen_step == int(r.history[np.nanargmin(r.history[:, 2]), 0])
    out = tmp_path / "o.h5"
    write_recon_h5(out, r)
    with h5py.File(out) as f:
        assert f["history"].shape == (12, 3) and f.attrs["chosen_step"] == r.chosen_step
        assert f["holdout_spokes"].shape == (4, 1) and "std" not in f
    back = read_recon_h5(out)
    np.testing.assert_array_equal(back.history, r.history)
    assert back.chosen_step == r.chosen_step and back.ensemble == 1 and back.std is None
    np.testing.assert_array_equal(back.heldout_spokes, r.heldout_spokes)
    assert "chosen_step" not in back.attrs and "history" not in back.attrs


def test_gridding_has_no_history_and_holds_nothing_out(tiny_data):
    r = dainr.reconstruct(tiny_data, "nufft")
    assert r.history is None and r.chosen_step is None and r.heldout_spokes is None


def test_cli_prints_held_out_loss_and_info_shows_the_choice(tiny_file, tmp_path, capsys):
    out = tmp_path / "o.h5"
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    rc = main(
        [
            "recon",
            str(tiny_file),
            "--method",
            "dainr",
            "--steps",
            "9",
            "--holdout-every",
            "3",
            "--early-stop",
            "0",
            "--holdout",
            "0.1",
            "--out",
            str(out),
            *sets,
        ]
    )
    assert rc == 0
    err = capsys.readouterr().err
    assert "held-out" in err and "best so far at step" in err and "best held-out loss" in err
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert (
        "chosen step" in text
        and "3 evaluations" in text
        and "2 spoke(s) in each of 4 of 6 frames" in text
    )


def test_no_method_holds_spokes_out_unless_asked(cardiac):
    from dainr.session import FitSpec, build_method

    for name in ("dainr", "grasp", "tddip"):
        over = {"steps": 2} | (TINY if name == "dainr" else {})
        m = build_method(cardiac, FitSpec(method=name, spokes_per_frame=13, overrides=over))
        assert m.prep.heldout is None and m.prep.train_mask is None, name
    asked = build_method(
        cardiac, FitSpec(method="tddip", spokes_per_frame=13, overrides={"steps": 2}, holdout=0.05)
    )
    assert asked.prep.heldout is not None
