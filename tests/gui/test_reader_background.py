"""A large k-space file opens at once; its gridding preview arrives from a worker."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_dainr import _layers as L
from napari_dainr import _reader


@pytest.mark.gui
def test_large_file_opens_before_its_preview_is_ready(
    make_napari_viewer_proxy, tiny_file, qtbot, monkeypatch
):
    real_preview = _reader.gridding_preview
    release = threading.Event()  # the preview "takes" until the test says it is done
    ran_on = []

    def slow_preview(*args, **kwargs):
        ran_on.append(threading.current_thread() is threading.main_thread())
        release.wait(timeout=30)
        return real_preview(*args, **kwargs)

    monkeypatch.setattr(_reader, "gridding_preview", slow_preview)
    monkeypatch.setattr(_reader, "BACKGROUND_PREVIEW_WORK", 0)  # the tiny file counts as large
    viewer = make_napari_viewer_proxy()
    [layer] = viewer.open(str(tiny_file), plugin="napari-dainr")
    # the open returned while the preview was still being computed
    assert not release.is_set()
    assert layer.data.shape == (6, 32, 32) and not layer.data.any()  # the preview's shape, empty
    assert L.KSPACE in layer.metadata  # already fittable from the dock
    release.set()
    qtbot.waitUntil(lambda: layer.data.any(), timeout=60_000)
    assert ran_on == [False]  # on a worker thread, not the viewer's
    # the worker's preview is the gridding baseline: the moving disc outshines the background
    assert layer.data[:, 16, 20].mean() > 2 * layer.data[:, 2, 2].mean()
    assert layer.contrast_limits[1] > 0
    assert layer.metadata[L.RESULT].frames.shape == (6, 32, 32)


def test_preview_work_grows_with_the_file(tiny_data):
    small = _reader.preview_work(tiny_data)
    assert small < _reader.BACKGROUND_PREVIEW_WORK  # tests and scripts keep the in-place path
    # a 384 x 384, 12-coil, 600-spoke acquisition without coil maps
    big = type(tiny_data)(
        np.zeros((12, 600, 768), np.complex64), np.zeros((600, 768, 2), np.float32), (384, 384)
    )
    assert _reader.preview_work(big) > _reader.BACKGROUND_PREVIEW_WORK
