"""Fixtures of the napari plugin's tests: tiny k-space layers and docked widgets."""

from __future__ import annotations

import numpy as np
import pytest

#: a fit in a test never needs more than this (the tiny data fit in seconds)
FIT_TIMEOUT_MS = 120_000


@pytest.fixture
def fast_dainr() -> dict:
    """DA-INR settings that keep a step at a few milliseconds on 32 x 32 (not for quality)."""
    return {"hash_log2_size": 12, "hash_levels": 4, "deform_width": 16, "canon_width": 16}


def set_advanced(widget, values: dict) -> None:
    """Type ``values`` into the advanced form, as a user would."""
    for name, value in values.items():
        getattr(widget.settings.config_form, name).value = value


def wait_idle(qtbot, widget) -> None:
    """Until the dock's fit or rendering has ended and its end signal was handled."""
    qtbot.waitUntil(lambda: not widget.running, timeout=FIT_TIMEOUT_MS)


@pytest.fixture
def viewer_widget(make_napari_viewer_proxy, tiny_file):
    """A viewer with the tiny k-space file open and the reconstruction dock docked."""
    from napari_dainr._reader import read_file
    from napari_dainr._widget import ReconstructionWidget

    viewer = make_napari_viewer_proxy()
    data, kwargs, _ = read_file(tiny_file)
    viewer.add_image(data, **kwargs)
    widget = ReconstructionWidget(viewer)
    viewer.window.add_dock_widget(widget, name="DA-INR reconstruction")
    yield viewer, widget
    # never leave a thread behind a closed viewer
    widget.session.stop()
    widget.session.wait(FIT_TIMEOUT_MS)
    widget.inputs.wait(FIT_TIMEOUT_MS)


@pytest.fixture
def dainr_widget(viewer_widget, fast_dainr):
    """The dock set to a fast DA-INR fit that streams a snapshot after every step."""
    viewer, widget = viewer_widget
    widget.settings.method_box.value = "dainr"
    widget.settings.live_every.value = 0.0
    set_advanced(widget, fast_dainr)
    return viewer, widget


def image_of(viewer, name: str):
    return next(x for x in viewer.layers if x.name == name)


@pytest.fixture
def known_series() -> np.ndarray:
    """[5, 32, 32]: each frame a different ramp, so every ROI mean is distinct and checkable."""
    f, y, x = np.mgrid[:5, :32, :32].astype(np.float32)
    return (1.0 + f) * (1.0 + 0.1 * y + 0.03 * x)
