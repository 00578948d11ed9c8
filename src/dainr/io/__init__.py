"""Files <-> :class:`KSpaceData` / :class:`Reconstruction`."""

from __future__ import annotations

from pathlib import Path

from ..data import KSpaceData
from ..errors import InputError
from .h5contract import (
    atomic_h5,
    is_kspace_file,
    is_recon_file,
    read_kspace_h5,
    read_recon_h5,
    stored_rois,
    write_kspace_h5,
    write_recon_h5,
)
from .matlab import load_mat_dict, mat_layout, read_mat

KSPACE_SUFFIXES = (".h5", ".hdf5", ".mat")


def load_kspace(path: str | Path, spokes_per_frame: int | None = None, **mat_options) -> KSpaceData:
    """Any supported k-space file: the contract ``.h5`` or a ``.mat`` layout."""
    path = Path(path)
    if path.suffix.lower() == ".mat":
        return read_mat(path, spokes_per_frame=spokes_per_frame, **mat_options)
    if path.suffix.lower() not in (".h5", ".hdf5"):
        raise InputError(path, None, f"unsupported file type {path.suffix!r}: expected .h5, .hdf5 or .mat")
    return read_kspace_h5(path)


def load_coil_maps(path: str | Path, n_coils: int, image_shape: tuple[int, int]):
    """``/coil_maps`` of an ``.h5`` file, checked against the data they are for."""
    import h5py

    from .validate import check_array

    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "no such file")
    try:
        with h5py.File(path, "r") as f:
            if "coil_maps" not in f:
                raise InputError(path, "/coil_maps", "missing dataset")
            maps = f["coil_maps"][()]
    except OSError as e:
        raise InputError(path, None, f"not a readable HDF5 file ({e})") from None
    maps = check_array(maps, path, "/coil_maps", ndim=3, kind="any").astype("complex64")
    if maps.shape != (n_coils, *image_shape):
        raise InputError(path, "/coil_maps", f"expected [{n_coils}, {image_shape[0]}, {image_shape[1]}] to match the k-space, got {list(maps.shape)}")
    return maps


__all__ = [
    "KSPACE_SUFFIXES",
    "atomic_h5",
    "is_kspace_file",
    "is_recon_file",
    "load_coil_maps",
    "load_kspace",
    "load_mat_dict",
    "mat_layout",
    "read_kspace_h5",
    "read_mat",
    "read_recon_h5",
    "stored_rois",
    "write_kspace_h5",
    "write_recon_h5",
]
