"""The dock's volume mode: a 4-D ISMRMRD input fitted slice by slice through Dask."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import FIT_TIMEOUT_MS

pytestmark = pytest.mark.gui


@pytest.fixture
def volume_file(tmp_path):
    from dainr.simulate.ismrmrd_writer import simulate_dce_volume, write_ismrmrd

    p = tmp_path / "vol.mrd"
    write_ismrmrd(
        p, simulate_dce_volume(3, size=24, frames=3, coils=3, spokes_per_frame=10, seed=1)
    )
    return p


@pytest.fixture
def thread_scheduler():
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    )
    yield cluster.scheduler_address
    cluster.close()


def test_volume_fills_the_4d_layer_slice_by_slice(
    make_napari_viewer_proxy, qtbot, volume_file, thread_scheduler
):
    from napari_dainr._reader import read_file
    from napari_dainr._widget import ReconstructionWidget

    viewer = make_napari_viewer_proxy()
    data, kwargs, _ = read_file(volume_file)
    assert data.ndim == 4
    viewer.add_image(data, **kwargs)
    widget = ReconstructionWidget(viewer)
    widget.settings.method_box.value = "nufft"
    panel = widget.volume
    panel.slices.setText("0,2")
    panel.scheduler.setText(thread_scheduler)
    from dainr.volume import SliceResult

    filled = []  # after each finished slice: how many slices of the layer hold data
    assert panel.fit()
    panel._worker.yielded.connect(  # after the panel's own handler
        lambda ev: (
            isinstance(ev, SliceResult)
            and filled.append(sum(np.abs(panel.layer.data[:, i]).max() > 0 for i in range(2)))
        )
    )
    qtbot.waitUntil(lambda: not panel.running, timeout=FIT_TIMEOUT_MS)
    layer = panel.layer
    assert layer.data.shape == (3, 2, 24, 24) and layer.metadata["dainr_slices"] == [0, 2]
    assert layer.scale[1] == pytest.approx(kwargs["scale"][1])
    assert filled == [1, 2]  # filled slice by slice as results arrived
    assert panel.progress.value() == 2
