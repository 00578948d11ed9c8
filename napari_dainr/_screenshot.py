"""Take the README's screenshot from the running plugin: DCE sample, DA-INR mid-fit, AO / PV curves.

Run under a display (Xvfb is enough)::

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python -m napari_dainr._screenshot docs/screenshot.png

It drives the plugin the way a user would (sample, docks, Fit, ROIs from the file),
waits for ``--steps`` fit steps and a few held-out evaluations (the loss plot then
shows both curves and the best step so far), captures the whole window while the fit
is still running, then stops the fit and closes.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)


def _wait(app, condition, timeout: float) -> bool:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        app.processEvents()
        if condition():
            return True
        time.sleep(0.02)
    return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, nargs="?", default=Path("docs/screenshot.png"))
    p.add_argument(
        "--steps", type=int, default=300, help="fit steps done when the picture is taken"
    )
    p.add_argument("--size", default="1600x1150", help="window size WxH in pixels")
    p.add_argument("--theme", default="dark", help="napari theme (dark or light)")
    p.add_argument("--timeout", type=float, default=1800.0, help="give up after this many seconds")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import napari
    import numpy as np
    from qtpy.QtWidgets import QApplication

    w, h = (int(x) for x in args.size.split("x"))
    viewer = napari.Viewer(title="napari-dainr")
    viewer.window.resize(w, h)
    viewer.theme = args.theme
    app = QApplication.instance()
    viewer.open_sample("napari-dainr", "dce")
    _, recon = viewer.window.add_plugin_dock_widget("napari-dainr", "DA-INR reconstruction")
    _, rois = viewer.window.add_plugin_dock_widget("napari-dainr", "ROI signal curves")
    rois.add_stored_rois()

    recon.settings.method_box.value = "dainr"
    recon.settings.live_every.value = 5.0
    recon.settings.holdout.value = 0.05  # opt-in: the loss plot then shows both curves
    recon.fit()

    def ready() -> bool:
        shown = recon.live is not None and recon.live.shown >= 2
        curves = len(recon.loss_plot.heldout) >= 3 and recon.loss_plot.best_step is not None
        return recon.progress.value() >= args.steps and shown and curves

    ok = _wait(app, ready, args.timeout)
    if not ok:
        log.error("the fit did not reach step %d in %.0f s", args.steps, args.timeout)
        return 1
    # Let the last snapshot land and the curves redraw before the picture.
    _wait(app, lambda: False, 1.0)
    viewer.layers["DCE sample (gridding)"].visible = False
    ao = next(c for c in rois.update_curves() if c.roi == "AO")
    viewer.dims.set_current_step(0, int(np.nanargmax(ao.values)))
    viewer.layers.selection.active = viewer.layers["ROIs"]
    viewer.reset_view()
    _wait(app, lambda: False, 1.0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(args.out), canvas_only=False)
    log.info("wrote %s at step %d", args.out, recon.progress.value())
    recon.stop()
    _wait(app, lambda: not recon.running, 120)
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
