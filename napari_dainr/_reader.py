"""napari reader: radial k-space files open as a gridding preview, reconstructions as images.

``napari_get_reader`` only looks at a file's names (datasets, MATLAB variables) and
returns ``None`` for anything that is not ours, so other readers get their turn. A file
that is ours but broken raises the engine's one-line :class:`dainr.InputError` when
read, which napari shows as a notification.

The check reads names with h5py (scipy for MATLAB v5) and imports no torch: napari asks
every reader about every ``.h5``/``.mat`` a user opens. A large k-space file opens at
once as an empty layer of the right shape, which a worker thread fills with the
gridding preview (seconds to tens of seconds for 384 x 384 x 12 coils), so that the
viewer never freezes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dainr.io import KSPACE_SUFFIXES, is_kspace_file, is_recon_file, mat_layout
from dainr.io.ismrmrd import is_ismrmrd_file
from dainr.io.matlab import mat_variable_names
from dainr.io.volume_output import is_volume_recon

from ._layers import gridding_preview, kspace_layer, preview_layer, result_layer, stem_name

log = logging.getLogger(__name__)

LayerData = tuple[Any, dict[str, Any], str]
ReaderFunction = Callable[[str | list[str]], list[LayerData]]

#: gridding work (see :func:`preview_work`) above which a viewer gets the preview from a
#: worker; below it the preview takes well under a second and is computed in place
BACKGROUND_PREVIEW_WORK = 20_000_000


def file_kind(path: str | os.PathLike) -> str | None:
    """``"kspace"``, ``"recon"``, ``"raw"`` (ISMRMRD or BART: possibly a volume),
    ``"volume-recon"`` or None (not ours); never raises."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".cfl", ".hdr"):  # BART k-space: a .cfl/.hdr pair with its trajectory beside
        return "raw" if _is_bart_kspace(p) else None
    if suffix not in (*KSPACE_SUFFIXES, ".mrd") or not p.is_file():
        return None
    try:
        if suffix != ".mat" and is_ismrmrd_file(p) and not is_kspace_file(p):
            return "raw"
        if suffix in (".h5", ".hdf5") and is_volume_recon(p):
            return "volume-recon"
        if suffix == ".mat":
            return "kspace" if mat_layout(mat_variable_names(p)) is not None else None
        if is_kspace_file(p):
            return "kspace"
        if is_recon_file(p):
            return "recon"
    except Exception as e:  # a foreign or damaged file is simply not ours
        log.debug("%s is not a napari-dainr file: %s", p, e)
    return None


def _is_bart_kspace(p: Path) -> bool:
    from dainr.errors import InputError
    from dainr.io.cfl import find_trajectory

    if not (p.with_suffix(".cfl").is_file() and p.with_suffix(".hdr").is_file()):
        return False
    try:
        return find_trajectory(p).with_suffix(".cfl") != p.with_suffix(".cfl")
    except InputError:
        return False


def napari_get_reader(path: str | list[str]) -> ReaderFunction | None:
    """The reader for ``path`` if it is a k-space file or a reconstruction output, else None."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths or any(file_kind(p) is None for p in paths):
        return None
    return read_files


def read_files(path: str | list[str]) -> list[LayerData]:
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    return [read_file(p) for p in paths]


def read_file(path: str | os.PathLike) -> LayerData:
    """One layer for one file: a k-space preview or a reconstruction."""
    kind = file_kind(path)
    if kind in ("raw", "volume-recon"):
        return _read_volume(path, kind)
    if kind == "recon":
        from dainr.io import read_recon_h5

        result = read_recon_h5(path)
        return result_layer(result, f"{stem_name(path)} [{result.method}]")
    from dainr.io import load_kspace

    data = load_kspace(path)
    viewer = _current_viewer()
    if viewer is None or preview_work(data) < BACKGROUND_PREVIEW_WORK:
        return preview_layer(data, stem_name(path), source=path)
    return _background_preview(viewer, data, stem_name(path), path)


def _read_volume(path, kind: str) -> LayerData:
    """Raw input (ISMRMRD, BART) as a 4-D (frame, slice, y, x) gridding preview; volume
    outputs as 4-D."""
    from dainr.io.volume_output import read_volume_recon
    from dainr.volume import load_volume

    from ._volume import volume_preview_layer, volume_result_layer

    if kind == "volume-recon":
        return volume_result_layer(read_volume_recon(path), stem_name(path))
    return volume_preview_layer(load_volume(path), stem_name(path), source=path)


def preview_work(data) -> int:
    """Rough cost of a gridding preview: spreading every sample and one oversampled FFT per
    coil and frame, plus a coil-map estimate (a small eigenproblem per pixel) if the file
    has none."""
    ny, nx = data.image_shape
    n_frames = max(1, data.n_spokes // data.default_spokes_per_frame())
    work = data.n_coils * (data.kspace[0].size + n_frames * 4 * ny * nx)
    if data.coil_maps is None:
        work += ny * nx * data.n_coils**2
    return int(work)


def _current_viewer():
    """The viewer a GUI open happens in, or None (scripts, tests: compute in place)."""
    import sys

    if "napari" not in sys.modules:  # nobody can be viewing: do not import napari here
        return None
    import napari

    return napari.current_viewer()


def _background_preview(viewer, data, name: str, path) -> LayerData:
    """A zero-filled layer of the preview's shape now; the gridding preview when it is ready."""
    import numpy as np
    from napari.qt.threading import create_worker
    from napari.utils.notifications import show_error, show_info

    from dainr.physics.binning import plan_binning
    from dainr.result import Reconstruction

    spf = data.default_spokes_per_frame()
    n_frames = plan_binning(data.n_spokes, spf, data.source).n_frames
    empty = Reconstruction(np.zeros((n_frames, *data.image_shape), np.complex64), "nufft", {}, spf)
    layer_data = kspace_layer(data, empty, f"{name} (gridding)", path)
    show_info(f"{name}: computing the gridding preview in the background")

    def fill(preview) -> None:
        # the reader returns before napari adds its layer; the worker's signal arrives
        # through the event loop, after the layer exists
        from napari_dainr import _layers as L

        for layer in viewer.layers:
            # the dock may have re-binned the layer meanwhile: its own preview then stands
            if layer.metadata.get(L.KSPACE) is data and layer.metadata.get(L.SPOKES) == spf:
                mag = np.abs(preview.frames).astype(np.float32)
                layer.metadata[L.RESULT] = preview
                layer.data = mag
                layer.contrast_limits_range = L.display_limits(mag)
                layer.contrast_limits = L.display_limits(mag)
                return
        log.info("%s: the preview's layer was closed before the preview was ready", name)

    worker = create_worker(gridding_preview, data, spf)
    worker.returned.connect(fill)
    worker.errored.connect(lambda e: show_error(f"{name}: gridding preview failed: {e}"))
    worker.start()
    return layer_data
