"""Rendering a fitted continuous model: r > 1 upscaling and times between frames."""

import os

import numpy as np
import pytest
import torch

import dainr
from dainr.checkpoint import seed_everything
from dainr.io import read_recon_h5, write_kspace_h5
from dainr.loop import drain, run_fit
from dainr.render import render, render_result, render_times

from .conftest import TINY_DAINR as TINY
from .conftest import make_phantom_data


@pytest.fixture(scope="module")
def fitted():
    data = make_phantom_data()
    seed = int(os.environ.get("DAINR_TEST_SEED", "0"))
    seed_everything(seed)  # the networks are initialised when the method is made
    m = dainr.make_method(data, "dainr", steps=150, **TINY)
    result = drain(run_fit(m, seed=seed))
    return m, result


def test_render_times():
    np.testing.assert_allclose(render_times(3), [0, 1, 2])
    np.testing.assert_allclose(render_times(3, 1), [0, 0.5, 1, 1.5, 2])
    assert len(render_times(1, 3)) == 1
    with pytest.raises(ValueError, match="frames_between must be >= 0, got -1"):
        render_times(3, -1)


def test_render_at_integer_times_equals_the_training_path(fitted):
    """The rendering path (any time, any scale) reproduces the frames the fit trained on."""
    m, _ = fitted
    with torch.no_grad(), m.averaged_weights():  # what the frames come from (DainrConfig.ema)
        trained = m.model.frames(torch.arange(m.prep.n_frames, device=m.prep.device))
    trained = (trained / m.prep.scale).to(torch.complex64).cpu().numpy()
    np.testing.assert_allclose(render(m), trained, rtol=0, atol=1e-5 * np.abs(trained).max())


def test_upscale_two(fitted):
    m, result = fitted
    r = render_result(m, result, upscale=2.0)
    assert r.frames.shape == (6, 64, 64) and r.upscale == 2.0
    assert result.frames.shape == (6, 32, 32)  # the original is untouched
    # the same image, finer: block means stay close to the fitted frames
    blocks = r.frames.reshape(6, 32, 2, 32, 2).mean(axis=(2, 4))
    err = np.linalg.norm(blocks - result.frames) / np.linalg.norm(result.frames)
    assert err < 0.1
    cont = render(m, upscale=1.5, times=[1.0], coords="continuous")
    assert cont.shape == (1, 48, 48)


def test_fractional_time_gives_a_frame_between(fitted):
    m, result = fitted
    a, b = result.frames[2], result.frames[3]
    mid = render(m, times=[2.5])[0]
    gap = np.linalg.norm(np.abs(b) - np.abs(a))
    assert gap > 0
    # closer to each neighbour than the neighbours are to each other, and not either of them
    assert np.linalg.norm(np.abs(mid) - np.abs(a)) < gap
    assert np.linalg.norm(np.abs(mid) - np.abs(b)) < gap
    assert not np.allclose(mid, a) and not np.allclose(mid, b)
    r = render_result(m, result, frames_between=1)
    assert r.frames.shape == (11, 32, 32)
    np.testing.assert_allclose(r.attrs["frame_times"], np.arange(11) / 2)
    # same frames; other batches round differently, and the finest hash levels (cells far
    # below a pixel) turn float32 rounding of coordinates into small value changes
    np.testing.assert_allclose(r.frames[::2], result.frames, rtol=0, atol=2e-3)


def test_bad_requests(fitted, tiny_data):
    m, _ = fitted
    with pytest.raises(ValueError, match="times must lie"):
        render(m, times=[6.0])
    with pytest.raises(ValueError, match="upscale"):
        render(m, upscale=0.5)
    nufft = dainr.make_method(tiny_data, "nufft")
    with pytest.raises(ValueError, match="no continuous representation"):
        render(nufft, upscale=2.0)


def test_cli_upscale_and_frames_between(tmp_path, tiny_data):
    from dainr.cli import main
    from dainr.resample import replace_band

    src = tmp_path / "in.h5"
    write_kspace_h5(src, tiny_data)

    def recon(name, *extra):
        args = ["recon", str(src), "--method", "dainr", "--steps", "3", "--out"]
        args += [str(tmp_path / name), "--quiet", *extra]
        for k, v in TINY.items():
            args += ["--set", f"{k}={v}"]
        assert main(args) == 0
        return read_recon_h5(tmp_path / name)

    r = recon("out.h5", "--upscale", "2", "--frames-between", "1")
    assert r.frames.shape == (11, 64, 64) and r.upscale == 2.0 and r.steps_done == 3
    assert len(r.attrs["frame_times"]) == 11
    # the values: the same fit (same seed) at r = 1, then the r = 2 frames at its times
    plain = recon("plain.h5").frames
    fine = r.frames[::2]
    # the same image, finer: 2 x 2 block means match the r = 1 frames (2.3 % measured;
    # the neighbouring frame's are 12 % off, a one-pixel shift 14 %, transposed 37 %,
    # the "nearest" and "continuous" renders 6 and 15 %)
    blocks = fine.reshape(6, 32, 2, 32, 2).mean(axis=(2, 4))
    assert np.linalg.norm(blocks - plain) / np.linalg.norm(plain) < 0.05
    # and DA-INR's default r > 1 render (band+...) keeps the r = 1 frames' spectrum on the
    # acquisition grid exactly: putting it back changes nothing (float32 FFTs: 2e-7
    # measured; plain bicubic upsampling is 4 % off)
    kept = replace_band(torch.from_numpy(fine), torch.from_numpy(plain)).numpy()
    assert np.linalg.norm(kept - fine) / np.linalg.norm(fine) < 1e-5


def test_auto_coords_follow_the_fit(fitted):
    """r > 1 reads a jitter-trained fit at the fine grid's own points, others band+cubic."""
    from dainr.render import resolve_coords

    m, result = fitted
    assert resolve_coords(m) == "band+cubic"
    assert render_result(m, result, upscale=2.0).attrs["render_coords"] == "band+cubic"
    jit = dainr.make_method(make_phantom_data(), "dainr", jitter=True, **TINY)
    assert resolve_coords(jit) == "continuous" and resolve_coords(jit, "nearest") == "nearest"
    np.testing.assert_array_equal(
        render(jit, upscale=2.0, times=[1.0]),
        render(jit, upscale=2.0, times=[1.0], coords="continuous"),
    )
    with pytest.raises(ValueError, match="coords must be"):
        render(m, upscale=2.0, coords="cubic")
