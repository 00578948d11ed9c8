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
#: raw scanner data: ISMRMRD (``.mrd``, or ``.h5`` holding ``/dataset``) and BART pairs
RAW_SUFFIXES = (".mrd", ".cfl", ".hdr")


def is_raw_file(path: str | Path) -> bool:
    """ISMRMRD or BART input (possibly a volume); h5py only, imports nothing heavy."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".cfl", ".hdr"):
        return True
    if suffix in (".mrd", ".h5", ".hdf5"):
        from .ismrmrd import is_ismrmrd_file

        return suffix == ".mrd" or (is_ismrmrd_file(path) and not is_kspace_file(path))
    return False


def load_kspace_or_volume(path: str | Path, spokes_per_frame: int | None = None, **options):
    """A :class:`KSpaceData` for 2-D files, a :class:`~dainr.data.KSpaceVolume` for raw
    input (ISMRMRD, BART), whatever number of slices it holds."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".cfl", ".hdr"):
        from .cfl import read_bart

        return read_bart(path, **options)
    if suffix == ".mat":
        return read_mat(path, spokes_per_frame=spokes_per_frame, **options)
    if is_raw_file(path):
        from .ismrmrd import read_ismrmrd

        return read_ismrmrd(path, **options)
    if suffix not in (".h5", ".hdf5"):
        raise InputError(
            path,
            None,
            f"unsupported file type {path.suffix!r}: expected .h5, .hdf5, .mat, .mrd or .cfl",
        )
    return read_kspace_h5(path)


def load_kspace(path: str | Path, spokes_per_frame: int | None = None, **options) -> KSpaceData:
    """Any supported 2-D k-space file: the contract ``.h5``, a ``.mat`` layout, or raw
    input (ISMRMRD, BART) holding one slice."""
    data = load_kspace_or_volume(path, spokes_per_frame, **options)
    if isinstance(data, KSpaceData):
        return data
    if data.n_slices > 1:
        raise InputError(
            path,
            None,
            f"holds a {data.layout} volume of {data.n_slices} slices: reconstruct it with "
            "dainr recon (all slices, or --slices) or dainr.reconstruct_volume",
        )
    return data.slice(0)


def load_coil_maps(path: str | Path, n_coils: int, image_shape: tuple[int, int]):
    """``/coil_maps`` of an ``.h5`` file, checked against the data they are for."""
    import h5py

    from ..data import check_array

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
        raise InputError(
            path,
            "/coil_maps",
            f"expected [{n_coils}, {image_shape[0]}, {image_shape[1]}] to match the k-space, got {list(maps.shape)}",
        )
    return maps


__all__ = [
    "KSPACE_SUFFIXES",
    "RAW_SUFFIXES",
    "atomic_h5",
    "is_kspace_file",
    "is_raw_file",
    "is_recon_file",
    "load_coil_maps",
    "load_kspace",
    "load_kspace_or_volume",
    "load_mat_dict",
    "mat_layout",
    "read_kspace_h5",
    "read_mat",
    "read_recon_h5",
    "stored_rois",
    "write_kspace_h5",
    "write_recon_h5",
]
