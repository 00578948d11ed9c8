"""Reading and writing the contract ``.h5`` files (see docs: kspace-format.md)."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..data import ROI_GROUP, KSpaceData, check_array, check_kspace_data
from ..errors import InputError
from ..result import Reconstruction

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_KNOWN_ATTRS = {"image_shape", "format_version"}
_CONTRACT_DATASETS = ("kspace", "trajectory", "coil_maps", "reference", "dcf")
#: Refuse declared sizes no workstation could hold, before reading a byte of them.
MAX_ELEMENTS = 2**31
#: Datasets outside the contract larger than this stay in the file unread (and logged):
#: they are carried for tools like ROI scoring, which need kilobytes, not gigabytes.
MAX_EXTRA_ELEMENTS = 2**24


def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise InputError(path, None, "no such file")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise InputError(path, None, _open_problem(path, e)) from None


def _open_problem(path: Path, e: OSError) -> str:
    """Why HDF5 refused a file, in words a user can act on."""
    msg = str(e)
    m = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", msg)
    if m:
        return f"truncated HDF5 file: {m[1]} of its {m[2]} bytes are present (an interrupted copy?)"
    try:
        signature = h5py.is_hdf5(path)
    except OSError:
        signature = True  # unreadable for another reason: report HDF5's own words
    if not signature:
        return "not an HDF5 file (no HDF5 signature)"
    return f"not a readable HDF5 file ({e.__class__.__name__}: {msg.split('(')[0].strip()})"


def _attr_value(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _read(f: h5py.File, path: Path, name: str, required: bool) -> np.ndarray | None:
    if name not in f:
        if required:
            raise InputError(path, f"/{name}", "missing dataset (required by the k-space contract)")
        return None
    ds = f[name]
    if not isinstance(ds, h5py.Dataset):
        raise InputError(path, f"/{name}", "expected a dataset, found a group")
    if ds.size > MAX_ELEMENTS:
        raise InputError(path, f"/{name}", f"declared size {ds.shape} is too large to load")
    try:
        return ds[()]
    except (OSError, TypeError, ValueError) as e:
        raise InputError(path, f"/{name}", f"could not be read ({e})") from None


def _read_extra(f: h5py.File, path: Path) -> dict[str, np.ndarray]:
    """Datasets outside the contract; those under ``/roi`` must be readable, others may be skipped."""
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    out = {}
    for name in names:
        if name in _CONTRACT_DATASETS:
            continue
        if name.startswith(ROI_GROUP + "/"):
            out[name] = _read(f, path, name, True)
            continue
        ds = f[name]
        if ds.size > MAX_EXTRA_ELEMENTS:
            log.warning(
                "%s: /%s %s not loaded (larger than %d elements)",
                path,
                name,
                ds.shape,
                MAX_EXTRA_ELEMENTS,
            )
            continue
        try:
            out[name] = ds[()]
        except (OSError, TypeError, ValueError) as e:
            log.warning("%s: /%s not loaded (%s)", path, name, e)
    return out


def stored_rois(data: KSpaceData) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """ROI name -> (bool mask [ny, nx], known curve [n_frames] or None) from ``/roi``."""
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    prefix = ROI_GROUP + "/"
    for key, mask in data.extra.items():
        if key.startswith(prefix) and key.endswith("/mask"):
            name = key[len(prefix) : -len("/mask")]
            curve = data.extra.get(f"{prefix}{name}/curve")
            out[name] = (
                np.asarray(mask).astype(bool),
                None if curve is None else np.asarray(curve, np.float32),
            )
    return out


def is_kspace_file(path: str | os.PathLike) -> bool:
    """True for an HDF5 file with the contract's ``/kspace`` and ``/trajectory``."""
    try:
        with h5py.File(path, "r") as f:
            return "kspace" in f and "trajectory" in f
    except Exception:
        return False


def is_recon_file(path: str | os.PathLike) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return "recon" in f
    except Exception:
        return False


