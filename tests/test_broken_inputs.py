"""Broken inputs: one line naming file, dataset and expectation; non-zero exit; nothing written.

Every case is built from a valid tiny file (or from scratch), then handed to the CLI.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.io import savemat

from dainr.cli import main
from dainr.io import write_kspace_h5

from .conftest import make_phantom_data


def _valid(path: Path, **changes) -> Path:
    d = make_phantom_data(n=16, n_frames=3, n_coils=2, spokes_per_frame=5)
    for k, v in changes.items():
        setattr(d, k, v)
    write_kspace_h5(path, d)
    return path


def _edit(path: Path, fn: Callable[[h5py.File], None]) -> Path:
    _valid(path)
    with h5py.File(path, "a") as f:
        fn(f)
    return path


def _replace(name: str, value) -> Callable[[h5py.File], None]:
    def fn(f: h5py.File) -> None:
        del f[name]
        if value is not None:
            f[name] = value

    return fn


def truncated(p):
    _valid(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p, [], ["truncated HDF5 file", f"{len(data)} bytes"]


def random_bytes(p):
    p.write_bytes(np.random.default_rng(0).bytes(4096))
    return p, [], ["not an HDF5 file"]


def empty_file(p):
    p.write_bytes(b"")
    return p, [], ["not an HDF5 file"]


def missing_kspace(p):
    return _edit(p, _replace("kspace", None)), [], ["/kspace", "missing dataset"]


def kspace_is_a_group(p):
    return (
        _edit(p, lambda f: (f.__delitem__("kspace"), f.create_group("kspace"))),
        [],
        ["/kspace", "group"],
    )


def wrong_rank(p):
    return (
        _edit(p, _replace("kspace", np.zeros((2, 15 * 32), np.complex64))),
        [],
        ["/kspace", "3 dimensions"],
    )


def real_kspace(p):
    return (
        _edit(p, _replace("kspace", np.zeros((2, 15, 32), np.float32))),
        [],
        ["/kspace", "complex"],
    )


def string_kspace(p):
    return (
        _edit(p, _replace("kspace", np.array([[["a"] * 32] * 15] * 2, dtype="S1"))),
        [],
        ["/kspace", "complex"],
    )


def nan_kspace(p):
    def fn(f):
        k = f["kspace"][()]
        k[1, 3, 7] = np.nan
        f["kspace"][...] = k

    return _edit(p, fn), [], ["/kspace", "NaN/Inf"]


def inf_trajectory(p):
    def fn(f):
        t = f["trajectory"][()]
        t[0, 0, 0] = np.inf
        f["trajectory"][...] = t

    return _edit(p, fn), [], ["/trajectory", "NaN/Inf"]


def all_zero_trajectory(p):
    return (
        _edit(p, lambda f: f["trajectory"].write_direct(np.zeros_like(f["trajectory"][()]))),
        [],
        ["/trajectory", "all zeros"],
    )


def one_spoke_angle(p):
    def fn(f):
        t = f["trajectory"][()]
        f["trajectory"][...] = np.broadcast_to(t[:1], t.shape)  # every spoke the first one

    return _edit(p, fn), [], ["/trajectory", "1 spoke angle"]


def trajectory_in_cycles(p):
    return (
        _edit(p, lambda f: f["trajectory"].write_direct(f["trajectory"][()] / (2 * np.pi))),
        [],
        ["/trajectory", "reaches only 0.5", "2*pi"],
    )


def nan_dcf(p):
    def fn(f):
        w = np.ones((15, 32), np.float32)
        w[3, 4] = np.nan
        f["dcf"] = w

    return _edit(p, fn), [], ["/dcf", "NaN/Inf"]


def dcf_wrong_length(p):
    return (
        _edit(p, lambda f: f.__setitem__("dcf", np.ones((15, 31), np.float32))),
        [],
        ["/dcf", "[15, 32]"],
    )


def trajectory_out_of_range(p):
    # A radians trajectory multiplied by 2 pi once too often: the classic unit mistake.
    return (
        _edit(p, lambda f: f["trajectory"].write_direct(f["trajectory"][()] * 2 * np.pi)),
        [],
        ["/trajectory", "[-pi, pi)"],
    )


def trajectory_wrong_shape(p):
    return (
        _edit(p, _replace("trajectory", np.zeros((15, 31, 2), np.float32))),
        [],
        ["/trajectory", "[15, 32, 2]"],
    )


def coil_maps_wrong_size(p):
    return (
        _edit(p, _replace("coil_maps", np.ones((2, 17, 16), np.complex64))),
        [],
        ["/coil_maps", "16 x 16"],
    )


def coil_count_mismatch(p):
    return (
        _edit(p, _replace("coil_maps", np.ones((3, 16, 16), np.complex64))),
        [],
        ["/coil_maps", "3 coils", "has 2"],
    )


def user_coil_maps_mismatch(p):
    maps = p.with_name("maps.h5")
    with h5py.File(maps, "w") as f:
        f["coil_maps"] = np.ones((5, 16, 16), np.complex64)
    return _valid(p), ["--coil-maps", str(maps)], ["/coil_maps", "[2, 16, 16]"], maps


def zero_spokes(p):
    def fn(f):
        for name in ("kspace", "trajectory", "reference", "coil_maps"):
            del f[name]
        f["kspace"] = np.zeros((2, 0, 32), np.complex64)
        f["trajectory"] = np.zeros((0, 32, 2), np.float32)

    return _edit(p, fn), [], ["/kspace", "empty"]


def fewer_spokes_than_one_frame(p):
    def fn(f):
        k, t = f["kspace"][:, :4], f["trajectory"][:4]
        for name in ("kspace", "trajectory", "reference"):
            del f[name]
        f["kspace"], f["trajectory"] = k, t

    return _edit(p, fn), ["--spokes-per-frame", "5"], ["/kspace", "too few spokes for one frame"]


def reference_needs_more_spokes(p):
    return (
        _edit(p, _replace("reference", np.zeros((9, 16, 16), np.float32))),
        [],
        ["/reference", "9 frames"],
    )


def missing_image_shape(p):
    return _edit(p, lambda f: f.attrs.__delitem__("image_shape")), [], ["image_shape", "missing"]


def huge_image_shape(p):
    return (
        _edit(p, lambda f: f.attrs.__setitem__("image_shape", [10**6, 10**6])),
        [],
        ["image_shape", "too large"],
    )


def negative_image_shape(p):
    return (
        _edit(p, lambda f: f.attrs.__setitem__("image_shape", [16, -16])),
        [],
        ["image_shape", "positive"],
    )


def huge_declared_kspace(p):
    # Declared, never written: a few kB on disk that claim 2^37 samples.
    def fn(f):
        del f["kspace"]
        f.create_dataset("kspace", shape=(64, 2**20, 2**11), dtype=np.complex64, chunks=(1, 64, 64))

    return _edit(p, fn), [], ["/kspace", "too large"]


def wrong_format_version(p):
    return (
        _edit(p, lambda f: f.attrs.__setitem__("format_version", 7)),
        [],
        ["format_version", "expected 1"],
    )


def format_version_text(p):
    return (
        _edit(p, lambda f: f.attrs.__setitem__("format_version", "one")),
        [],
        ["format_version", "expected 1"],
    )


def spokes_per_frame_not_an_integer(p):
    return (
        _edit(p, lambda f: f.attrs.__setitem__("spokes_per_frame", 4.5)),
        [],
        [
            "spokes_per_frame",
            "positive integer",
        ],
    )


def all_zero_coil_maps(p):
    return (
        _edit(p, lambda f: f["coil_maps"].write_direct(np.zeros((2, 16, 16), np.complex64))),
        [],
        [
            "/coil_maps",
            "zero everywhere",
        ],
    )


def all_zero_kspace(p):
    return (
        _edit(p, lambda f: f["kspace"].write_direct(np.zeros((2, 15, 32), np.complex64))),
        [],
        [
            "/kspace",
            "all samples are zero",
        ],
    )


def negative_dcf(p):
    return (
        _edit(p, lambda f: f.__setitem__("dcf", -np.ones((15, 32), np.float32))),
        ["--dcf", "file"],
        [
            "/dcf",
            "non-negative",
        ],
    )


def roi_mask_wrong_size(p):
    return (
        _edit(p, lambda f: f.__setitem__("roi/aorta/mask", np.ones((8, 8), np.uint8))),
        [],
        ["/roi/aorta/mask", "16 x 16"],
    )


def mat_with_other_keys(p):
    p = p.with_suffix(".mat")
    savemat(p, {"img": np.zeros((4, 4)), "meta": np.ones(3)})
    return p, [], ["unknown MATLAB layout", "kdata", "img"]


def mat_random_bytes(p):
    p = p.with_suffix(".mat")
    p.write_bytes(b"MATLAB 5.0 MAT-file" + np.random.default_rng(1).bytes(300))
    return p, [], ["not a readable MATLAB file"]


def mat_k_in_radians(p):
    p = p.with_suffix(".mat")
    rng = np.random.default_rng(2)
    savemat(
        p,
        {
            "kdata": rng.random((32, 10, 2)) + 1j,
            "k": (rng.random((32, 10)) - 0.5) * 2 * np.pi * (1 + 1j),
        },
    )
    return p, [], ["k", "cycles/pixel"]


def mat73_huge_declared(p):
    p = p.with_suffix(".mat")
    with h5py.File(p, "w", userblock_size=512) as f:
        f.create_dataset("kdata", shape=(64, 2**20, 2**11), dtype=np.float32, chunks=(1, 64, 64))
        f["k"] = np.zeros((4, 4))
    return p, [], ["kdata", "too large"]


def unsupported_suffix(p):
    p = p.with_suffix(".dat")
    p.write_bytes(b"\0" * 64)
    return p, [], ["unsupported file type"]


def nonexistent(p):
    return p.with_name("does_not_exist.h5"), [], ["no such file"]


CASES = [
    truncated,
    random_bytes,
    empty_file,
    missing_kspace,
    kspace_is_a_group,
    wrong_rank,
    real_kspace,
    string_kspace,
    nan_kspace,
    inf_trajectory,
    all_zero_trajectory,
    one_spoke_angle,
    trajectory_in_cycles,
    trajectory_out_of_range,
    trajectory_wrong_shape,
    coil_maps_wrong_size,
    coil_count_mismatch,
    user_coil_maps_mismatch,
    zero_spokes,
    fewer_spokes_than_one_frame,
    reference_needs_more_spokes,
    missing_image_shape,
    huge_image_shape,
    negative_image_shape,
    huge_declared_kspace,
    wrong_format_version,
    format_version_text,
    spokes_per_frame_not_an_integer,
    all_zero_coil_maps,
    all_zero_kspace,
    negative_dcf,
    nan_dcf,
    dcf_wrong_length,
    roi_mask_wrong_size,
    mat_with_other_keys,
    mat_random_bytes,
    mat_k_in_radians,
    mat73_huge_declared,
    unsupported_suffix,
    nonexistent,
]


def _check(err: str, path: Path, expect: list[str], out: Path) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    line = lines[0]
    assert path.name in line, line
    for e in expect:
        assert e in line, f"{e!r} not in {line!r}"
    assert not out.exists()
    if out.parent.exists():
        assert not [
            q for q in out.parent.iterdir() if q.name.startswith(f".{out.name}")
        ]  # no temp left


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_recon_refuses_broken_input(case, tmp_path, capsys):
    path, args, expect, *named = case(tmp_path / "broken.h5")
    out = tmp_path / "out" / "recon.h5"
    rc = main(["recon", str(path), "--method", "nufft", "--out", str(out), "--quiet", *args])
    assert rc != 0
    _check(capsys.readouterr().err, named[0] if named else path, expect, out)


@pytest.mark.parametrize(
    "case",
    [truncated, missing_kspace, nan_kspace, huge_image_shape, mat_with_other_keys],
    ids=lambda c: c.__name__,
)
def test_info_refuses_broken_input(case, tmp_path, capsys):
    path, _, expect = case(tmp_path / "broken.h5")
    assert main(["info", str(path)]) != 0
    cap = capsys.readouterr()
    assert not cap.out
    _check(cap.err, path, expect, tmp_path / "none.h5")


def _dainr() -> str:
    exe = Path(sys.executable).with_name("dainr")
    return str(exe) if exe.exists() else "dainr"


@pytest.mark.parametrize("case", [random_bytes, coil_count_mismatch], ids=lambda c: c.__name__)
def test_installed_command_refuses_broken_input(case, tmp_path):
    path, args, expect = case(tmp_path / "broken.h5")
    out = tmp_path / "out.h5"
    p = subprocess.run(
        [_dainr(), "recon", str(path), "--method", "nufft", "--out", str(out), "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2, p.stderr
    assert p.stdout == ""
    _check(p.stderr, path, expect, out)
    assert p.stderr.startswith("dainr recon: error: ")


def test_eval_refuses_a_file_without_reference(tmp_path, capsys):
    k = _valid(tmp_path / "k.h5", reference=None)
    assert main(["eval", str(k), str(k)]) != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "/recon" in err and "k.h5" in err
