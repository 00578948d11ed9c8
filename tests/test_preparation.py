"""Density compensation has one path (--dcf, default auto), outputs record how the series
was prepared, and render requests are checked before a fit."""

from __future__ import annotations

import dataclasses
import json

import h5py
import numpy as np
import pytest

import dainr
from dainr.cli import main
from dainr.io import write_kspace_h5
from dainr.methods import get_method


@pytest.fixture
def file_with_dcf(tmp_path, tiny_data):
    """The tiny file with its own /dcf: twice the ramp, so it is told apart from the ramp."""
    tiny_data.dcf = 2.0 * np.abs(tiny_data.trajectory).max(-1).astype(np.float32) + 0.01
    p = tmp_path / "with_dcf.h5"
    write_kspace_h5(p, tiny_data)
    return p


def _prep(path) -> dict:
    with h5py.File(path) as f:
        return json.loads(f.attrs["preparation"])


def test_auto_is_the_default_and_takes_the_files_dcf(file_with_dcf, tmp_path):
    auto, file_, ramp = (tmp_path / f"{n}.h5" for n in ("auto", "file", "ramp"))
    base = ["recon", str(file_with_dcf), "--method", "nufft", "--quiet", "--out"]
    assert main([*base, str(auto)]) == 0  # no --dcf at all
    assert main([*base, str(file_), "--dcf", "file"]) == 0
    assert main([*base, str(ramp), "--dcf", "ramp"]) == 0
    assert _prep(auto)["dcf"] == "file" and _prep(ramp)["dcf"] == "ramp"
    with h5py.File(auto) as a, h5py.File(file_) as f, h5py.File(ramp) as r:
        np.testing.assert_array_equal(a["recon"][()], f["recon"][()])
        assert not np.allclose(a["recon"][()], r["recon"][()])


def test_auto_without_a_dcf_in_the_file_is_ramp(tiny_data):
    assert tiny_data.dcf is None
    result = dainr.reconstruct(tiny_data, "nufft")
    prep = json.loads(result.attrs["preparation"])
    assert prep["dcf"] == "ramp"
    assert {"dcf", "nufft_backend", "device", "nufft_eps", "coil_maps_source"} <= set(prep)
    assert prep["device"] == "cpu" and prep["nufft_eps"] > 0


def test_dcf_file_on_a_file_without_dcf_names_the_file(tiny_file, tmp_path, capsys):
    rc = main(["recon", str(tiny_file), "--method", "nufft", "--dcf", "file", "--quiet",
               "--out", str(tmp_path / "o.h5")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2
    assert str(tiny_file) in err and "/dcf" in err
    assert not (tmp_path / "o.h5").exists()


def test_the_gridding_config_has_no_second_dcf_setting(tiny_file, tmp_path, capsys):
    assert dataclasses.fields(get_method("nufft")[1]) == ()
    rc = main(["recon", str(tiny_file), "--method", "nufft", "--set", "dcf=\"ramp\"", "--quiet",
               "--out", str(tmp_path / "o.h5")])  # fmt: skip
    assert rc == 2 and "dcf" in capsys.readouterr().err


def test_every_output_records_its_preparation(tiny_file, tmp_path):
    out = tmp_path / "g.h5"
    assert main(["recon", str(tiny_file), "--method", "grasp", "--steps", "2", "--quiet",
                 "--dcf", "pipe-menon", "--out", str(out)]) == 0  # fmt: skip
    prep = _prep(out)
    assert prep["dcf"] == "pipe-menon" and prep["device"] == "cpu"
    assert prep["nufft_backend"] in ("finufft", "torchkbnufft")
    assert prep["coil_maps_source"] == "file"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--method", "grasp", "--upscale", "2"], "'grasp' has no continuous representation"),
        (["--method", "nufft", "--frames-between", "1"], "'nufft' has no continuous"),
        (["--method", "dainr", "--upscale", "0.5"], "upscale must be >= 1"),
        (["--method", "dainr", "--frames-between", "-1"], "frames_between must be >= 0"),
    ],
)
def test_render_flags_are_checked_before_the_fit(
    tiny_file, tmp_path, capsys, monkeypatch, flags, message
):
    def no_fit(*args, **kwargs):
        raise AssertionError("the fit started before the render flags were checked")

    monkeypatch.setattr("dainr.session.fit_stream", no_fit)
    monkeypatch.setattr("dainr.session.build_method", no_fit)
    rc = main(["recon", str(tiny_file), "--quiet", "--out", str(tmp_path / "o.h5"), *flags])
    assert rc == 2 and message in capsys.readouterr().err


def test_wall_time_counts_the_preparation(tiny_data, monkeypatch):
    """A slow preparation (DA-INR's GRASP prior runs there) shows in the result's seconds."""
    import time

    from dainr import session
    from dainr.loop import Done

    real = session.build_method

    def slow(*args, **kwargs):
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(session, "build_method", slow)
    spec = session.FitSpec(method="grasp", overrides={"steps": 2})
    done = [m for m in session.fit_stream(tiny_data, spec) if isinstance(m, Done)]
    r = done[0].result
    prep_s = json.loads(r.attrs["preparation"])["seconds"]
    assert prep_s >= 0.5 and r.seconds >= prep_s
