"""``dainr demo``: reconstruct the bundled sample with the default method; open napari if a display exists."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..methods import DEFAULT_METHOD


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="reconstruct the bundled sample (and show it in napari)", description=__doc__
    )
    p.add_argument("--method", default=DEFAULT_METHOD)
    p.add_argument("--steps", type=int, help="override the method's step count")
    p.add_argument(
        "--out", type=Path, default=Path("out/demo.h5"), help="output (default %(default)s)"
    )
    p.add_argument("--no-viewer", action="store_true", help="never open napari")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run(args: argparse.Namespace) -> int:
    from ..simulate import sample_path
    from . import main as cli_main

    sample = sample_path()
    argv = [
        "recon",
        str(sample),
        "--method",
        args.method,
        "--out",
        str(args.out),
        "--device",
        args.device,
    ]
    if args.steps is not None:
        argv += ["--steps", str(args.steps)]
    rc = cli_main(argv)
    if rc != 0:
        return rc
    print(f"demo: reconstruction of the bundled sample written to {args.out.resolve()}")
    if args.no_viewer or not has_display():
        print("demo: no display found; open the result in napari with: napari " + str(args.out))
        return 0
    try:
        import napari
    except ImportError:
        print("demo: napari is not installed (pip install 'napari-dainr[all]') to view the result")
        return 0
    viewer = napari.Viewer(title="napari-dainr demo")
    viewer.open(str(sample), plugin="napari-dainr")
    viewer.open(str(args.out), plugin="napari-dainr")
    viewer.window.add_plugin_dock_widget("napari-dainr", "DA-INR reconstruction")
    napari.run()
    return 0
