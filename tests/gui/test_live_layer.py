"""The layer a fit streams into: naming, placement over its input, contrast, the std layer."""

from __future__ import annotations

import numpy as np
import pytest

from dainr.result import Reconstruction
from napari_dainr import _layers as L
from napari_dainr._live_layer import LiveResultLayer

pytestmark = pytest.mark.gui


@pytest.fixture
def viewer_input(make_napari_viewer_proxy):
    viewer = make_napari_viewer_proxy()
    src = viewer.add_image(
        np.ones((3, 8, 8), np.float32),
        name="scan (gridding)",
        scale=(1.0, 2.0, 2.0),
        translate=(0.0, 10.0, -4.0),
        contrast_limits=(0.0, 5.0),
    )
    return viewer, src


def frames(value: float) -> np.ndarray:
    return np.full((3, 8, 8), value, np.complex64)


def test_one_layer_named_after_the_input_placed_over_it(viewer_input):
    viewer, src = viewer_input
    live = LiveResultLayer(viewer, src, "dainr", 13)
    layer = live.show(frames(1.0))
    assert live.show(frames(2.0)) is layer and live.shown == 2
    assert [x.name for x in viewer.layers] == ["scan (gridding)", "scan [dainr]"]
    np.testing.assert_array_equal(layer.data, np.full((3, 8, 8), 2.0, np.float32))
    for px in [(0, 0, 0), (2, 7, 3)]:
        np.testing.assert_allclose(layer.data_to_world(px), src.data_to_world(px))
    assert tuple(layer.contrast_limits) == (0.0, 5.0)  # the input's, set once


def test_a_result_with_std_gets_its_own_layer(viewer_input):
    viewer, src = viewer_input
    live = LiveResultLayer(viewer, src, "dainr", 13)
    live.show(frames(1.0))
    result = Reconstruction(frames(1.0), "dainr", {}, 13)
    std = np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)
    result.std = std  # an ensemble's per-pixel standard deviation series
    live.finish(result)
    std_layer = viewer.layers["scan [dainr] [std]"]
    np.testing.assert_allclose(std_layer.data, std, rtol=1e-6)
    assert std_layer.metadata[L.RESULT] is result
    np.testing.assert_allclose(std_layer.data_to_world((1, 4, 4)), src.data_to_world((1, 4, 4)))
    assert viewer.layers["scan [dainr]"].metadata[L.RESULT] is result


def test_a_result_without_std_adds_no_layer(viewer_input):
    viewer, src = viewer_input
    live = LiveResultLayer(viewer, src, "nufft", 13)
    live.show(frames(1.0))
    live.finish(Reconstruction(frames(1.0), "nufft", {}, 13))
    assert [x.name for x in viewer.layers] == ["scan (gridding)", "scan [nufft]"]
