"""Can Qt open a window here? Installs the GUI tests' system packages when it may (root,
apt-get), else stops ``make test`` with one line naming them: a Qt platform failure
aborts the pytest process in the middle of the run, which says much less."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGES = [
    line.strip()
    for line in (Path(__file__).with_name("apt-packages.txt")).read_text().splitlines()
    if line.strip() and not line.startswith("#")
]
PROBE = "from qtpy.QtWidgets import QApplication, QWidget; app = QApplication([]); QWidget().show()"


def missing_debian_packages() -> list[str]:
    if shutil.which("dpkg-query") is None:
        return []
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${Status}\\n", *PACKAGES],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    installed = {ln.split()[0] for ln in out.splitlines() if ln.endswith("install ok installed")}
    return [p for p in PACKAGES if p not in installed]


def install(packages: list[str]) -> bool:
    """apt-get install as root; False when that is not possible here."""
    if not packages or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    print(f"make test: installing the GUI tests' system packages: {' '.join(packages)}", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        check=True,
        env=env,
    )
    return True


def qt_problem() -> str | None:
    """None when Qt opens a window (on $DISPLAY, else on a throw-away Xvfb), else why not."""
    cmd = [sys.executable, "-c", PROBE]
    env = dict(os.environ)
    if not env.get("DISPLAY"):
        if shutil.which("xvfb-run") is None:
            return "no display and no Xvfb (xvfb-run)"
        cmd = ["xvfb-run", "-a", *cmd]  # xvfb-run needs xauth, which xvfb only recommends
    env.pop("QT_QPA_PLATFORM", None)  # the tests run on the X server, as pytest-xvfb sets up
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired:
        return "Qt did not start within 120 s"
    if r.returncode == 0:
        return None
    lines = [ln.strip() for ln in r.stderr.splitlines() if ln.strip()] or ["no message"]
    hint = next((ln for ln in lines if "xcb" in ln or "display" in ln.lower()), lines[-1])
    return f"Qt cannot open a window ({hint})"


def main() -> int:
    missing = missing_debian_packages()
    install(missing)
    problem = qt_problem()
    if problem is None:
        return 0
    pkgs = " ".join(missing or PACKAGES)
    print(
        f"make test: {problem}. The GUI tests need Xvfb and Qt's X11 libraries: "
        f"sudo apt-get install {pkgs} (Debian/Ubuntu; names in .ci/apt-packages.txt), "
        "or run with a display. Without them: .venv/bin/python -m pytest --ignore=tests/gui",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
