"""Sample data opens as k-space layers that the reconstruction widget can fit right away."""

from __future__ import annotations

import pytest

from napari_dainr import _layers as L
from napari_dainr._roi_widget import RoiCurvesWidget
from napari_dainr._widget import ReconstructionWidget

pytestmark = pytest.mark.gui


@pytest.mark.parametrize(
    "key, name, shape, spokes",
    [
        ("cardiac", "cardiac phantom (gridding)", (16, 96, 96), (208, 13)),
        ("dce", "DCE sample (gridding)", (16, 96, 96), (544, 34)),
    ],
)
def test_sample_opens_as_fittable_kspace(make_napari_viewer_proxy, key, name, shape, spokes):
    viewer = make_napari_viewer_proxy()
    layers = viewer.open_sample("napari-dainr", key)
    assert [x.name for x in layers] == [name]
    layer = layers[0]
    data = layer.metadata[L.KSPACE]
    assert layer.data.shape == shape and tuple(data.image_shape) == shape[1:]
    assert (data.n_spokes, layer.metadata[L.SPOKES]) == spokes  # (in the file, per frame)
    widget = ReconstructionWidget(viewer)
    assert widget.inputs.layer.name == name  # ready to fit


def test_dce_sample_places_its_stored_ao_and_pv(make_napari_viewer_proxy):
    viewer = make_napari_viewer_proxy()
    viewer.open_sample("napari-dainr", "dce")
    widget = RoiCurvesWidget(viewer)
    assert widget.add_stored_rois() == 2
    curves = widget.update_curves()
    assert [c.roi for c in curves] == ["AO", "PV"]
    assert all(len(c.values) == 16 for c in curves)
    # The aorta's first pass makes its curve rise well above its first frame.
    ao = curves[0].values
    assert ao.max() > 1.5 * ao[0]
