"""The reader: contract k-space, .mat layouts and reconstructions are ours; anything else is not."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from scipy.io import savemat

from dainr.io import write_recon_h5
from dainr.result import Reconstruction
from napari_dainr import _layers as L
from napari_dainr._reader import napari_get_reader


def test_contract_file_opens_as_gridding_preview(tiny_file, tiny_data):
    reader = napari_get_reader(str(tiny_file))
    assert callable(reader)
    [(data, kwargs, kind)] = reader(str(tiny_file))
    assert kind == "image"
    assert data.shape == (6, 32, 32) and data.dtype == np.float32
    meta = kwargs["metadata"]
    np.testing.assert_array_equal(meta[L.KSPACE].kspace, tiny_data.kspace)
    assert meta[L.SOURCE] == str(tiny_file)
    assert meta[L.SPOKES] == 13
    # The preview is the gridding baseline: the moving disc is brighter than the background.
    assert data[:, 16, 20].mean() > 2 * data[:, 2, 2].mean()


def test_reconstruction_output_opens_as_image(tmp_path):
    frames = (np.arange(3 * 8 * 8).reshape(3, 8, 8) * (1 + 1j)).astype(np.complex64)
    path = tmp_path / "out.h5"
    write_recon_h5(path, Reconstruction(frames, "dainr", {"steps": 3}, 13, upscale=2.0))
    [(data, kwargs, kind)] = napari_get_reader(str(path))(str(path))
    assert kind == "image"
    np.testing.assert_allclose(data, np.abs(frames))
    assert kwargs["metadata"][L.RESULT].method == "dainr"
    assert kwargs["name"] == "out [dainr]"
    # An r = 2 output of a 4 x 4 fit sits on the 4 x 4 grid in world coordinates.
    np.testing.assert_allclose(kwargs["scale"], (1.0, 0.5, 0.5))
    np.testing.assert_allclose(kwargs["translate"], (0.0, -0.25, -0.25))


def test_rendered_output_keeps_its_time_axis(tmp_path):
    frames = np.ones((5, 16, 16), np.complex64)
    attrs = {"frame_times": [0.0, 0.5, 1.0, 1.5, 2.0]}
    path = tmp_path / "between.h5"
    write_recon_h5(path, Reconstruction(frames, "dainr", {}, 13, attrs=attrs, upscale=2.0))
    [(_, kwargs, _)] = napari_get_reader(str(path))(str(path))
    np.testing.assert_allclose(kwargs["scale"], (0.5, 0.5, 0.5))
    np.testing.assert_allclose(kwargs["metadata"][L.FRAME_TIMES], attrs["frame_times"])


def test_cine_mat_layout_opens(tmp_path):
    from tests.conftest import gaussian_coils, moving_disc_series

    frames = moving_disc_series(32, 4)
    maps = gaussian_coils(3, 32)
    coil_images = frames[:, None] * maps[None]  # [F, C, ny, nx]
    path = tmp_path / "cine.mat"
    savemat(
        path, {"data": np.transpose(coil_images, (2, 3, 0, 1)), "b1": np.transpose(maps, (1, 2, 0))}
    )
    reader = napari_get_reader(str(path))
    assert reader is not None
    [(data, kwargs, _)] = reader(str(path))
    # one frame per cine frame, binned at the 13 golden-angle spokes per frame it was sampled with
    assert data.shape == (4, 32, 32) and kwargs["metadata"][L.SPOKES] == 13
    assert kwargs["metadata"][L.KSPACE].n_coils == 3


def _foreign_h5(path) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=np.zeros((2, 2)))


@pytest.mark.parametrize(
    "name, write",
    [
        ("other.h5", _foreign_h5),
        ("text.h5", lambda p: p.write_text("not hdf5")),
        ("broken.mat", lambda p: p.write_bytes(b"MATLAB 5.0 garbage" * 10)),
        ("other.mat", lambda p: savemat(p, {"x": np.zeros(3)})),
        ("picture.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n")),
    ],
)
def test_foreign_files_are_not_ours(tmp_path, name, write):
    path = tmp_path / name
    write(path)
    assert napari_get_reader(str(path)) is None


def test_missing_file_and_directory_are_not_ours(tmp_path):
    assert napari_get_reader(str(tmp_path / "nothing.h5")) is None
    assert napari_get_reader(str(tmp_path)) is None
    assert napari_get_reader([]) is None


@pytest.mark.gui
def test_viewer_opens_kspace_through_the_plugin(make_napari_viewer_proxy, tiny_file):
    viewer = make_napari_viewer_proxy()
    layers = viewer.open(str(tiny_file), plugin="napari-dainr")
    assert len(layers) == 1
    assert L.KSPACE in layers[0].metadata
    assert layers[0].name == "tiny (gridding)"
