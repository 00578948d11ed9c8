"""BART .cfl/.hdr input: layout, frames in dimension 10, orientation against BART itself."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from dainr.errors import InputError
from dainr.io import load_kspace
from dainr.io.cfl import read_bart, read_cfl, write_cfl
from dainr.prepare import prepare_series
from tests.conftest import make_phantom_data


def bart_pair(data, base, frames: int = 1):
    """A contract KSpaceData as BART arrays: k [1, R, S, C, ..., F (dim 10)], traj [3, R, S, ...]."""
    ny, nx = data.image_shape
    C, S_all, R = data.kspace.shape
    S = S_all // frames
    k = data.kspace[:, : S * frames].reshape(C, frames, S, R).transpose(3, 2, 0, 1)  # [R, S, C, F]
    k16 = np.zeros((1, R, S, C, 1, 1, 1, 1, 1, 1, frames), np.complex64)
    k16[0, :, :, :, 0, 0, 0, 0, 0, 0, :] = k
    t = data.trajectory[: S * frames].reshape(frames, S, R, 2)
    t16 = np.zeros((3, R, S, 1, 1, 1, 1, 1, 1, 1, frames), np.complex64)
    t16[0, ..., 0, 0, 0, 0, 0, 0, 0, :] = (t[..., 1] * nx / (2 * np.pi)).transpose(
        2, 1, 0
    )  # kx in 1/FOV
    t16[1, ..., 0, 0, 0, 0, 0, 0, 0, :] = (t[..., 0] * ny / (2 * np.pi)).transpose(2, 1, 0)
    write_cfl(base, k16)
    write_cfl(str(base) + "_traj", t16)


def test_round_trip_of_an_array(tmp_path):
    a = (np.arange(24) + 1j).reshape(2, 3, 4).astype(np.complex64)
    write_cfl(tmp_path / "a", a)
    back = read_cfl(tmp_path / "a.cfl")
    assert back.shape == (2, 3, 4) + (1,) * 13
    np.testing.assert_array_equal(back.reshape(2, 3, 4), a)
    # column-major on disk, as BART writes it: the first axis varies fastest
    assert np.fromfile(tmp_path / "a.cfl", np.complex64)[1] == a[1, 0, 0]


@pytest.mark.parametrize("frames", [1, 3])
def test_bart_pair_reads_as_the_same_data(tmp_path, frames):
    data = make_phantom_data(n=32, n_frames=6, n_coils=3, spokes_per_frame=13)
    bart_pair(data, tmp_path / "ks", frames)
    d = load_kspace(tmp_path / "ks.cfl")
    n = (data.n_spokes // frames) * frames
    assert d.image_shape == (32, 32)
    np.testing.assert_allclose(d.kspace, data.kspace[:, :n], atol=1e-6)
    np.testing.assert_allclose(d.trajectory, data.trajectory[:n], atol=1e-5)
    if frames > 1:
        assert d.attrs["spokes_per_frame"] == data.n_spokes // frames


@pytest.mark.skipif(shutil.which("bart") is None, reason="bart not installed")
def test_orientation_and_sign_match_bart(tmp_path):
    """BART's own forward NUFFT of an asymmetric image grids back to that image, transposed."""
    im = np.zeros((64, 64), np.complex64)  # BART [x, y]
    im[10:20, 15:45] = 1
    im[40:44, 35:38] = 2j
    write_cfl(tmp_path / "img", im[:, :, None])
    run = lambda *a: subprocess.run(["bart", *a], check=True, capture_output=True, cwd=tmp_path)  # noqa: E731
    run("traj", "-x", "64", "-y", "201", "-r", "-G", "-o", "2", "t")
    run("nufft", "t", "img", "k")
    vol = read_bart(tmp_path / "k", tmp_path / "t")
    d = vol.slice(0)
    d.coil_maps = np.ones((1, 64, 64), np.complex64)
    p = prepare_series(d, 201, device="cpu")
    g = p.gridding[0].numpy()
    ref = im.T
    c = np.vdot(ref.ravel(), g.ravel()) / np.linalg.norm(ref) / np.linalg.norm(g)
    assert abs(c) > 0.98 and abs(np.angle(c)) < 0.05  # same orientation, same sign of i
    for wrong in (im, ref[::-1], ref[:, ::-1]):
        assert (
            abs(np.vdot(wrong.ravel(), g.ravel())) / np.linalg.norm(wrong) / np.linalg.norm(g) < 0.9
        )


def test_missing_trajectory_and_truncated_data_are_one_line_errors(tmp_path):
    write_cfl(tmp_path / "k", np.ones((1, 8, 4, 2), np.complex64))
    with pytest.raises(InputError, match="no trajectory") as e:
        load_kspace(tmp_path / "k.cfl")
    assert "\n" not in str(e.value) and "k.cfl" in str(e.value)
    write_cfl(tmp_path / "k_traj", np.zeros((3, 8, 4), np.complex64))
    (tmp_path / "k.cfl").write_bytes((tmp_path / "k.cfl").read_bytes()[:-16])
    with pytest.raises(InputError, match="truncated"):
        load_kspace(tmp_path / "k.cfl")
    write_cfl(tmp_path / "cart", np.ones((8, 8, 1, 2), np.complex64))
    write_cfl(tmp_path / "cart_traj", np.zeros((3, 8, 8), np.complex64))
    with pytest.raises(InputError, match="non-Cartesian"):
        load_kspace(tmp_path / "cart.cfl")


def test_napari_opens_a_bart_pair_as_a_raw_volume(tmp_path):
    from napari_dainr._reader import file_kind, napari_get_reader

    data = make_phantom_data(n=24, n_frames=3, n_coils=2, spokes_per_frame=8)
    bart_pair(data, tmp_path / "k", frames=3)  # frames in dimension 10: 8 spokes each
    assert file_kind(tmp_path / "k.cfl") == "raw" and file_kind(tmp_path / "k.hdr") == "raw"
    assert file_kind(tmp_path / "k_traj.cfl") is None  # a trajectory is not k-space
    layer, meta, kind = napari_get_reader(str(tmp_path / "k.cfl"))(str(tmp_path / "k.cfl"))[0]
    assert kind == "image" and layer.shape == (3, 1, 24, 24)
    assert meta["metadata"]["dainr_volume"].n_spokes == data.n_spokes
