"""The contract ``.h5`` round trip and the two MATLAB layouts, v5 and v7.3."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from scipy.io import savemat

from dainr.cli import main
from dainr.data import KSpaceData
from dainr.errors import InputError
from dainr.io import (
    atomic_h5,
    is_kspace_file,
    is_recon_file,
    load_kspace,
    read_kspace_h5,
    read_mat,
    read_recon_h5,
    write_kspace_h5,
    write_recon_h5,
)
from dainr.io.matlab import mat_variable_names
from dainr.result import Reconstruction
from dainr.simulate.acquire import acquire_series

from .conftest import gaussian_coils, moving_disc_series

# ----------------------------------------------------------------------- contract .h5


def test_round_trip_keeps_arrays_and_every_attribute(tmp_path, tiny_data):
    d = tiny_data
    d.dcf = np.random.default_rng(0).random(d.trajectory.shape[:2]).astype(np.float32)
    d.attrs.update(description="a test", tr_ms=3.1, flips=[5, 10, 15], site={"name": "x", "n": 2})
    d.extra["notes/scanner_table"] = np.arange(5, dtype=np.int16)
    p = tmp_path / "k.h5"
    write_kspace_h5(p, d)
    assert is_kspace_file(p) and not is_recon_file(p)
    back = read_kspace_h5(p)
    np.testing.assert_array_equal(back.kspace, d.kspace)
    np.testing.assert_array_equal(back.trajectory, d.trajectory)
    np.testing.assert_array_equal(back.coil_maps, d.coil_maps)
    np.testing.assert_array_equal(back.reference, d.reference)
    np.testing.assert_array_equal(back.dcf, d.dcf)
    np.testing.assert_array_equal(back.extra["notes/scanner_table"], np.arange(5))
    assert back.image_shape == (32, 32) and back.source == str(p)
    assert back.attrs["description"] == "a test" and back.attrs["tr_ms"] == pytest.approx(3.1)
    assert back.attrs["flips"] == [5, 10, 15]
    assert back.attrs["site"] == '{"name": "x", "n": 2}'  # nested values travel as JSON
    assert back.attrs["spokes_per_frame"] == 13
    assert "image_shape" not in back.attrs and "format_version" not in back.attrs
    with h5py.File(p) as f:
        assert f["kspace"].dtype == np.complex64 and f["trajectory"].dtype == np.float32
        assert f.attrs["format_version"] == 1 and list(f.attrs["image_shape"]) == [32, 32]


def test_compressed_write_reads_back_the_same(tmp_path, tiny_data):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    write_kspace_h5(a, tiny_data)
    write_kspace_h5(b, tiny_data, compress=True)
    with h5py.File(b) as f:
        assert f["kspace"].compression == "gzip"
    np.testing.assert_array_equal(read_kspace_h5(a).kspace, read_kspace_h5(b).kspace)


def test_unknown_attributes_reach_the_reconstruction_output(tmp_path, tiny_data):
    tiny_data.attrs.update(site="hospital A", tr_ms=2.5)
    p, out = tmp_path / "k.h5", tmp_path / "r.h5"
    write_kspace_h5(p, tiny_data)
    assert main(["recon", str(p), "--method", "nufft", "--out", str(out), "--quiet"]) == 0
    r = read_recon_h5(out)
    assert r.attrs["site"] == "hospital A" and r.attrs["tr_ms"] == pytest.approx(2.5)
    assert r.method == "nufft" and r.frames.shape == (6, 32, 32)


def test_recon_round_trip(tmp_path):
    frames = (np.random.default_rng(1).random((3, 8, 8)) * (1 + 1j)).astype(np.complex64)
    rec = Reconstruction(
        frames,
        "nufft",
        {"steps": 3},
        13,
        seconds=1.5,
        peak_memory_bytes=10,
        partial=True,
        steps_done=7,
        loss_history=[3.0, 2.0],
        attrs={"phantom": "x"},
    )
    p = tmp_path / "r.h5"
    write_recon_h5(p, rec)
    back = read_recon_h5(p)
    np.testing.assert_array_equal(back.frames, frames)
    assert (back.method, back.config, back.spokes_per_frame, back.partial, back.steps_done) == (
        "nufft",
        {"steps": 3},
        13,
        True,
        7,
    )
    assert (
        back.loss_history == [3.0, 2.0]
        and back.attrs["phantom"] == "x"
        and "versions" in back.attrs
    )


def test_writes_are_atomic(tmp_path, tiny_data):
    p = tmp_path / "k.h5"
    with pytest.raises(RuntimeError, match="fault in the middle"), atomic_h5(p) as f:
        f["x"] = np.zeros(3)
        raise RuntimeError("fault in the middle of a write")
    assert not p.exists() and not list(tmp_path.iterdir())
    write_kspace_h5(p, tiny_data)
    before = p.read_bytes()
    tiny_data.extra["kspace"] = np.zeros(2)  # would replace a contract dataset
    with pytest.raises(ValueError, match=r"extra datasets \['kspace'\] would replace"):
        write_kspace_h5(p, tiny_data)
    assert p.read_bytes() == before and len(list(tmp_path.iterdir())) == 1


def test_output_never_replaces_the_input(tmp_path, tiny_data):
    p = tmp_path / "k.h5"
    write_kspace_h5(p, tiny_data)
    rec = Reconstruction(np.zeros((1, 4, 4), np.complex64), "nufft", {}, 13)
    with pytest.raises(InputError, match="refusing to write the output over the input"):
        write_recon_h5(p, rec, input_path=p)
    assert is_kspace_file(p)


def test_oversized_unknown_datasets_stay_unread(tmp_path, tiny_data):
    p = tmp_path / "k.h5"
    write_kspace_h5(p, tiny_data)
    with h5py.File(p, "a") as f:
        f.create_dataset(
            "vendor/raw_dump", shape=(2**25,), dtype=np.float32, chunks=(1024,)
        )  # never written
        f["vendor/small"] = np.ones(4)
    back = read_kspace_h5(p)
    assert "vendor/raw_dump" not in back.extra and "vendor/small" in back.extra


# ----------------------------------------------------------------------------- MATLAB


def write_mat73(path, variables: dict[str, np.ndarray]) -> None:
    """An HDF5 file laid out as MATLAB's ``save -v7.3`` writes one.

    MATLAB is column-major, so HDF5 sees every array with its axes reversed; complex
    arrays are a compound {real, imag}; a 512-byte user block holds the MAT header; cell
    arrays live under ``#refs#`` and every dataset names its ``MATLAB_class``.
    """
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, a in variables.items():
            a = np.asarray(a)
            single = a.dtype in (np.float32, np.complex64)
            t = np.ascontiguousarray(a.T)
            if np.iscomplexobj(t):
                part = "<f4" if single else "<f8"
                c = np.empty(t.shape, np.dtype([("real", part), ("imag", part)]))
                c["real"], c["imag"] = t.real, t.imag
                t = c
            ds = f.create_dataset(name, data=t)
            ds.attrs["MATLAB_class"] = np.bytes_("single" if single else "double")
        f.create_group("#refs#").create_dataset("a", data=np.zeros(2))
        note = f.create_dataset(
            "note", data=np.frombuffer("radial".encode("utf-16-le"), np.uint16)[:, None]
        )
        note.attrs["MATLAB_class"] = np.bytes_("char")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116) + b"\0" * 8 + b"\x00\x02" + b"IM")


def save_mat(path, variables: dict, version: str) -> None:
    if version == "v5":
        savemat(path, variables)
    else:
        write_mat73(path, variables)


def grasp_variables(d: KSpaceData, with_b1: bool = True) -> dict:
    """The GRASP liver demo's layout of ``d``: [readout, spokes, coils], k in cycles/pixel."""
    v = {
        "kdata": d.kspace.transpose(2, 1, 0),
        "k": ((d.trajectory[..., 1] + 1j * d.trajectory[..., 0]) / (2 * np.pi)).T,
    }
    if d.dcf is not None:
        v["w"] = d.dcf.T
    if with_b1:
        v["b1"] = d.coil_maps.transpose(1, 2, 0)
    return v


