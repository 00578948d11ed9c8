"""``--ensemble K``: K seeds, their mean and the per-pixel std of their magnitudes."""

import h5py
import numpy as np
import pytest

import dainr
from dainr.cli import main
from dainr.ensemble import MemberDone, combine, ensemble_stream
from dainr.io import read_recon_h5, write_recon_h5
from dainr.loop import Done, Progress
from dainr.session import FitSpec

from .conftest import TINY_DAINR

TINY = TINY_DAINR | dict(steps=4)


def test_ensemble_is_the_mean_and_std_of_its_seeds(tiny_data, tmp_path):
    members = [dainr.reconstruct(tiny_data, "dainr", seed=s, **TINY) for s in (5, 6)]
    r = dainr.reconstruct(tiny_data, "dainr", seed=5, ensemble=2, **TINY)
    stack = np.stack([m.frames for m in members])
    np.testing.assert_allclose(r.frames, stack.mean(0), rtol=0, atol=1e-6 * np.abs(stack).max())
    assert r.std.shape == r.frames.shape and r.std.dtype == np.float32
    np.testing.assert_allclose(r.std, np.abs(stack).std(0, ddof=1), rtol=1e-4, atol=1e-7)
    assert r.std.max() > 0 and r.ensemble == 2 and not r.partial
    assert r.history.shape == (4, 3)  # the first member's curve
    assert r.attrs["ensemble_chosen_steps"] == str([m.chosen_step for m in members]).replace(
        "None", "null"
    )
    out = tmp_path / "e.h5"
    write_recon_h5(out, r)
    with h5py.File(out) as f:
        assert f["std"].shape == (6, 32, 32) and f.attrs["ensemble"] == 2
    back = read_recon_h5(out)
    np.testing.assert_array_equal(back.std, r.std)
    assert back.ensemble == 2


def test_stream_yields_each_member_then_the_combination(tiny_data):
    msgs = list(
        ensemble_stream(tiny_data, FitSpec(method="dainr", overrides=TINY), 2, parallel=False)
    )
    done = [m for m in msgs if isinstance(m, MemberDone)]
    assert [(m.index, m.count) for m in done] == [(0, 2), (1, 2)]
    assert sum(isinstance(m, Progress) for m in msgs) == 8
    assert isinstance(msgs[-1], Done) and msgs[-1].result.ensemble == 2


def test_members_on_dask_equal_the_sequential_ones(tiny_data):
    distributed = pytest.importorskip("distributed")
    # one lr for the table too: Adam's steps at the default table lr (1e-2) turn the
    # rounding differences of near-zero gradients into visible ones within 4 steps
    spec = FitSpec(method="dainr", overrides=TINY | {"hash_lr": 1e-3}, seed=1)
    seq = [m for m in ensemble_stream(tiny_data, spec, 2, parallel=False) if isinstance(m, Done)][0]
    # one in-process worker thread: the members run one at a time, so they are reproducible
    with distributed.Client(
        processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None
    ) as c:
        par = [m for m in ensemble_stream(tiny_data, spec, 2, client=c) if isinstance(m, Done)][0]
    # the same seeds in the same order; a worker runs torch on one thread, whose sums round
    # differently from this process's, hence a tolerance
    peak = np.abs(seq.result.frames).max()
    np.testing.assert_allclose(par.result.frames, seq.result.frames, rtol=0, atol=0.02 * peak)
    np.testing.assert_allclose(par.result.std, seq.result.std, rtol=0, atol=0.02 * peak)
    assert par.result.ensemble == 2 and par.result.attrs["ensemble_steps_done"] == "[4, 4]"


def test_one_member_has_no_std_and_combine_needs_one(tiny_data):
    r = dainr.reconstruct(tiny_data, "nufft")
    one = combine([r], k=2)
    assert one.std is None and one.ensemble == 1 and one.partial
    with pytest.raises(ValueError, match="at least one"):
        combine([])


def test_cli_ensemble_writes_std_and_refuses_per_fit_flags(tiny_file, tmp_path, capsys):
    out = tmp_path / "e.h5"
    sets = [a for k, v in TINY.items() if k != "steps" for a in ("--set", f"{k}={v}")]
    rc = main(
        [
            "recon",
            str(tiny_file),
            "--method",
            "dainr",
            "--steps",
            "4",
            "--ensemble",
            "2",
            "--out",
            str(out),
            "--quiet",
            *sets,
        ]
    )
    assert rc == 0
    err = capsys.readouterr().err
    assert "fit 2/2 (seed 1) done" in err and "mean of 2 seeds" in err
    r = read_recon_h5(out)
    assert r.ensemble == 2 and r.std.shape == r.frames.shape
    assert main(["info", str(out)]) == 0
    assert "mean of 2 seeds" in capsys.readouterr().out
    rc = main(
        [
            "recon",
            str(tiny_file),
            "--ensemble",
            "2",
            "--checkpoint",
            str(tmp_path / "c.pt"),
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 2 and "--checkpoint is per fit" in capsys.readouterr().err