def read_kspace_h5(path: str | os.PathLike) -> KSpaceData:
    """Load and validate a contract file; every problem is an :class:`InputError`."""
    path = Path(path)
    with _open(path) as f:
        attrs = {k: _attr_value(v) for k, v in f.attrs.items()}
        if "image_shape" not in attrs:
            raise InputError(path, "attribute image_shape", "missing root attribute (int [ny, nx])")
        shape = np.asarray(attrs["image_shape"]).ravel()
        if shape.size != 2 or not np.all(np.mod(shape, 1) == 0) or np.any(shape < 1):
            raise InputError(
                path,
                "attribute image_shape",
                f"expected two positive ints [ny, nx], got {attrs['image_shape']!r}",
            )
        if np.prod(shape.astype(np.float64)) > 4096**2:
            raise InputError(
                path,
                "attribute image_shape",
                f"{shape.tolist()} is too large (at most 4096 x 4096)",
            )
        version = attrs.get("format_version")
        if version is None:
            raise InputError(
                path, "attribute format_version", "missing root attribute (expected 1)"
            )
        try:
            version_ok = int(np.asarray(version).ravel()[0]) == FORMAT_VERSION
        except (TypeError, ValueError, IndexError):
            version_ok = False
        if not version_ok:
            raise InputError(
                path, "attribute format_version", f"expected {FORMAT_VERSION}, got {version!r}"
            )
        arrays = {n: _read(f, path, n, n in ("kspace", "trajectory")) for n in _CONTRACT_DATASETS}
        extra = _read_extra(f, path)
    data = KSpaceData(
        kspace=check_array(arrays["kspace"], path, "/kspace", ndim=3, kind="complex"),
        trajectory=check_array(arrays["trajectory"], path, "/trajectory", ndim=3, kind="real"),
        image_shape=(int(shape[0]), int(shape[1])),
        coil_maps=None
        if arrays["coil_maps"] is None
        else check_array(arrays["coil_maps"], path, "/coil_maps", ndim=3, kind="complex"),
        reference=None
        if arrays["reference"] is None
        else check_array(arrays["reference"], path, "/reference", ndim=3, kind="any"),
        dcf=None
        if arrays["dcf"] is None
        else check_array(arrays["dcf"], path, "/dcf", ndim=2, kind="real"),
        attrs={k: v for k, v in attrs.items() if k not in _KNOWN_ATTRS},
        source=str(path),
        extra=extra,
    )
    check_kspace_data(data)
    return data


def _write_attrs(f: h5py.File, attrs: dict[str, Any]) -> None:
    for k, v in attrs.items():
        if v is None:
            continue
        if isinstance(v, (dict, list, tuple)) and not (
            isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) for x in v)
        ):
            v = json.dumps(v)
        f.attrs[k] = v


def atomic_h5(path: str | os.PathLike):
    """Context manager: an ``h5py.File`` on a temporary name, renamed on success only."""
    return _AtomicH5(Path(path))


class _AtomicH5:
    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> h5py.File:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # HDF5 creates the file itself ("x": fails if the name exists) so that it gets the
        # user's umask permissions; mkstemp's 0600 would survive the rename.
        for _ in range(100):
            self.tmp = self.path.parent / f".{self.path.name}.{secrets.token_hex(4)}.part"
            try:
                self.file = h5py.File(self.tmp, "x")
                return self.file
            except FileExistsError:
                continue
        raise FileExistsError(f"{self.path}: no free temporary name beside it")

    def __exit__(self, exc_type, exc, tb):
        self.file.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
        return False


def write_kspace_h5(path: str | os.PathLike, data: KSpaceData, compress: bool = False) -> None:
    """Write ``data`` per the contract, atomically; ``data.extra`` as further datasets.

    ``compress`` stores every dataset gzip-compressed with byte shuffling (smaller
    shipped samples; any HDF5 reader decodes it transparently).
    """
    clash = sorted(k for k in data.extra if k.strip("/") in _CONTRACT_DATASETS)
    if clash:
        raise ValueError(f"extra datasets {clash} would replace contract datasets")
    opts = {"compression": "gzip", "compression_opts": 4, "shuffle": True} if compress else {}
    with atomic_h5(path) as f:
        f.create_dataset("kspace", data=data.kspace.astype(np.complex64), **opts)
        f.create_dataset("trajectory", data=data.trajectory.astype(np.float32), **opts)
        if data.coil_maps is not None:
            f.create_dataset("coil_maps", data=data.coil_maps.astype(np.complex64), **opts)
        if data.reference is not None:
            ref = data.reference
            ref = ref.astype(np.complex64) if np.iscomplexobj(ref) else ref.astype(np.float32)
            f.create_dataset("reference", data=ref, **opts)
        if data.dcf is not None:
            f.create_dataset("dcf", data=data.dcf.astype(np.float32), **opts)
        for key, value in data.extra.items():
            a = np.asarray(value)
            f.create_dataset(key.strip("/"), data=a, **(opts if a.ndim else {}))
        _write_attrs(f, data.attrs)
        f.attrs["image_shape"] = np.asarray(data.image_shape, dtype=np.int64)
        f.attrs["format_version"] = FORMAT_VERSION


