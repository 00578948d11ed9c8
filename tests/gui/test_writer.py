"""File › Save Layers writes a reconstruction layer as the same .h5 that ``dainr recon`` writes."""

from __future__ import annotations

import numpy as np
import pytest

from dainr.io import read_recon_h5
from dainr.result import Reconstruction
from napari_dainr._layers import result_layer


@pytest.mark.gui
def test_save_layers_writes_the_output_contract(make_napari_viewer_proxy, tmp_path):
    frames = (np.arange(3 * 8 * 8).reshape(3, 8, 8) * (1 - 2j)).astype(np.complex64)
    result = Reconstruction(
        frames,
        "dainr",
        {"steps": 7},
        13,
        seconds=1.5,
        attrs={"preparation": '{"dcf": "ramp"}'},
    )
    viewer = make_napari_viewer_proxy()
    data, kwargs, _ = result_layer(result, "fit [dainr]")
    viewer.add_image(data, **kwargs)
    out = tmp_path / "saved.h5"
    # no plugin named: napari picks the writer by extension, as the menu does
    written = viewer.layers.save(str(out), selected=False)
    assert written == [str(out)]
    back = read_recon_h5(out)
    np.testing.assert_array_equal(back.frames, frames)  # complex, not the layer's magnitudes
    assert back.method == "dainr" and back.config == {"steps": 7}
    assert back.seconds == 1.5 and back.spokes_per_frame == 13


@pytest.mark.gui
def test_a_plain_image_is_refused_with_a_reason(tmp_path):
    from napari_dainr._writer import write_result

    with pytest.raises(ValueError, match="'picture' is not a DA-INR reconstruction"):
        write_result(str(tmp_path / "x.h5"), np.zeros((2, 2)), {"name": "picture", "metadata": {}})
    assert not (tmp_path / "x.h5").exists()
