"""The "DA-INR reconstruction" dock in a real viewer: fit, stream, stop, errors, save, render."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
from napari.utils.notifications import notification_manager

from dainr.config import ConfigError
from dainr.errors import FitError
from dainr.io import read_recon_h5
from napari_dainr import _layers as L

from .conftest import FIT_TIMEOUT_MS, set_advanced, wait_idle

pytestmark = pytest.mark.gui


def controls_enabled(widget) -> bool:
    return (
        widget.fit_button.isEnabled()
        and not widget.stop_button.isEnabled()
        and widget.inputs.form.enabled
        and widget.settings.method_box.enabled
    )


def record(signal) -> list:
    """Every emission of ``signal`` (its arguments; one argument unpacked)."""
    got = []
    signal.connect(lambda *args: got.append(args[0] if len(args) == 1 else args))
    return got


def new_messages(before: int) -> list[str]:
    return [str(n.message) for n in notification_manager.records[before:]]


def test_widget_picks_up_the_kspace_layer(viewer_widget):
    viewer, widget = viewer_widget
    assert widget.inputs.layer.name == "tiny (gridding)"
    assert widget.inputs.spokes_per_frame == 13
    assert widget.inputs.frames_label.value == "→ 6 frames of 32×32"  # 78 spokes, none unused


def test_changing_spokes_regrids_the_preview_once(qtbot, viewer_widget, caplog):
    viewer, widget = viewer_widget
    layer = viewer.layers["tiny (gridding)"]
    caplog.set_level(logging.WARNING, logger="dainr.physics.binning")
    with qtbot.waitSignal(widget.inputs.preview_updated, timeout=FIT_TIMEOUT_MS):
        for spf in range(14, 21):  # seven spin-box ticks, 13 -> 20
            widget.inputs.spokes.value = spf
        assert widget.inputs.regridding
    widget.inputs.wait()
    qtbot.waitUntil(lambda: not widget.inputs.regridding, timeout=FIT_TIMEOUT_MS)
    # One binning (one "dropped" line) for the settled value, none for the ticks on the way.
    dropped = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert [r.getMessage() for r in dropped] == [
        "20 spokes per frame: 3 frames; the last 18 of 78 spokes are dropped"
    ]
    assert layer.data.shape == (3, 32, 32) and layer.metadata[L.SPOKES] == 20
    expected = np.abs(L.gridding_preview(layer.metadata[L.KSPACE], 20, device="cpu").frames)
    # (not bit-equal: torch's thread count, hence its summation order, is per thread)
    np.testing.assert_allclose(layer.data, expected, rtol=0, atol=1e-3 * expected.max())
    assert widget.inputs.frames_label.value == "→ 3 frames of 32×32, 18 spokes unused"


def test_fit_streams_snapshots_into_one_layer_and_finishes(qtbot, dainr_widget):
    viewer, widget = dainr_widget
    widget.settings.steps.value = 5
    widget.settings.holdout.value = 0.05  # held-out spokes are opt-in
    snapshots = record(widget.session.snapshot)
    progress = record(widget.session.progress)
    finished = record(widget.session.finished)
    # the dock's own handlers run first: what the status line says at every step
    status_at_steps = []
    widget.session.progress.connect(lambda m: status_at_steps.append(widget.status.text()))
    inserted, updates = [], []

    def watch(event):
        inserted.append(event.value.name)
        event.value.events.data.connect(lambda e: updates.append(e.source.name))

    viewer.layers.events.inserted.connect(watch)
    widget.fit()
    assert widget.running and widget.stop_button.isEnabled() and not widget.fit_button.isEnabled()
    wait_idle(qtbot, widget)

    # A snapshot after each of the 5 steps (the last one is the result): the first creates
    # the layer, the other four update it in place.
    assert [m.step for m in snapshots] == [1, 2, 3, 4, 5]
    assert inserted == ["tiny [dainr]"] and updates == ["tiny [dainr]"] * 4
    # Every step's progress precedes its snapshot, so none is thinned away; it ends at 5/5.
    assert [(m.step, m.total) for m in progress] == [(i, 5) for i in range(1, 6)]
    layer = viewer.layers["tiny [dainr]"]
    result = widget.result
    assert finished == [result]
    assert not result.partial and result.steps_done == 5 and len(result.loss_history) == 5
    assert layer.metadata[L.RESULT] is result
    np.testing.assert_allclose(layer.data, np.abs(result.frames), rtol=1e-6)
    assert [s for s, _ in widget.loss_plot.train] == [1, 2, 3, 4, 5]
    # Held-out spokes asked for: 5 steps are evaluated every step; the plot has each
    # evaluation and marks the step whose state the fit returned.
    assert all(np.isfinite(m.heldout) for m in progress)
    assert widget.loss_plot.heldout == [(m.step, m.heldout) for m in progress]
    assert widget.loss_plot.best_step == result.chosen_step == progress[-1].best_step
    assert controls_enabled(widget) and widget.results.save_button.isEnabled()
    assert widget.progress.format().startswith(f"done · kept step {result.chosen_step} · loss")
    assert status_at_steps and all(t.startswith("fitting 6 frames") for t in status_at_steps)
    # the coil maps the fit used, as a layer over the input
    assert widget.results.maps_button.isEnabled() and result.coil_maps.shape == (4, 32, 32)
    maps = widget.results.add_coil_maps()
    assert maps.name == "tiny coil maps" and maps.data.shape == (4, 32, 32)
    np.testing.assert_allclose(maps.data, np.abs(result.coil_maps))
    np.testing.assert_allclose(maps.scale[-2:], viewer.layers["tiny (gridding)"].scale[-2:])


def test_heldout_and_early_stop_settings_reach_the_fit(viewer_widget):
    viewer, widget = viewer_widget
    widget.settings.method_box.value = "dainr"
    spec = widget.fit_request().spec
    assert (spec.holdout, spec.early_stop) == (None, None)  # the engine's documented defaults
    widget.settings.holdout.value = 0.1
    widget.settings.early_stop.value = 0  # never
    spec = widget.fit_request().spec
    assert (spec.holdout, spec.early_stop) == (0.1, 0)
    widget.settings.holdout.value = 0.0  # off, not the method's default
    assert widget.settings.holdout.native.text() == "0.00"
    assert widget.fit_request().spec.holdout == 0.0
    widget.settings.holdout.value = -0.01
    assert widget.settings.holdout.native.text() == "method default"
    assert widget.fit_request().spec.holdout is None


def test_steps_box_says_method_default_and_passes_a_count(viewer_widget):
    viewer, widget = viewer_widget
    steps = widget.settings.steps
    for method in ("dainr", "grasp"):  # both derive their step count
        widget.settings.method_box.value = method
        assert steps.native.text() == "method default"
        assert "steps" not in widget.fit_request().spec.overrides
    widget.settings.method_box.value = "dainr"
    steps.value = 120
    assert steps.native.text() == "120"
    assert widget.fit_request().spec.overrides["steps"] == 120
    widget.settings.method_box.value = "tddip"  # a fixed default is shown as the number
    assert steps.native.text() == "10000"


def test_contrast_is_set_once_then_kept(qtbot, dainr_widget):
    viewer, widget = dainr_widget
    widget.settings.steps.value = 6
    limits = []

    def watch(event):
        if event.value.name == "tiny [dainr]":
            layer = event.value
            layer.contrast_limits = (0.0, 123.0)  # the user adjusts contrast after the first frame
            layer.events.data.connect(lambda e: limits.append(tuple(layer.contrast_limits)))

    viewer.layers.events.inserted.connect(watch)
    widget.fit()
    wait_idle(qtbot, widget)
    assert limits == [(0.0, 123.0)] * 5  # six snapshots: one creates, five update


def test_the_prior_shows_progress_and_stop_ends_it(qtbot, dainr_widget):
    viewer, widget = dainr_widget
    set_advanced(widget, {"prior_iterations": 1_000_000})  # hours of prior: only Stop ends it
    stages = record(widget.session.stage)
    failed = record(widget.session.failed)
    widget.fit()
    qtbot.waitUntil(lambda: len(stages) >= 3, timeout=FIT_TIMEOUT_MS)
    assert widget.progress.format().startswith("prior ")
    assert stages[-1].name == "prior" and stages[-1].total == 1_000_000
    assert "computing the prior" in widget.status.text()
    widget.stop()
    wait_idle(qtbot, widget)
    assert stages[-1].done < 1_000_000 and len(failed) == 1
    assert "stopped during the prior" in widget.status.text()
    assert widget.progress.format() == "stopped" and controls_enabled(widget)
    assert widget.result is None  # nothing was fitted: no layer claims a result


def test_whole_number_boxes_show_their_special_values(viewer_widget):
    viewer, widget = viewer_widget
    s = widget.settings
    s.checkpoint_every.value = 0
    s.early_stop.value = 0
    assert s.checkpoint_every.native.text() == "end only" and s.early_stop.native.text() == "never"
    s.checkpoint_every.value = 25
    assert s.checkpoint_every.native.text() == "25"


def test_stop_keeps_a_usable_partial_result(qtbot, dainr_widget):
    viewer, widget = dainr_widget
    widget.settings.steps.value = 100_000
    widget.fit()
    qtbot.waitUntil(lambda: widget.live.shown >= 2, timeout=FIT_TIMEOUT_MS)
    widget.stop()
    wait_idle(qtbot, widget)

    result = widget.result
    assert result is not None and result.partial and 2 <= result.steps_done < 100_000
    layer = viewer.layers["tiny [dainr]"]
    assert layer.data.shape == (6, 32, 32) and np.isfinite(layer.data).all()
    assert layer.data.max() > 0 and layer.metadata[L.RESULT] is result
    assert controls_enabled(widget)
    assert widget.progress.format().startswith(f"stopped at step {result.steps_done}")


def test_worker_error_becomes_a_notification(qtbot, viewer_widget, tiny_data):
    viewer, widget = viewer_widget
    # Corrupt k-space: the fit's loss is not finite and the engine stops with a FitError.
    bad = dataclasses.replace(tiny_data, kspace=np.full_like(tiny_data.kspace, np.nan))
    data, kwargs, _ = L.kspace_layer(bad, L.gridding_preview(tiny_data, device="cpu"), "corrupt")
    viewer.add_image(data, **kwargs)
    widget.inputs.input.value = viewer.layers["corrupt"]
    widget.settings.method_box.value = "nufft"
    failed = record(widget.session.failed)
    before = len(notification_manager.records)
    widget.fit()
    wait_idle(qtbot, widget)
    [(kind, exc)] = failed
    assert kind == "fit" and type(exc) is FitError
    assert str(exc).startswith("the loss became nan at step 1")
    assert f"DA-INR fit: {exc}" in new_messages(before)
    assert controls_enabled(widget)
    assert widget.result is None and widget.progress.format() == "failed"


def test_save_writes_the_output_contract(qtbot, viewer_widget, tmp_path):
    viewer, widget = viewer_widget
    widget.settings.method_box.value = "nufft"
    widget.fit()
    wait_idle(qtbot, widget)
    out = widget.save(tmp_path / "result.h5")
    back = read_recon_h5(out)
    np.testing.assert_array_equal(back.frames, widget.result.frames)
    assert back.method == "nufft" and back.spokes_per_frame == 13


def test_checkpoint_and_resume_from_the_dock(qtbot, dainr_widget, tmp_path):
    viewer, widget = dainr_widget
    s = widget.settings
    s.live_every.value = 60.0
    s.steps.value = 6
    widget.fit()  # the uninterrupted reference
    wait_idle(qtbot, widget)
    straight = widget.result

    ck = tmp_path / "fit.pt"
    s.steps.value = 4
    s.checkpoint.value = ck
    widget.fit()
    wait_idle(qtbot, widget)
    assert ck.is_file() and widget.result.steps_done == 4

    s.checkpoint.value = None
    s.steps.value = 6
    s.resume.value = ck
    widget.fit()
    wait_idle(qtbot, widget)
    resumed = widget.result
    assert resumed.steps_done == 6 and not resumed.partial
    np.testing.assert_allclose(resumed.loss_history, straight.loss_history, rtol=1e-5)
    np.testing.assert_allclose(resumed.frames, straight.frames, rtol=1e-4, atol=1e-6)


def test_resume_needs_an_existing_checkpoint(viewer_widget, tmp_path):
    viewer, widget = viewer_widget
    widget.settings.resume.value = tmp_path / "missing.pt"
    before = len(notification_manager.records)
    widget.fit()
    assert not widget.running
    assert new_messages(before) == [f"resume from: no checkpoint file {tmp_path / 'missing.pt'}"]


def test_render_overlays_the_fit_in_world_coordinates(qtbot, dainr_widget):
    viewer, widget = dainr_widget
    widget.settings.steps.value = 3
    widget.fit()
    wait_idle(qtbot, widget)
    assert widget.results.render_button.isEnabled()
    widget.results.upscale.value = 2.0
    widget.results.between.value = 1
    rendered = record(widget.session.rendered)
    widget.render()
    wait_idle(qtbot, widget)
    assert [(r, k) for _, r, k in rendered] == [(2.0, 1)]
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
    assert widget.progress.format() == "rendered 11 frames of 64×64"


def test_render_needs_a_continuous_method(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    widget.settings.method_box.value = "nufft"
    widget.fit()
    wait_idle(qtbot, widget)
    assert widget.results.save_button.isEnabled() and not widget.results.render_button.isEnabled()
    assert widget.session.render(2.0, 0) is False


def test_open_file_button_path(viewer_widget, tiny_file, tmp_path):
    viewer, widget = viewer_widget
    widget.inputs.open_file(tiny_file)
    assert [x.name for x in viewer.layers if L.KSPACE in x.metadata] == [
        "tiny (gridding)",
        "tiny (gridding) [1]",
    ]
    assert widget.inputs.layer.name == "tiny (gridding) [1]"
    foreign = tmp_path / "foreign.h5"
    foreign.write_text("not hdf5")
    before = len(notification_manager.records)
    assert widget.inputs.open_file(foreign) is None
    [message] = new_messages(before)
    assert str(foreign) in message


def test_plugin_as_a_user_meets_it(qtbot, make_napari_viewer_proxy, fast_dainr):
    """Sample from the menu, dock from the manifest, press Fit: the layer updates and finishes."""
    from qtpy.QtCore import Qt

    viewer = make_napari_viewer_proxy()
    viewer.open_sample("napari-dainr", "dce")
    _, widget = viewer.window.add_plugin_dock_widget("napari-dainr", "DA-INR reconstruction")
    assert widget.settings.method_box.value == "dainr"
    assert widget.inputs.layer.name == "DCE sample (gridding)"
    widget.settings.steps.value = 8
    widget.settings.live_every.value = 0.0
    set_advanced(widget, fast_dainr)
    updates = []
    viewer.layers.events.inserted.connect(
        lambda e: e.value.events.data.connect(lambda _: updates.append(e.value.name))
    )
    qtbot.mouseClick(widget.fit_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, widget)
    assert updates == ["DCE sample [dainr]"] * 7  # 8 snapshots: one creates the layer
    assert widget.result.frames.shape == (16, 96, 96) and not widget.result.partial


@pytest.mark.parametrize("method", ["nufft", "dainr", "grasp", "tddip", "hashinr"])
def test_every_method_offers_its_settings(viewer_widget, method):
    from dainr.methods import get_method

    viewer, widget = viewer_widget
    widget.settings.method_box.value = method
    _, config_cls = get_method(method)
    shown = {w.name for w in widget.settings.config_form}
    research = set(getattr(config_cls, "RESEARCH_FIELDS", ()))
    assert shown == {f.name for f in dataclasses.fields(config_cls)} - {"steps"} - research
    if method == "dainr":  # switches measured worse stay out of the form
        assert research and "jitter" in research and "ema" in shown
    req = widget.fit_request()  # the untouched form asks for the method's own defaults
    assert set(req.spec.overrides) <= {"steps"}
    config_cls(**req.spec.overrides)


def test_a_bad_advanced_setting_is_reported_not_run(viewer_widget):
    viewer, widget = viewer_widget
    widget.settings.method_box.value = "dainr"
    widget.settings.config_form.lr.value = "fast please"
    with pytest.raises(ConfigError, match=r"DainrConfig\.lr.*'fast please'.*float"):
        widget.fit_request()
    before = len(notification_manager.records)
    widget.fit()
    assert not widget.running and controls_enabled(widget)
    [message] = new_messages(before)
    assert "DainrConfig.lr" in message and "'fast please'" in message and "float" in message
    widget.settings.config_form.lr.value = "0.002"
    assert widget.fit_request().spec.overrides["lr"] == 0.002