@pytest.mark.parametrize("version", ["v5", "v7.3"])
def test_grasp_layout(tmp_path, tiny_data, version):
    d = tiny_data
    d.dcf = np.abs(d.trajectory).sum(-1).astype(np.float32)
    p = tmp_path / "grasp.mat"
    save_mat(p, grasp_variables(d), version)
    assert set(mat_variable_names(p)) >= {"kdata", "k", "w", "b1"}
    back = load_kspace(p)
    np.testing.assert_allclose(back.kspace, d.kspace, rtol=1e-6)
    np.testing.assert_allclose(back.trajectory, d.trajectory, atol=1e-5)
    np.testing.assert_allclose(back.dcf, d.dcf, rtol=1e-6)
    np.testing.assert_allclose(back.coil_maps, d.coil_maps, rtol=1e-6)
    assert back.image_shape == (32, 32) and back.attrs["source_layout"] == "grasp-mat"
    assert back.n_spokes == 78 and back.n_readout == 64
    # Without b1 the matrix is half the (two-fold oversampled) readout.
    p2 = tmp_path / "nob1.mat"
    save_mat(p2, grasp_variables(d, with_b1=False), version)
    back2 = load_kspace(p2)
    assert back2.image_shape == (32, 32) and back2.coil_maps is None


@pytest.mark.parametrize("version", ["v5", "v7.3"])
def test_grasp_single_coil_without_the_trailing_axis(tmp_path, version):
    d = acquire_series(moving_disc_series(16, 2), np.ones((1, 16, 16), np.complex64), 5)
    v = grasp_variables(d)
    v["kdata"], v["b1"] = v["kdata"][..., 0], v["b1"][..., 0]  # what MATLAB saves for one coil
    p = tmp_path / "one.mat"
    save_mat(p, v, version)
    back = load_kspace(p)
    assert back.kspace.shape == (1, 10, 32) and back.coil_maps.shape == (1, 16, 16)
    np.testing.assert_allclose(back.kspace, d.kspace, rtol=1e-6)


