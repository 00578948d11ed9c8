"""The "DA-INR reconstruction" dock in a real viewer: fit, stream, stop, errors, save, render."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from napari.utils.notifications import notification_manager

from dainr.io import read_recon_h5
from napari_dainr import _layers as L
from napari_dainr._reader import read_file
from napari_dainr._widget import ReconstructionWidget

from .conftest import FIT_TIMEOUT_MS, set_advanced

pytestmark = pytest.mark.gui


@pytest.fixture
def viewer_widget(make_napari_viewer_proxy, tiny_file):
    viewer = make_napari_viewer_proxy()
    data, kwargs, _ = read_file(tiny_file)
    viewer.add_image(data, **kwargs)
    widget = ReconstructionWidget(viewer)
    viewer.window.add_dock_widget(widget)
    yield viewer, widget
    if widget.running:  # never leave a thread behind a closed viewer
        widget.stop()
        widget._worker.await_workers(msecs=FIT_TIMEOUT_MS)


def wait_fit(qtbot, widget) -> None:
    qtbot.waitUntil(lambda: not widget.running, timeout=FIT_TIMEOUT_MS)


def controls_enabled(widget) -> bool:
    return (
        widget.fit_button.isEnabled()
        and not widget.stop_button.isEnabled()
        and widget.main_form.enabled
        and widget.method_box.enabled
    )


def test_widget_picks_up_the_kspace_layer(viewer_widget):
    viewer, widget = viewer_widget
    assert widget.input.value.name == "tiny (gridding)"
    assert widget.spokes.value == 13
    assert widget.frames_label.value.startswith("→ 6 frames of 32×32")
    widget.spokes.value = 20
    assert widget.frames_label.value.startswith("→ 3 frames of 32×32, 18 spokes unused")


def test_fit_streams_snapshots_into_one_layer_and_finishes(qtbot, viewer_widget, fast_dainr):
    viewer, widget = viewer_widget
    widget.method_box.value = "dainr"
    widget.steps.value = 5
    widget.live_every.value = 0.0  # a snapshot after every step
    set_advanced(widget, fast_dainr)
    updates = []
    inserted = []
    viewer.layers.events.inserted.connect(lambda e: inserted.append(e.value.name))

    def watch(event):
        layer = event.value
        if layer.name == "tiny [dainr]":
            layer.events.data.connect(lambda e: updates.append(id(e.source)))

    viewer.layers.events.inserted.connect(watch)
    widget.fit()
    assert widget.running and widget.stop_button.isEnabled() and not widget.fit_button.isEnabled()
    wait_fit(qtbot, widget)

    assert inserted == ["tiny [dainr]"]  # one layer, updated in place
    assert widget._snapshots >= 2 and len(updates) >= 1 and len(set(updates)) == 1
    layer = viewer.layers["tiny [dainr]"]
    result = widget.result
    assert result is not None and not result.partial and result.steps_done == 5
    assert layer.metadata[L.RESULT] is result
    np.testing.assert_allclose(layer.data, np.abs(result.frames), rtol=1e-6)
    assert len(result.loss_history) == 5
    assert controls_enabled(widget) and widget.save_button.isEnabled()
    assert "done" in widget.progress.format()


def test_contrast_is_set_once_then_kept(qtbot, viewer_widget, fast_dainr):
    viewer, widget = viewer_widget
    widget.method_box.value = "dainr"
    widget.steps.value = 6
    widget.live_every.value = 0.0
    set_advanced(widget, fast_dainr)
    limits = []

    def watch(event):
        if event.value.name == "tiny [dainr]":
            layer = event.value
            layer.contrast_limits = (0.0, 123.0)  # the user adjusts contrast after the first frame
            layer.events.data.connect(lambda e: limits.append(tuple(layer.contrast_limits)))

    viewer.layers.events.inserted.connect(watch)
    widget.fit()
    wait_fit(qtbot, widget)
    assert limits and all(lim == (0.0, 123.0) for lim in limits)


def test_stop_keeps_a_usable_partial_result(qtbot, viewer_widget, fast_dainr):
    viewer, widget = viewer_widget
    widget.method_box.value = "dainr"
    widget.steps.value = 100_000
    widget.live_every.value = 0.0
    set_advanced(widget, fast_dainr)
    widget.fit()
    qtbot.waitUntil(lambda: widget._snapshots >= 2, timeout=FIT_TIMEOUT_MS)
    widget.stop()
    wait_fit(qtbot, widget)

    result = widget.result
    assert result is not None and result.partial and 2 <= result.steps_done < 100_000
    layer = viewer.layers["tiny [dainr]"]
    assert (
        layer.data.shape == (6, 32, 32) and np.isfinite(layer.data).all() and layer.data.max() > 0
    )
    assert layer.metadata[L.RESULT] is result
    assert controls_enabled(widget)
    assert "stopped at step" in widget.progress.format()


def test_worker_error_becomes_a_notification(qtbot, viewer_widget, tiny_data):
    viewer, widget = viewer_widget
    # Corrupt k-space: the fit's loss is not finite and the engine stops with a FitError.
    bad = dataclasses.replace(tiny_data, kspace=np.full_like(tiny_data.kspace, np.nan))
    data, kwargs, _ = L.kspace_layer(bad, read_file_preview(tiny_data), "corrupt")
    viewer.add_image(data, **kwargs)
    widget.input.value = viewer.layers["corrupt"]
    widget.method_box.value = "nufft"
    before = len(notification_manager.records)
    widget.fit()
    wait_fit(qtbot, widget)
    messages = [str(n.message) for n in notification_manager.records[before:]]
    assert any("DA-INR fit" in m and "loss became nan" in m for m in messages), messages
    assert controls_enabled(widget)
    assert widget.result is None and "failed" in widget.progress.format()


def read_file_preview(data):
    return L.gridding_preview(data, device="cpu")


def test_save_writes_the_output_contract(qtbot, viewer_widget, tmp_path):
    viewer, widget = viewer_widget
    widget.method_box.value = "nufft"
    widget.fit()
    wait_fit(qtbot, widget)
    out = widget.save(tmp_path / "result.h5")
    back = read_recon_h5(out)
    np.testing.assert_array_equal(back.frames, widget.result.frames)
    assert back.method == "nufft" and back.spokes_per_frame == 13


def test_render_overlays_the_fit_in_world_coordinates(qtbot, viewer_widget, fast_dainr):
    viewer, widget = viewer_widget
    widget.method_box.value = "dainr"
    widget.steps.value = 3
    set_advanced(widget, fast_dainr)
    widget.fit()
    wait_fit(qtbot, widget)
    assert widget.render_button.isEnabled()
    widget.upscale.value = 2.0
    widget.between.value = 1
    widget.render()
    qtbot.waitUntil(lambda: not widget.running, timeout=FIT_TIMEOUT_MS)
    base = viewer.layers["tiny [dainr]"]
    up = viewer.layers["tiny [dainr] ×2 +1 between"]
    assert up.data.shape == (11, 64, 64)  # (6 - 1) * 2 + 1 frames, 2 x 2 pixels per pixel
    # Base pixel (i, j) at frame 2 is the centre of up pixels 2i..2i+1, 2j..2j+1 at frame 4.
    for i, j in [(0, 0), (5, 17), (31, 31)]:
        centre = np.mean(
            [up.data_to_world((4, 2 * i + a, 2 * j + b)) for a in (0, 1) for b in (0, 1)], axis=0
        )
        np.testing.assert_allclose(centre, base.data_to_world((2, i, j)), atol=1e-9)
    np.testing.assert_allclose(up.metadata[L.FRAME_TIMES][:3], [0.0, 0.5, 1.0])
    assert up.metadata[L.RESULT].upscale == 2.0


def test_render_needs_a_continuous_method(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    widget.method_box.value = "nufft"
    widget.fit()
    wait_fit(qtbot, widget)
    assert widget.save_button.isEnabled() and not widget.render_button.isEnabled()


def test_open_file_button_path(viewer_widget, tiny_file, tmp_path):
    viewer, widget = viewer_widget
    widget.open_file(tiny_file)
    assert len([x for x in viewer.layers if L.KSPACE in x.metadata]) == 2
    assert widget.input.value.name == viewer.layers[-1].name == "tiny (gridding) [1]"
    foreign = tmp_path / "foreign.h5"
    foreign.write_text("not hdf5")
    before = len(notification_manager.records)
    widget.open_file(foreign)
    assert any("foreign.h5" in str(n.message) for n in notification_manager.records[before:])


def test_plugin_as_a_user_meets_it(qtbot, make_napari_viewer_proxy, fast_dainr):
    """Sample from the menu, dock from the manifest, press Fit: the layer updates and finishes."""
    from qtpy.QtCore import Qt

    viewer = make_napari_viewer_proxy()
    viewer.open_sample("napari-dainr", "dce")
    _, widget = viewer.window.add_plugin_dock_widget("napari-dainr", "DA-INR reconstruction")
    assert widget.method_box.value == "dainr" and widget.input.value.name == "DCE sample (gridding)"
    widget.steps.value = 8
    widget.live_every.value = 0.0
    set_advanced(widget, fast_dainr)
    updates = []
    viewer.layers.events.inserted.connect(
        lambda e: e.value.events.data.connect(lambda _: updates.append(e.value.name))
    )
    qtbot.mouseClick(widget.fit_button, Qt.MouseButton.LeftButton)
    wait_fit(qtbot, widget)
    assert updates.count("DCE sample [dainr]") >= 2
    assert widget.result.frames.shape == (16, 96, 96) and not widget.result.partial


@pytest.mark.parametrize("method", ["nufft", "dainr", "grasp", "tddip", "hashinr"])
def test_every_method_offers_its_settings(viewer_widget, method):
    from dainr.methods import available_methods, get_method

    if method not in available_methods():
        pytest.skip(f"{method} is not in this installation yet")
    viewer, widget = viewer_widget
    widget.method_box.value = method
    _, config_cls = get_method(method)
    shown = {w.name for w in widget.config_form}
    assert shown == {f.name for f in dataclasses.fields(config_cls)} - {"steps"}
    req = widget.fit_request()  # the untouched form asks for the method's own defaults
    assert set(req.overrides) <= {"steps"}
    config_cls(**req.overrides)


def test_a_bad_advanced_setting_is_reported_not_run(viewer_widget):
    viewer, widget = viewer_widget
    widget.method_box.value = "dainr"
    widget.config_form.lr.value = "fast please"
    before = len(notification_manager.records)
    widget.fit()
    assert not widget.running and controls_enabled(widget)
    messages = [str(n.message) for n in notification_manager.records[before:]]
    assert any("DainrConfig.lr" in m and "'fast please'" in m and "float" in m for m in messages), messages
    widget.config_form.lr.value = "0.002"
    assert widget.fit_request().overrides["lr"] == 0.002
