"""The ``dainr`` command end to end on a tiny file."""

import json
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest

from dainr.cli import main
from dainr.io import read_recon_h5


def test_recon_nufft_writes_the_output_contract(tiny_file, tmp_path, capsys):
    out = tmp_path / "out.h5"
    assert main(["recon", str(tiny_file), "--method", "nufft", "--out", str(out), "--quiet"]) == 0
    with h5py.File(out) as f:
        assert f["recon"].shape == (6, 32, 32) and f["recon"].dtype == np.complex64
        for key in (
            "method",
            "spokes_per_frame",
            "config",
            "seconds",
            "peak_memory_bytes",
            "versions",
        ):
            assert key in f.attrs
        assert f.attrs["method"] == "nufft"
        assert json.loads(f.attrs["config"]) == {}
        prep = json.loads(f.attrs["preparation"])
        assert prep["dcf"] == "ramp" and prep["coil_maps_source"] in ("file", "estimated")
        assert {"nufft_backend", "device", "nufft_eps"} <= set(prep)
        assert f.attrs["peak_memory_bytes"] > 0
        assert f.attrs["noise_level"] == 0.0  # the input's attributes are carried through
    assert not list(tmp_path.glob(".*part"))  # nothing half-written left behind


def test_recon_with_other_binning_and_user_maps(tiny_file, tmp_path, tiny_data):
    maps = tmp_path / "maps.h5"
    with h5py.File(maps, "w") as f:
        f["coil_maps"] = tiny_data.coil_maps
    out = tmp_path / "o.h5"
    rc = main(
        [
            "recon",
            str(tiny_file),
            "--method",
            "nufft",
            "--spokes-per-frame",
            "20",
            "--coil-maps",
            str(maps),
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    r = read_recon_h5(out)
    assert r.frames.shape[0] == 78 // 20 and r.spokes_per_frame == 20
    assert r.attrs["coil_maps_source"] == "user"


def test_info_and_eval(tiny_file, tmp_path, capsys):
    assert main(["info", str(tiny_file), "--spokes-per-frame", "10"]) == 0
    text = capsys.readouterr().out
    assert "coils        4" in text and "7 at 10 spokes/frame (8 spokes dropped)" in text
    out = tmp_path / "o.h5"
    main(["recon", str(tiny_file), "--method", "nufft", "--out", str(out), "--quiet"])
    capsys.readouterr()
    assert main(["eval", str(out), str(tiny_file), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["method"] == "nufft" and 10 < scores["robust_psnr_mean"] < 40
    assert main(["eval", str(out), str(tiny_file)]) == 0
    assert "robust PSNR" in capsys.readouterr().out


def test_output_never_overwrites_input(tiny_file, capsys):
    assert (
        main(["recon", str(tiny_file), "--method", "nufft", "--out", str(tiny_file), "--quiet"])
        == 2
    )
    assert "overwrite the input" in capsys.readouterr().err


def test_entry_point_runs_as_a_program(tiny_file, tmp_path):
    out = tmp_path / "o.h5"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "dainr.cli",
            "recon",
            str(tiny_file),
            "--method",
            "nufft",
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert out.exists() and "-> " in p.stderr


def test_seed_fixes_the_network_initialisation_from_the_command_line(tiny_file, tmp_path):
    def run(seed, name):
        out = tmp_path / name
        # --device cpu: bit-equal results are not promised by CUDA's atomic scatters
        args = [
            "recon",
            str(tiny_file),
            "--method",
            "dainr",
            "--steps",
            "3",
            "--seed",
            str(seed),
            "--device",
            "cpu",
            "--set",
            "hash_log2_size=12",
            "--set",
            "hash_levels=8",
            "--out",
            str(out),
            "--quiet",
        ]
        assert main(args) == 0
        return read_recon_h5(out).frames

    a, b, c = run(1, "a.h5"), run(1, "b.h5"), run(2, "c.h5")
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_a_mistyped_override_is_one_line_naming_field_value_and_type(tiny_file, tmp_path, capsys):
    out = tmp_path / "o.h5"
    assert main(["recon", str(tiny_file), "--set", "lr=abc", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    # one line, before any work: the field, the value as typed and the type it needs
    assert err.count("\n") == 1 and err.startswith("dainr recon: error: ")
    assert re.search(r"\blr\b.*'abc'.*\bfloat\b", err), err
    assert not out.exists()


def test_maps_writes_the_estimated_maps_that_recon_takes_back(tiny_file, tmp_path, capsys):
    from dainr.io import load_coil_maps, load_kspace
    from dainr.prepare import prepare_series

    maps = tmp_path / "maps.h5"
    assert main(["maps", str(tiny_file), "--out", str(maps)]) == 0
    m = load_coil_maps(maps, 4, (32, 32))
    data = load_kspace(tiny_file)
    data.coil_maps = None  # what a reconstruction estimates when the file has none
    np.testing.assert_allclose(m, prepare_series(data, device="cpu").op.maps.numpy(), atol=1e-6)
    rss = np.sqrt((np.abs(m) ** 2).sum(0))
    assert np.median(rss[rss > 0]) == pytest.approx(1.0, abs=0.02)
    out = tmp_path / "o.h5"
    assert main(["recon", str(tiny_file), "--method", "nufft", "--coil-maps", str(maps),
                 "--out", str(out), "--quiet"]) == 0  # fmt: skip
    r = read_recon_h5(out)
    assert r.attrs["coil_maps_source"] == "user"
    np.testing.assert_array_equal(r.coil_maps, m)