@pytest.mark.parametrize("version", ["v5", "v7.3"])
def test_cine_layout_is_sampled_on_load(tmp_path, version):
    frames = moving_disc_series(32, 4)
    maps = gaussian_coils(3, 32)
    coil_images = frames[:, None] * maps[None]  # [F, C, ny, nx]
    p = tmp_path / "cine.mat"
    save_mat(p, {"data": coil_images.transpose(2, 3, 0, 1), "b1": maps.transpose(1, 2, 0)}, version)
    d = read_mat(p, spokes_per_frame=7)
    assert d.kspace.shape == (3, 28, 64) and d.spokes_per_frame == 7
    np.testing.assert_allclose(d.reference, frames, atol=1e-5)  # maps are RSS-normalised
    np.testing.assert_allclose(d.coil_maps, maps, rtol=1e-6)
    same = acquire_series(frames, maps, 7)
    np.testing.assert_allclose(
        d.kspace, same.kspace, rtol=1e-4, atol=1e-4 * np.abs(same.kspace).max()
    )
    assert d.attrs["source_layout"] == "cine-mat"
    # Through the CLI with another binning chosen at load time.
    out = tmp_path / "r.h5"
    assert (
        main(
            [
                "recon",
                str(p),
                "--method",
                "nufft",
                "--spokes-per-frame",
                "5",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert read_recon_h5(out).frames.shape == (4, 32, 32)


def test_mat_variable_names_do_not_read_values(tmp_path):
    p = tmp_path / "big.mat"
    with h5py.File(p, "w", userblock_size=512) as f:
        f.create_dataset("kdata", shape=(4, 2**20, 2**11), dtype=np.float32, chunks=(1, 64, 64))
    assert mat_variable_names(p) == {"kdata": (2**11, 2**20, 4)}
