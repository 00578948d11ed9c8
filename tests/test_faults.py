"""No lost work: faults keep the last good snapshot, Ctrl-C keeps the result, memory stays flat."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import h5py
import psutil
import pytest
import torch

import dainr
from dainr.cli import main as cli_main
from dainr.errors import FitError
from dainr.loop import Method, Snapshot, run_fit
from dainr.prepare import prepare_series

FAST = dict(hash_log2_size=12, hash_levels=8, deform_width=32, canon_width=32, features="off")


@dataclass(frozen=True)
class ExplodingConfig:
    step_size: float = 0.5


class ExplodingMethod(Method):
    """Gradient descent on the data term whose loss turns NaN at a chosen step."""

    name = "exploding"

    def __init__(self, prep, nan_at):
        super().__init__(prep, ExplodingConfig())
        self.x = prep.gridding.clone()
        self.nan_at = nan_at

    @property
    def total_steps(self):
        return 50

    def step(self, step):
        r = self.prep.op.forward(self.x) - self.prep.kspace
        self.x = self.x - self.config.step_size * self.prep.op.adjoint(r * self.prep.dcf[:, None])
        return float("nan") if step + 1 == self.nan_at else float(r.abs().mean())

    def current_frames(self):
        return self.x


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_snapshot(tiny_data):
    m = ExplodingMethod(prepare_series(tiny_data), nan_at=7)
    snaps = []
    with pytest.raises(FitError, match="loss became nan at step 7") as e:
        for msg in run_fit(m, snapshot_every=5):
            if isinstance(msg, Snapshot):
                snaps.append(msg)
    assert [s.step for s in snaps] == [5]
    kept = e.value.partial
    assert kept.partial and kept.steps_done == 5
    torch.testing.assert_close(torch.from_numpy(kept.frames), torch.from_numpy(snaps[0].frames))


def test_cli_writes_the_kept_snapshot_on_a_fault(tiny_file, tmp_path, capsys):
    out = tmp_path / "o.h5"
    # a learning rate no optimiser survives: the loss goes non-finite within a few steps
    rc = cli_main(["recon", str(tiny_file), "--method", "dainr", "--out", str(out), "--quiet",
                         "--steps", "40", "--set", "lr=1e30", *sum((["--set", f"{k}={v}"] for k, v in FAST.items() if k != "features"), []),
                         "--set", "features=\"off\""])
    err = capsys.readouterr().err
    assert rc == 2 and "loss became" in err and err.count("\n") == 1
    assert "Traceback" not in err


def test_sigint_stops_cooperatively_and_writes_a_partial_result(tiny_file, tmp_path):
    out = tmp_path / "o.h5"
    sets = sum((["--set", f"{k}={v}"] for k, v in FAST.items() if k != "features"), [])
    p = subprocess.Popen(
        [sys.executable, "-m", "dainr", "recon", str(tiny_file), "--method", "dainr", "--steps", "100000",
         "--out", str(out), *sets, "--set", 'features="off"'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    # wait for the progress bar to show steps, then interrupt as a user would
    deadline = time.time() + 60
    seen = ""
    while time.time() < deadline and "step" not in seen:
        seen += os.read(p.stderr.fileno(), 4096).decode()
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    with h5py.File(out) as f:
        assert bool(f.attrs["partial"]) is True
        assert 0 < f.attrs["steps_done"] < 100000
        assert f["recon"].shape == (6, 32, 32)


def test_memory_stays_flat_over_a_long_fit(tiny_data):
    proc = psutil.Process()
    m = dainr.make_method(tiny_data, "dainr", steps=400, **FAST)
    rss = {}
    for msg in run_fit(m, snapshot_every=10):
        if isinstance(msg, Snapshot) and msg.step in (100, 390):
            rss[msg.step] = proc.memory_info().rss
    assert rss[390] - rss[100] < 20 * 2**20


def test_second_fit_in_the_same_session_gives_the_same_result(tiny_data):
    a = dainr.reconstruct(tiny_data, "dainr", steps=20, seed=3, **FAST)
    b = dainr.reconstruct(tiny_data, "dainr", steps=20, seed=3, **FAST)
    torch.testing.assert_close(torch.from_numpy(a.frames), torch.from_numpy(b.frames), rtol=0, atol=0)
