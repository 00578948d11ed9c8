"""TD-DIP: helix latents, decoder shapes, quality against gridding, streaming, stop, resume."""

from __future__ import annotations

import numpy as np
import pytest

import dainr
from dainr.api import make_method
from dainr.fit import Done, Progress, Snapshot, StopRequest, drain, run_fit, seed_everything
from dainr.methods.tddip import helix
from dainr.metrics import score_series
from dainr.simulate import SimulationConfig, simulate_phantom

#: Small enough for a test: 32 channels instead of the published 128.
SMALL = dict(channels=32)


@pytest.fixture(scope="module")
def cardiac():
    """32 x 32 beating heart, 6 frames, 4 coils, 13 spokes per frame, 1 % noise."""
    return simulate_phantom(
        "cardiac", SimulationConfig(size=32, frames=6, coils=4, spokes_per_frame=13)
    )


def _method(data, **kw):
    seed_everything(0)  # the networks are initialised when the method is built
    return make_method(data, "tddip", **(SMALL | kw))


def test_helix_is_a_circle_plus_a_line():
    z = helix(9, 2.0)
    assert z.shape == (9, 3)
    np.testing.assert_allclose((z[:, 0] ** 2 + z[:, 1] ** 2).numpy(), 1.0, atol=1e-6)
    np.testing.assert_allclose(z[:, 2].numpy(), np.linspace(0, 1, 9), atol=1e-7)
    # Two turns: half-way through the series the angle is 2 pi.
    np.testing.assert_allclose(z[4, :2].numpy(), [1.0, 0.0], atol=1e-6)


def test_decoder_fills_a_non_multiple_image_size():
    data = simulate_phantom(
        "cardiac", SimulationConfig(size=40, frames=3, coils=2, spokes_per_frame=8)
    )
    m = _method(data, up_factor=8)
    assert m.latent_shape == (5, 5)
    x = m.current_frames()
    assert x.shape == (3, 40, 40) and x.is_complex()


def test_tddip_beats_gridding(cardiac):
    ref = cardiac.reference
    grid = score_series(dainr.reconstruct(cardiac, "nufft").frames, ref)
    res = drain(run_fit(_method(cardiac, steps=600)))
    s = score_series(res.frames, ref)
    # Measured: 25.0 dB against 19.5 dB for gridding (robust PSNR) after 600 steps.
    assert s.robust_psnr_mean > grid.robust_psnr_mean + 3.0
    assert s.motion_psnr > grid.motion_psnr


def test_streams_snapshots_and_stops_cleanly(cardiac):
    stop = StopRequest()
    snaps, progress, done = [], [], None
    for msg in run_fit(_method(cardiac, steps=100), stop=stop, snapshot_every=2):
        if isinstance(msg, Progress):
            progress.append(msg.step)
            if msg.step == 5:
                stop.request()
        elif isinstance(msg, Snapshot):
            snaps.append(msg)
        elif isinstance(msg, Done):
            done = msg.result
    assert progress == [1, 2, 3, 4, 5]
    assert [s.step for s in snaps] == [2, 4, 5]  # every 2 steps, then the final state
    assert all(s.frames.shape == (6, 32, 32) and np.isfinite(s.frames).all() for s in snaps)
    assert (
        done is not None and done.partial and done.steps_done == 5 and len(done.loss_history) == 5
    )
    np.testing.assert_array_equal(done.frames, snaps[-1].frames)


def test_resume_reproduces_an_uninterrupted_run(cardiac, tmp_path):
    whole = drain(run_fit(_method(cardiac, steps=6), seed=3))
    ck = tmp_path / "tddip.pt"
    stop = StopRequest()
    for msg in run_fit(_method(cardiac, steps=6), seed=3, stop=stop, checkpoint=ck):
        if isinstance(msg, Progress) and msg.step == 3:
            stop.request()
    resumed = drain(run_fit(_method(cardiac, steps=6), seed=3, resume=ck))
    np.testing.assert_allclose(resumed.loss_history, whole.loss_history, rtol=1e-5)
    np.testing.assert_allclose(resumed.frames, whole.frames, atol=1e-5 * np.abs(whole.frames).max())


def test_bad_options_are_refused(cardiac):
    with pytest.raises(ValueError, match="power of two"):
        _method(cardiac, up_factor=12)
    with pytest.raises(ValueError, match="frames_per_step"):
        _method(cardiac, frames_per_step=7)
