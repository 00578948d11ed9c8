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

from ..data import KSpaceData, check_array, check_kspace_data
from ..errors import InputError
from ..physics.trajectory import cycles_to_radians

GRASP_KEYS = ("kdata", "k")
CINE_KEYS = ("data", "b1")
#: Every variable either layout reads; others are never loaded.
KNOWN_VARIABLES = ("kdata", "k", "w", "b1", "data")
#: Refuse declared sizes no workstation could hold, before reading a byte of them.
MAX_ELEMENTS = 2**31


def _load_v73(path: Path, names: tuple[str, ...] | None) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        for k, ds in f.items():
            if (
                not isinstance(ds, h5py.Dataset)
                or k.startswith("#")
                or (names is not None and k not in names)
            ):
                continue
            if ds.size > MAX_ELEMENTS:
                raise InputError(path, k, f"declared size {ds.shape[::-1]} is too large to load")
            # MATLAB writes column-major: h5py sees the axes reversed.
            a = ds[()]
            if a.dtype.names is not None and {"real", "imag"} <= set(a.dtype.names):
                a = a["real"] + 1j * a["imag"]
            out[k] = np.asarray(a).T
    return out


def mat_variable_names(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape (MATLAB's axis order) of a ``.mat`` file's variables, values not read."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "no such file")
    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                return {
                    k: ds.shape[::-1]
                    for k, ds in f.items()
                    if isinstance(ds, h5py.Dataset) and not k.startswith("#")
                }
        from scipy.io import whosmat

        return {name: tuple(shape) for name, shape, _ in whosmat(path)}
    except InputError:
        raise
    except Exception as e:  # scipy and h5py raise a zoo of types for a broken file
        raise InputError(
            path, None, f"not a readable MATLAB file ({e.__class__.__name__}: {e})"
        ) from None


def load_mat_dict(path: str | Path, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Variables (all, or those in ``names``) of a ``.mat`` file of either version; errors name the file."""
    path = Path(path)
    shapes = mat_variable_names(path)
    for k, shape in shapes.items():
        if (names is None or k in names) and np.prod(shape, dtype=np.float64) > MAX_ELEMENTS:
            raise InputError(path, k, f"declared size {shape} is too large to load")
    if h5py.is_hdf5(path):
        try:
            return _load_v73(path, names)
        except OSError as e:
            raise InputError(path, None, f"unreadable MATLAB v7.3 file ({e})") from None
    from scipy.io import loadmat

    try:
        d = loadmat(path, variable_names=None if names is None else list(names))
    except Exception as e:  # scipy raises a zoo of types for a broken file
        raise InputError(
            path, None, f"not a readable MATLAB file ({e.__class__.__name__}: {e})"
        ) from None
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
    names = mat_variable_names(path)
    layout = mat_layout(names)
    if layout is None:
        raise InputError(
            path,
            None,
            f"unknown MATLAB layout: expected variables {' and '.join(GRASP_KEYS)} (GRASP demo) or "
            f"{' and '.join(CINE_KEYS)} (cine coil images), found {', '.join(sorted(names)) or 'none'}",
        )
    v = load_mat_dict(path, KNOWN_VARIABLES)
    if layout == "grasp":
        return _grasp(path, v)
    return _cine(path, v, spokes_per_frame or 13, readout_oversampling, noise_level, seed)


def _grasp(path: Path, v: dict) -> KSpaceData:
    kdata = v["kdata"]
    if np.ndim(kdata) == 2:  # MATLAB drops a trailing singleton: one coil
        kdata = np.asarray(kdata)[..., None]
    kdata = check_array(kdata, path, "kdata", ndim=3, kind="complex")
    k = check_array(v["k"], path, "k", ndim=2, kind="complex")
    R, S, C = kdata.shape
    if k.shape != (R, S):
        raise InputError(
            path, "k", f"expected [readout, spokes] = [{R}, {S}] to match kdata, got {k.shape}"
        )
    if np.abs(k.real).max() > 0.5 + 1e-6 or np.abs(k.imag).max() > 0.5 + 1e-6:
        raise InputError(path, "k", "expected cycles/pixel in [-0.5, 0.5]")
    maps = None
    if "b1" in v:
        b1 = v["b1"] if np.ndim(v["b1"]) != 2 else np.asarray(v["b1"])[..., None]
        b1 = check_array(b1, path, "b1", ndim=3, kind="any").astype(np.complex64)
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
    from ..physics.sampling import add_noise, sample_coil_images

    data, b1 = v["data"], v["b1"]
    if np.ndim(data) == 3 and np.ndim(b1) == 2:  # MATLAB drops a trailing singleton: one coil
        data, b1 = np.asarray(data)[..., None], np.asarray(b1)[..., None]
    data = check_array(data, path, "data", ndim=4, kind="any").astype(np.complex64)
    b1 = check_array(b1, path, "b1", ndim=3, kind="any").astype(np.complex64)
    ny, nx, F, C = data.shape
    if b1.shape != (ny, nx, C):
        raise InputError(
            path,
            "b1",
            f"expected [ny, nx, coils] = [{ny}, {nx}, {C}] to match data, got {b1.shape}",
        )
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
        attrs={
            "source_layout": "cine-mat",
            "spokes_per_frame": spf,
            "noise_level": noise,
            "seed": seed,
        },
        source=str(path),
    )
    check_kspace_data(d)
    return d
