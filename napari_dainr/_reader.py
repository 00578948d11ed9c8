"""napari reader: radial k-space files open as a gridding preview, reconstructions as images.

``napari_get_reader`` only looks at a file's names (datasets, MATLAB variables) and
returns ``None`` for anything that is not ours, so other readers get their turn. A file
that is ours but broken raises the engine's one-line :class:`dainr.InputError` when
read, which napari shows as a notification.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dainr.io import KSPACE_SUFFIXES, is_kspace_file, is_recon_file, mat_layout
from dainr.io.matlab import mat_variable_names

from ._layers import preview_layer, result_layer, stem_name

log = logging.getLogger(__name__)

LayerData = tuple[Any, dict[str, Any], str]
ReaderFunction = Callable[[str | list[str]], list[LayerData]]



def file_kind(path: str | os.PathLike) -> str | None:
    """``"kspace"``, ``"recon"`` or None (not ours); never raises."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in KSPACE_SUFFIXES or not p.is_file():
        return None
    try:
        if suffix == ".mat":
            return "kspace" if mat_layout(mat_variable_names(p)) is not None else None
        if is_kspace_file(p):
            return "kspace"
        if is_recon_file(p):
            return "recon"
    except Exception as e:  # a foreign or damaged file is simply not ours
        log.debug("%s is not a napari-dainr file: %s", p, e)
    return None


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
    if kind == "recon":
        from dainr.io import read_recon_h5

        result = read_recon_h5(path)
        return result_layer(result, f"{stem_name(path)} [{result.method}]")
    from dainr.io import load_kspace

    return preview_layer(load_kspace(path), stem_name(path), source=path)
