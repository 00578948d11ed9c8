"""The "ROI signal curves" dock: curves equal hand-computed means, on any grid, and export."""

from __future__ import annotations

import numpy as np
import pytest

from napari_dainr import _layers as L
from napari_dainr._roi_curves import read_csv
from napari_dainr._roi_widget import ROI_LAYER, RoiCurvesWidget

pytestmark = pytest.mark.gui

#: a rectangle whose inside holds exactly the pixel centres rows 4..9, columns 5..12
RECT = np.array([[3.6, 4.6], [3.6, 12.4], [9.4, 12.4], [9.4, 4.6]])


@pytest.fixture
def viewer_roi(make_napari_viewer_proxy, known_series):
    viewer = make_napari_viewer_proxy()
    viewer.add_image(known_series, name="known")
    widget = RoiCurvesWidget(viewer)
    viewer.window.add_dock_widget(widget)
    return viewer, widget


def curve(widget, roi, layer):
    return next(c for c in widget.update_curves() if c.roi == roi and c.layer == layer)


def test_roi_curve_equals_hand_computed_means(viewer_roi, known_series):
    viewer, widget = viewer_roi
    widget.roi_layer().add_rectangles(RECT)
    shapes = viewer.layers[ROI_LAYER]
    assert [c.roi for c in widget.update_curves()] == ["ROI 1"]  # unnamed until named
    shapes.selected_data = {0}
    widget.rename_selected("AO")
    c = curve(widget, "AO", "known")
    expected = known_series[:, 4:10, 5:13].mean(axis=(1, 2))
    np.testing.assert_allclose(c.values, expected, rtol=1e-6)
    np.testing.assert_array_equal(c.times, np.arange(5))


def test_ellipse_curve_equals_the_mean_over_its_pixels(viewer_roi, known_series):
    viewer, widget = viewer_roi
    widget.draw("AO")
    shapes = viewer.layers[ROI_LAYER]
    assert shapes.mode == "add_ellipse" and viewer.layers.selection.active.name == ROI_LAYER
    # A circle of radius^2 27.5 around pixel (16, 12): the pixel centres inside are those with
    # dy^2 + dx^2 <= 26 (the next is 29), well clear of the outline's polygon approximation.
    r = np.sqrt(27.5)
    widget.add_ellipse(
        "AO", np.array([[16 - r, 12 - r], [16 - r, 12 + r], [16 + r, 12 + r], [16 + r, 12 - r]])
    )
    curves = widget.update_curves()
    assert [(c.roi, c.layer) for c in curves] == [("AO", "known")]
    yy, xx = np.mgrid[:32, :32]
    inside = (yy - 16) ** 2 + (xx - 12) ** 2 < 27.5
    assert inside.sum() == 89
    np.testing.assert_allclose(curves[0].values, known_series[:, inside].mean(axis=1), rtol=1e-6)
    # Colours match between the outline and the plot; AO has its own fixed colour.
    np.testing.assert_allclose(curves[0].color[:3], [1.0, 77 / 255, 77 / 255], atol=1e-2)


def test_rois_apply_to_an_upscaled_layer_through_world_coordinates(viewer_roi):
    viewer, widget = viewer_roi
    # Piecewise constant on 4 x 4 blocks, and the same picture on a 2x finer grid.
    rng = np.random.default_rng(0)
    blocks = rng.random((3, 8, 8)).astype(np.float32)
    base = np.kron(blocks, np.ones((1, 4, 4), np.float32))
    fine = np.kron(blocks, np.ones((1, 8, 8), np.float32))
    from dainr.result import Reconstruction

    viewer.add_image(base, name="base")
    data, kwargs, _ = L.result_layer(
        Reconstruction(fine.astype(np.complex64), "x", {}, 1), "fine", base_shape=(32, 32)
    )
    viewer.add_image(data, **kwargs)
    # Pixel centres line up: base pixel (i, j) is the centre of fine pixels 2i..2i+1, 2j..2j+1.
    up, lo = viewer.layers["fine"], viewer.layers["base"]
    for i, j in [(0, 0), (7, 20), (31, 31)]:
        c = np.mean(
            [up.data_to_world((0, 2 * i + a, 2 * j + b)) for a in (0, 1) for b in (0, 1)], axis=0
        )
        np.testing.assert_allclose(c, lo.data_to_world((0, i, j)), atol=1e-12)
    # An ROI inside one block (and one straddling four) measures the same on both grids.
    widget.roi_layer().add_rectangles(np.array([[4.2, 4.2], [6.8, 6.8]]))
    widget.roi_layer().add_ellipses(np.array([[5.6, 5.6], [5.6, 10.4], [10.4, 10.4], [10.4, 5.6]]))
    for roi in ("ROI 1", "ROI 2"):
        np.testing.assert_allclose(
            curve(widget, roi, "fine").values, curve(widget, roi, "base").values, rtol=0.05
        )
    np.testing.assert_allclose(curve(widget, "ROI 1", "fine").values, blocks[:, 1, 1], rtol=1e-6)


