"""napari writer: *File › Save Layers* writes a reconstruction layer as the output ``.h5``.

The layer's metadata carries the :class:`dainr.Reconstruction` it shows (frames with
their phase, method, full config, wall time, memory, preparation settings), so the
file is the same one ``dainr recon`` writes; napari's own copy of the data holds only
magnitudes and is not used.
"""

from __future__ import annotations

import os
from typing import Any

from ._layers import RESULT, SOURCE


def write_result(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write the reconstruction of one image layer to ``path``; returns the paths written."""
    from dainr.io import write_recon_h5
    from dainr.result import Reconstruction

    metadata = meta.get("metadata") or {}
    result = metadata.get(RESULT)
    name = meta.get("name", "this layer")
    if not isinstance(result, Reconstruction):
        raise ValueError(
            f"{name!r} is not a DA-INR reconstruction (no result in its metadata): save it "
            "with another writer, e.g. as .tif"
        )
    if not str(path).lower().endswith((".h5", ".hdf5")):
        path = f"{path}.h5"
    # never over the k-space file the layer was made from
    write_recon_h5(path, result, input_path=metadata.get(SOURCE))
    return [os.fspath(path)]