def write_recon_h5(
    path: str | os.PathLike, recon: Reconstruction, input_path: str | os.PathLike | None = None
) -> None:
    """Write a reconstruction per the output contract, atomically, never over the input."""
    path = Path(path)
    if input_path is not None and path.exists() and path.resolve() == Path(input_path).resolve():
        raise InputError(path, None, "refusing to write the output over the input file")
    import dainr

    with atomic_h5(path) as f:
        f.create_dataset(
            "recon", data=recon.frames.astype(np.complex64), compression="gzip", compression_opts=1
        )
        if recon.loss_history:
            f.create_dataset("loss_history", data=np.asarray(recon.loss_history, dtype=np.float32))
        if recon.history is not None:
            f.create_dataset(
                "history", data=np.asarray(recon.history, dtype=np.float64).reshape(-1, 3)
            )
        if recon.std is not None:
            f.create_dataset(
                "std", data=recon.std.astype(np.float32), compression="gzip", compression_opts=1
            )
        if recon.heldout_spokes is not None:
            f.create_dataset(
                "holdout_spokes", data=np.asarray(recon.heldout_spokes, dtype=np.int64)
            )
        if recon.coil_maps is not None:
            f.create_dataset(
                "coil_maps",
                data=recon.coil_maps.astype(np.complex64),
                compression="gzip",
                compression_opts=1,
            )
        if recon.chosen_step is not None:
            f.attrs["chosen_step"] = int(recon.chosen_step)
        f.attrs["early_stopped"] = bool(recon.early_stopped)
        f.attrs["ensemble"] = int(recon.ensemble)
        _write_attrs(f, recon.attrs)
        f.attrs["method"] = recon.method
        f.attrs["spokes_per_frame"] = int(recon.spokes_per_frame)
        f.attrs["config"] = json.dumps(recon.config, sort_keys=True, default=str)
        f.attrs["seconds"] = float(recon.seconds)
        f.attrs["peak_memory_bytes"] = int(recon.peak_memory_bytes)
        f.attrs["partial"] = bool(recon.partial)
        f.attrs["upscale"] = float(recon.upscale)
        if recon.steps_done is not None:
            f.attrs["steps_done"] = int(recon.steps_done)
        f.attrs["versions"] = json.dumps(dainr.versions(), sort_keys=True)


def read_recon_h5(path: str | os.PathLike) -> Reconstruction:
    path = Path(path)
    with _open(path) as f:
        if "recon" not in f:
            raise InputError(path, "/recon", "missing dataset: not a reconstruction output")
        frames = check_array(_read(f, path, "recon", True), path, "/recon", ndim=3, kind="any")
        attrs = {k: _attr_value(v) for k, v in f.attrs.items()}
        losses = f["loss_history"][()].tolist() if "loss_history" in f else []
        history = std = held = None
        if "history" in f:
            history = np.asarray(f["history"][()])  # nan marks steps without an evaluation
            if (
                history.ndim != 2
                or history.shape[1] != 3
                or not np.issubdtype(history.dtype, np.floating)
            ):
                raise InputError(
                    path,
                    "/history",
                    f"expected float [steps, 3] (step, training loss, held-out loss), got {history.dtype} {history.shape}",
                )
            history = history.astype(np.float64)
        if "std" in f:
            std = check_array(
                _read(f, path, "std", True), path, "/std", ndim=3, kind="real"
            ).astype(np.float32)
            if std.shape != frames.shape:
                raise InputError(
                    path, "/std", f"expected the shape of /recon {frames.shape}, got {std.shape}"
                )
        if "holdout_spokes" in f:
            held = np.asarray(f["holdout_spokes"][()], dtype=np.int64)
        maps = None
        if "coil_maps" in f:
            maps = check_array(
                _read(f, path, "coil_maps", True), path, "/coil_maps", ndim=3, kind="any"
            )
            maps = maps.astype(np.complex64)
    own = {
        "method",
        "spokes_per_frame",
        "config",
        "seconds",
        "peak_memory_bytes",
        "partial",
        "upscale",
        "steps_done",
        "chosen_step",
        "early_stopped",
        "ensemble",
    }
    return Reconstruction(
        frames=frames.astype(np.complex64),
        method=str(attrs.get("method", "unknown")),
        config=json.loads(attrs.get("config", "{}")),
        spokes_per_frame=int(attrs.get("spokes_per_frame", 0)),
        seconds=float(attrs.get("seconds", 0.0)),
        peak_memory_bytes=int(attrs.get("peak_memory_bytes", 0)),
        partial=bool(attrs.get("partial", False)),
        steps_done=attrs.get("steps_done"),
        loss_history=losses,
        attrs={k: v for k, v in attrs.items() if k not in own},
        upscale=float(attrs.get("upscale", 1.0)),
        history=history,
        chosen_step=None if attrs.get("chosen_step") is None else int(attrs["chosen_step"]),
        early_stopped=bool(attrs.get("early_stopped", False)),
        std=std,
        ensemble=int(attrs.get("ensemble", 1)),
        heldout_spokes=held,
        coil_maps=maps,
    )
