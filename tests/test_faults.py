"""No lost work: faults keep the last good snapshot, Ctrl-C keeps the result, memory stays flat."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from types import SimpleNamespace

import h5py
import numpy as np
import psutil
import pytest
import torch

import dainr
from dainr import loop, methods
from dainr.cli import main as cli_main
from dainr.errors import FitError
from dainr.io import read_recon_h5
from dainr.loop import RunOptions, Snapshot, drain, run_fit
from dainr.methods.base import Method
from dainr.prepare import prepare_series
from dainr.session import FitSpec, fit_stream

from .conftest import TINY_DAINR

#: feature extraction off: these tests are about the loop, not the features
FAST = TINY_DAINR | dict(hash_levels=8, features="off")


@dataclass(frozen=True)
class ExplodingConfig:
    step_size: float = 0.5
    nan_at: int = 7  #: the (1-based) step whose loss is NaN
    steps: int = 50


class ExplodingMethod(Method):
    """Gradient descent on the data term whose loss turns NaN at a chosen step."""

    name = "exploding"

    def __init__(self, prep, config=ExplodingConfig()):
        super().__init__(prep, config)
        self.x = prep.gridding.clone()
        self.nan_at = config.nan_at

    @property
    def total_steps(self):
        return self.config.steps

    def step(self, step):
        r = self.prep.op.forward(self.x) - self.prep.kspace
        self.x = self.x - self.config.step_size * self.prep.op.adjoint(r * self.prep.dcf[:, None])
        return float("nan") if step + 1 == self.nan_at else float(r.abs().mean())

    def current_frames(self):
        return self.x


#: this module is also a method module (METHOD, CONFIG) for the CLI test below
METHOD, CONFIG = ExplodingMethod, ExplodingConfig


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_snapshot(tiny_data):
    m = ExplodingMethod(prepare_series(tiny_data), ExplodingConfig(nan_at=7))
    snaps = []
    with pytest.raises(FitError, match="loss became nan at step 7") as e:
        for msg in run_fit(m, RunOptions(snapshot_every=5)):
            if isinstance(msg, Snapshot):
                snaps.append(msg)
    assert [s.step for s in snaps] == [5]
    kept = e.value.partial
    assert kept.partial and kept.steps_done == 5
    torch.testing.assert_close(torch.from_numpy(kept.frames), torch.from_numpy(snaps[0].frames))


def test_cli_writes_the_kept_snapshot_on_a_fault(tiny_file, tmp_path, capsys, monkeypatch):
    """A NaN at step 7 after a snapshot at step 6: the CLI writes step 6 as a partial file."""
    monkeypatch.setitem(methods.REGISTRY, "exploding", __name__)
    # The CLI snapshots every 30 s of fitting: a clock that moves 31 s per reading makes each
    # step take that long, so a snapshot is due after every step (without waiting for it).
    ticks = iter(range(0, 10**6, 31))
    out = tmp_path / "o.h5"
    with monkeypatch.context() as clock:
        clock.setattr(loop, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks))))
        rc = cli_main(["recon", str(tiny_file), "--method", "exploding", "--set", "nan_at=7",
                       "--out", str(out), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "the loss became nan at step 7" in err
    assert f"partial result of step 6 written to {out}" in err
    kept = read_recon_h5(out)
    assert kept.partial and kept.steps_done == 6 and kept.method == "exploding"
    # the frames are those of step 6: the same descent, prepared as the CLI does, run to 6
    six = drain(fit_stream(tiny_file, FitSpec("exploding", overrides={"steps": 6})))
    np.testing.assert_allclose(
        kept.frames, six.frames, rtol=0, atol=1e-6 * np.abs(six.frames).max()
    )
    np.testing.assert_allclose(kept.loss_history, six.loss_history, rtol=1e-6)


def test_cli_one_line_error_when_a_fit_diverges(tiny_file, tmp_path, capsys):
    out = tmp_path / "o.h5"
    # a learning rate no optimiser survives: the loss goes non-finite within a few steps
    sets = sum((["--set", f"{k}={v}"] for k, v in FAST.items() if k != "features"), [])
    rc = cli_main(["recon", str(tiny_file), "--method", "dainr", "--out", str(out), "--quiet",
                   "--steps", "40", "--set", "lr=1e30", *sets, "--set", 'features="off"'])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "loss became" in err and err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_cooperatively_and_writes_a_partial_result(tiny_file, tmp_path, sig):
    out = tmp_path / "o.h5"
    sets = sum((["--set", f"{k}={v}"] for k, v in FAST.items() if k != "features"), [])
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dainr",
            "recon",
            str(tiny_file),
            "--method",
            "dainr",
            "--steps",
            "100000",
            "--out",
            str(out),
            *sets,
            "--set",
            'features="off"',
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # wait for the progress bar to show steps, then interrupt as a user would
    deadline = time.time() + 60
    seen = ""
    while time.time() < deadline and "step" not in seen:
        seen += os.read(p.stderr.fileno(), 4096).decode()
    time.sleep(1.0)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    with h5py.File(out) as f:
        assert bool(f.attrs["partial"]) is True
        assert 0 < f.attrs["steps_done"] < 100000
        assert f["recon"].shape == (6, 32, 32)


def test_sigint_during_the_prior_ends_a_background_run_at_once(tiny_file, tmp_path):
    """As a job script starts it (``dainr recon ... &``: SIGINT ignored), interrupted
    while DA-INR's GRASP prior runs: it ends within seconds, says so in one line, writes
    nothing."""
    out = tmp_path / "o.h5"
    p = subprocess.Popen(
        [sys.executable, "-m", "dainr", "recon", str(tiny_file), "--method", "dainr",
         "--out", str(out), "--set", "prior_iterations=1000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    deadline = time.time() + 60
    seen = ""
    while time.time() < deadline and "preparing" not in seen:
        seen += os.read(p.stderr.fileno(), 4096).decode()
    time.sleep(4.0)  # the tiny file's preparation takes well under a second; then the prior
    assert p.poll() is None
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert time.time() - t0 < 5.0
    assert p.returncode == 130, err
    lines = [x for x in err.splitlines() if "stopped during the prior" in x]
    assert len(lines) == 1 and "nothing written" in lines[0] and "Traceback" not in err
    assert not out.exists()


def test_memory_stays_flat_over_a_long_fit(tiny_data):
    proc = psutil.Process()
    m = dainr.make_method(tiny_data, "dainr", steps=400, **FAST)
    rss = {}
    for msg in run_fit(m, RunOptions(snapshot_every=10)):
        if isinstance(msg, Snapshot) and msg.step in (100, 390):
            rss[msg.step] = proc.memory_info().rss
    assert rss[390] - rss[100] < 20 * 2**20


def test_second_fit_in_the_same_session_gives_the_same_result(tiny_data):
    # on the CPU: bit-equal results are not promised by CUDA's atomic scatters
    a = dainr.reconstruct(tiny_data, "dainr", steps=20, seed=3, device="cpu", **FAST)
    b = dainr.reconstruct(tiny_data, "dainr", steps=20, seed=3, device="cpu", **FAST)
    torch.testing.assert_close(
        torch.from_numpy(a.frames), torch.from_numpy(b.frames), rtol=0, atol=0
    )
