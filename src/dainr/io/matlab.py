"""The two MATLAB layouts people have (v5 and v7.3/HDF5).

* GRASP liver demo: ``kdata`` [readout, spokes, coils] complex, ``k`` [readout, spokes]
  complex kx + i ky in cycles/pixel, ``w`` DCF [readout, spokes], ``b1`` [ny, nx, coils].
* Cardiac cine coil images: ``data`` [ny, nx, frames, coils] complex, ``b1``
  [ny, nx, coils]; retrospectively sampled on load with a chosen spokes-per-frame.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ..data import KSpaceData
from ..errors import InputError
from ..physics.trajectory import cycles_to_radians
from .validate import check_array, check_kspace_data

GRASP_KEYS = ("kdata", "k")
CINE_KEYS = ("data", "b1")


def _load_v73(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        for k, ds in f.items():
            if isinstance(ds, h5py.Dataset) and not k.startswith("#"):
                # MATLAB writes column-major: h5py sees the axes reversed.
                a = ds[()]
                if a.dtype.names is not None and {"real", "imag"} <= set(a.dtype.names):
                    a = a["real"] + 1j * a["imag"]
                out[k] = np.asarray(a).T
    return out


def load_mat_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Variables of a ``.mat`` file of either version; errors name the file."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "no such file")
    if h5py.is_hdf5(path):
        try:
            return _load_v73(path)
        except OSError as e:
            raise InputError(path, None, f"unreadable MATLAB v7.3 file ({e})") from None
    from scipy.io import loadmat

    try:
        d = loadmat(path)
    except Exception as e:  # scipy raises a zoo of types for a broken file
        raise InputError(path, None, f"not a readable MATLAB file ({e.__class__.__name__}: {e})") from None
    return {k: v for k, v in d.items() if not k.startswith("__")}


def mat_layout(variables: dict) -> str | None:
    if all(k in variables for k in GRASP_KEYS):
        return "grasp"
    if all(k in variables for k in CINE_KEYS):
        return "cine"
    return None


def read_mat(
    path: str | Path,
    spokes_per_frame: int | None = None,
    readout_oversampling: float = 2.0,
    noise_level: float = 0.0,
    seed: int = 0,
) -> KSpaceData:
    path = Path(path)
    v = load_mat_dict(path)
    layout = mat_layout(v)
    if layout == "grasp":
        return _grasp(path, v)
    if layout == "cine":
        return _cine(path, v, spokes_per_frame or 13, readout_oversampling, noise_level, seed)
    raise InputError(
        path,
        None,
        f"unknown MATLAB layout: expected variables {GRASP_KEYS} (GRASP demo) or {CINE_KEYS} "
        f"(cine coil images), found {sorted(v)}",
    )


def _grasp(path: Path, v: dict) -> KSpaceData:
    kdata = check_array(v["kdata"], path, "kdata", ndim=3, kind="complex")
    if np.ndim(v["kdata"]) == 2:  # single coil saved without the trailing axis
        kdata = kdata[..., None]
    k = check_array(v["k"], path, "k", ndim=2, kind="complex")
    R, S, C = kdata.shape
    if k.shape != (R, S):
        raise InputError(path, "k", f"expected [readout, spokes] = [{R}, {S}] to match kdata, got {k.shape}")
    if np.abs(k.real).max() > 0.5 + 1e-6 or np.abs(k.imag).max() > 0.5 + 1e-6:
        raise InputError(path, "k", "expected cycles/pixel in [-0.5, 0.5]")
    maps = None
    if "b1" in v:
        b1 = check_array(v["b1"], path, "b1", ndim=3, kind="any").astype(np.complex64)
        if b1.shape[2] != C:
            raise InputError(path, "b1", f"has {b1.shape[2]} coils but kdata has {C}")
        maps = np.ascontiguousarray(b1.transpose(2, 0, 1))
        shape = b1.shape[:2]
    else:
        shape = (R // 2, R // 2)
    dcf = None
    if "w" in v:
        w = check_array(v["w"], path, "w", ndim=2, kind="real")
        if w.shape != (R, S):
            raise InputError(path, "w", f"expected [readout, spokes] = [{R}, {S}], got {w.shape}")
        dcf = np.ascontiguousarray(w.T)
    d = KSpaceData(
        kspace=np.ascontiguousarray(kdata.transpose(2, 1, 0)),
        trajectory=np.ascontiguousarray(cycles_to_radians(k.T)),
        image_shape=tuple(int(s) for s in shape),
        coil_maps=maps,
        dcf=dcf,
        attrs={"source_layout": "grasp-mat"},
        source=str(path),
    )
    check_kspace_data(d)
    return d


def _cine(path: Path, v: dict, spf: int, osf: float, noise: float, seed: int) -> KSpaceData:
    from ..simulate.acquire import add_noise, sample_coil_images

    data = check_array(v["data"], path, "data", ndim=4, kind="any").astype(np.complex64)
    b1 = check_array(v["b1"], path, "b1", ndim=3, kind="any").astype(np.complex64)
    ny, nx, F, C = data.shape
    if b1.shape != (ny, nx, C):
        raise InputError(path, "b1", f"expected [ny, nx, coils] = [{ny}, {nx}, {C}] to match data, got {b1.shape}")
    if spf < 1:
        raise InputError(path, None, f"spokes per frame must be >= 1, got {spf}")
    coil_images = np.ascontiguousarray(data.transpose(2, 3, 0, 1))  # [F, C, ny, nx]
    maps = np.ascontiguousarray(b1.transpose(2, 0, 1))
    kspace, traj = sample_coil_images(coil_images, spf, osf)
    kspace = add_noise(kspace, noise, np.random.default_rng(seed))
    norm = (np.abs(maps) ** 2).sum(0)
    ref = (maps.conj()[None] * coil_images).sum(1) / np.where(norm > 0, norm, 1)
    d = KSpaceData(
        kspace=kspace,
        trajectory=traj,
        image_shape=(ny, nx),
        coil_maps=maps,
        reference=ref.astype(np.complex64),
        attrs={"source_layout": "cine-mat", "spokes_per_frame": spf, "noise_level": noise, "seed": seed},
        source=str(path),
    )
    check_kspace_data(d)
    return d
