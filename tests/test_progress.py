"""Progress written to a log file or a pipe: short lines, not carriage-return redraws."""

from __future__ import annotations

import io

from dainr.cli import main
from dainr.cli.progress import LineProgress, progress_bar
from dainr.io import read_recon_h5


def test_a_1000_step_fit_logs_about_ten_short_lines():
    out = io.StringIO()
    bar = progress_bar(1000, file=out)
    assert isinstance(bar, LineProgress)  # a StringIO is no terminal
    for step in range(1, 1001):
        bar.set_postfix_str(f"loss {1 / step:.4g}")
        bar.update(step - bar.n)
    bar.close()
    text = out.getvalue()
    lines = text.splitlines()
    assert "\r" not in text
    assert 10 <= len(lines) <= 12, lines  # one per tenth (the clock adds none in a fast loop)
    assert len(text) < 1500  # tqdm wrote ~110 kB into one line for the same fit
    assert lines[0].startswith("step 100/1000 (10%), loss 0.01")
    assert lines[-1].startswith("step 1000/1000 (100%)")


def test_a_slow_fit_logs_every_few_seconds(monkeypatch):
    clock = iter(range(0, 10_000, 4))  # each update 4 s after the previous
    monkeypatch.setattr("dainr.cli.progress.time.monotonic", lambda: float(next(clock)))
    out = io.StringIO()
    bar = LineProgress(1000, file=out, every_seconds=10.0)
    for _ in range(9):  # 9 steps: under a tenth, 36 s
        bar.update(1)
    assert len(out.getvalue().splitlines()) == 3  # at 12, 24 and 36 s


def test_terminal_gets_a_tqdm_bar():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert not isinstance(progress_bar(10, file=Terminal()), LineProgress)


def test_recon_into_a_pipe_writes_lines(tiny_file, tmp_path, capsys):
    assert main(["recon", str(tiny_file), "--method", "grasp", "--steps", "20",
                 "--out", str(tmp_path / "o.h5")]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "\r" not in err
    progress = [x for x in err.splitlines() if x.startswith("step ")]
    steps = read_recon_h5(tmp_path / "o.h5").steps_done  # GRASP may converge before 20
    assert 1 <= len(progress) <= 11 and progress[-1].startswith(f"step {steps}/20 ")
