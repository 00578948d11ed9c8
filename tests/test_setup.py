"""``make test`` on a machine that cannot show Qt windows stops with one line before pytest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GUI_READY = Path(__file__).resolve().parents[1] / ".ci" / "gui_ready.py"


def run_check(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(GUI_READY)], capture_output=True, text=True, env=env, timeout=180
    )


def test_no_display_and_no_xvfb_is_one_line_naming_the_packages(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env["PATH"] = str(tmp_path)  # no xvfb-run, no apt-get, no dpkg-query
    r = run_check(env)
    assert r.returncode == 1
    [line] = r.stderr.strip().splitlines()
    assert "no display and no Xvfb" in line
    assert "apt-get install xvfb xauth libxcb-icccm4" in line and "--ignore=tests/gui" in line


@pytest.mark.skipif(not Path("/usr/bin/xvfb-run").exists(), reason="needs Xvfb")
def test_a_display_qt_cannot_use_is_reported_not_aborted():
    env = dict(os.environ, DISPLAY=":987")  # no X server there
    r = run_check(env)
    assert r.returncode == 1
    [line] = r.stderr.strip().splitlines()
    assert line.startswith("make test: Qt cannot open a window")


@pytest.mark.skipif(not Path("/usr/bin/xvfb-run").exists(), reason="needs Xvfb")
def test_this_machine_is_ready():
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}  # as on a headless CI
    r = run_check(env)
    assert r.returncode == 0, r.stderr