def test_curves_follow_layer_updates(qtbot, viewer_roi, known_series):
    viewer, widget = viewer_roi
    widget.roi_layer().add_rectangles(RECT)
    widget.update_curves()
    first = widget.curves[0].values.copy()
    viewer.layers["known"].data = known_series * 2  # what a streaming fit does
    qtbot.waitUntil(lambda: np.allclose(widget.curves[0].values, 2 * first), timeout=5000)


def test_unticked_layers_are_not_measured(viewer_roi, known_series):
    viewer, widget = viewer_roi
    viewer.add_image(known_series + 1, name="other")
    widget.roi_layer().add_rectangles(RECT)
    assert {c.layer for c in widget.update_curves()} == {"known", "other"}
    widget.layer_select.value = ["other"]
    assert {c.layer for c in widget.update_curves()} == {"other"}
    viewer.add_image(known_series, name="new")  # new layers are measured by default
    assert {c.layer for c in widget.update_curves()} == {"other", "new"}


def test_csv_export_round_trips(tmp_path, viewer_roi):
    viewer, widget = viewer_roi
    viewer.add_image(
        np.ones((3, 32, 32), np.float32),
        name="ones",
        metadata={L.FRAME_TIMES: np.array([0, 0.5, 1.0])},
    )
    widget.add_ellipse("AO", np.array([[8.0, 8.0], [8.0, 24.0], [24.0, 24.0], [24.0, 8.0]]))
    widget.add_ellipse("PV, portal", RECT)  # a comma in a name must survive CSV quoting
    path = tmp_path / "curves.csv"
    widget.export_csv(path)
    back = {(c.roi, c.layer): c for c in read_csv(path)}
    assert len(back) == len(widget.curves) == 4
    for c in widget.curves:
        b = back[(c.roi, c.layer)]
        np.testing.assert_array_equal(b.values, c.values.astype(float))
        np.testing.assert_array_equal(b.times, c.times)
    np.testing.assert_array_equal(back[("AO", "ones")].times, [0, 0.5, 1.0])


def test_png_export_writes_the_plot(tmp_path, viewer_roi):
    viewer, widget = viewer_roi
    widget.roi_layer().add_rectangles(RECT)
    path = tmp_path / "curves.png"
    widget.export_png(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000


def test_plot_follows_the_theme(viewer_roi):
    viewer, widget = viewer_roi
    viewer.theme = "light"
    light = widget.plot.figure.get_facecolor()
    viewer.theme = "dark"
    assert widget.plot.figure.get_facecolor() != light


def test_a_foreign_csv_is_named_with_its_columns(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"other\.csv: expected columns roi, layer, .* got a, b"):
        read_csv(path)


def test_volume_curves_follow_the_displayed_slice(make_napari_viewer_proxy):
    rng = np.random.default_rng(3)
    volume = rng.random((5, 3, 16, 16)).astype(np.float32)  # frame, slice, y, x
    viewer = make_napari_viewer_proxy()
    viewer.add_image(volume, name="vol")
    widget = RoiCurvesWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.roi_layer().add_rectangles(RECT)
    for s in (0, 2, 1):
        viewer.dims.set_current_step(1, s)
        (c,) = widget.update_curves()
        expected = volume[:, s, 4:10, 5:13].mean(axis=(1, 2))
        np.testing.assert_allclose(c.values, expected, rtol=1e-6)
