"""Closing, hiding or removing a dock stops its fit and lets go of the viewer's events."""

from __future__ import annotations

import numpy as np
import pytest

from napari_dainr import _layers as L
from napari_dainr._roi_widget import RoiCurvesWidget

from .conftest import FIT_TIMEOUT_MS, wait_idle

pytestmark = pytest.mark.gui


def dock_of(widget):
    """The QDockWidget napari wrapped ``widget`` in."""
    from qtpy.QtWidgets import QDockWidget

    p = widget.parentWidget()
    while not isinstance(p, QDockWidget):
        p = p.parentWidget()
    return p


def choice_names(widget) -> list[str]:
    return [x.name for x in widget.inputs.input.choices if x is not None]


def add_kspace_copy(viewer, name: str):
    src = viewer.layers["tiny (gridding)"]
    return viewer.add_image(src.data.copy(), name=name, metadata=dict(src.metadata))


@pytest.mark.parametrize("how", ["hide", "remove"])
def test_closing_the_dock_stops_the_fit_and_its_events(qtbot, dainr_widget, how):
    viewer, widget = dainr_widget
    widget.settings.steps.value = 100_000
    widget.fit()
    qtbot.waitUntil(lambda: widget.live.shown >= 1, timeout=FIT_TIMEOUT_MS)
    dock = dock_of(widget)
    if how == "hide":
        dock.close()  # the title bar's hide button, or Window > the dock's entry
    else:
        viewer.window.remove_dock_widget(widget)  # the title bar's close button
    wait_idle(qtbot, widget)
    assert widget.result.partial and widget.result.steps_done < 100_000

    # The dock no longer follows the viewer: new layers and theme changes pass it by.
    theme = widget.loss_plot.theme
    add_kspace_copy(viewer, "another")
    viewer.theme = "light" if theme == "dark" else "dark"
    assert choice_names(widget) == ["tiny (gridding)"]
    assert widget.loss_plot.theme == theme

    if how == "hide":  # shown again: it follows the viewer again
        dock.show()
        assert choice_names(widget) == ["tiny (gridding)", "another"]
        assert widget.loss_plot.theme == viewer.theme


def test_a_closed_roi_dock_stops_following_layers(qtbot, make_napari_viewer_proxy, known_series):
    viewer = make_napari_viewer_proxy()
    viewer.add_image(known_series, name="known")
    widget = RoiCurvesWidget(viewer)
    viewer.window.add_dock_widget(widget, name="ROI signal curves")
    widget.roi_layer().add_rectangles(np.array([[3.6, 4.6], [9.4, 12.4]]))
    first = widget.update_curves()[0].values.copy()

    dock = dock_of(widget)
    dock.close()
    viewer.layers["known"].data = known_series * 2
    viewer.add_image(known_series, name="later")
    qtbot.wait(400)  # longer than the dock's update delay
    np.testing.assert_array_equal(widget.curves[0].values, first)
    assert "later" not in widget.layer_select.choices

    dock.show()
    assert "later" in widget.layer_select.choices
    viewer.layers["known"].data = known_series * 3
    qtbot.waitUntil(
        lambda: np.allclose(next(c for c in widget.curves if c.layer == "known").values, 3 * first),
        timeout=5000,
    )


def test_a_removed_roi_dock_lets_go_of_every_layer_event(make_napari_viewer_proxy, known_series):
    viewer = make_napari_viewer_proxy()
    viewer.add_image(known_series, name="known", metadata={L.FRAME_TIMES: np.arange(5.0)})
    widget = RoiCurvesWidget(viewer)
    viewer.window.add_dock_widget(widget, name="ROI signal curves")
    widget.roi_layer()

    def followers() -> int:
        emitters = [viewer.layers.events.inserted, viewer.events.theme]
        for layer in viewer.layers:
            emitters += [layer.events.data, layer.events.name]
        n = 0
        for e in emitters:
            for cb in e.callbacks:
                obj = cb[0]() if isinstance(cb, tuple) else getattr(cb, "__self__", None)
                n += obj is widget
        return n

    assert followers() > 0
    viewer.window.remove_dock_widget(widget)
    assert followers() == 0
