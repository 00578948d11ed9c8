"""Volume outputs: ``/recon [frames, slices, ny, nx]`` written slice by slice, and read back.

A volume's slices finish one by one on Dask workers; :class:`VolumeOutput` writes each
as it arrives and flushes, so an interrupted run keeps its finished slices and
``dainr recon --resume OUT.h5`` fits only the rest. Root attributes are those of a 2-D
output (:mod:`dainr.io.h5contract`) plus the per-slice bookkeeping :class:`VolumeOutput`
lists.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError


class VolumeOutput:
    """``/recon [frames, slices, ny, nx]`` filled slice by slice, flushed after each.

    Root attributes as for a 2-D output, plus ``slices`` (volume indices of the
    second axis), ``slices_done``, ``seconds`` per slice (NaN until done),
    ``workers`` per slice, ``cluster``, ``wall_seconds`` and ``partial`` (true until
    every slice is there). The file is the record of an interrupted run:
    :meth:`resume` reopens it and reports which slices are left.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.file = None

    @classmethod
    def create(
        cls,
        path,
        slices: Sequence[int],
        n_frames: int,
        image_shape: tuple[int, int],
        attrs: dict[str, Any],
        input_path=None,
    ) -> VolumeOutput:
        import h5py

        out = cls(path)
        if (
            input_path is not None
            and out.path.exists()
            and out.path.resolve() == Path(input_path).resolve()
        ):
            raise InputError(out.path, None, "refusing to write the output over the input file")
        out.path.parent.mkdir(parents=True, exist_ok=True)
        f = h5py.File(out.path, "w")
        ny, nx = image_shape
        f.create_dataset(
            "recon",
            shape=(n_frames, len(slices), ny, nx),
            dtype=np.complex64,
            chunks=(n_frames, 1, ny, nx),
        )
        for k, v in attrs.items():
            _set_attr(f, k, v)
        f.attrs["slices"] = np.asarray(slices, np.int64)
        f.attrs["slices_done"] = np.zeros(0, np.int64)
        f.attrs["seconds"] = np.full(len(slices), np.nan)
        f.attrs["workers"] = json.dumps([""] * len(slices))
        f.attrs["partial"] = True
        f.flush()
        out.file = f
        return out

    @classmethod
    def resume(cls, path) -> tuple[VolumeOutput, list[int]]:
        """Reopen a volume output; returns it and the slices still to do."""
        import h5py

        out = cls(path)
        if not out.path.exists():
            raise InputError(out.path, None, "--resume: no such volume output")
        try:
            f = h5py.File(out.path, "r+")
        except OSError as e:
            raise InputError(out.path, None, f"--resume: not a readable HDF5 file ({e})") from None
        if "recon" not in f or "slices" not in f.attrs or f["recon"].ndim != 4:
            f.close()
            raise InputError(
                out.path,
                "/recon",
                "--resume: not a volume output (expected /recon [frames, slices, ny, nx] with attribute slices)",
            )
        out.file = f
        done = set(np.asarray(f.attrs["slices_done"]).tolist())
        return out, [int(z) for z in f.attrs["slices"] if int(z) not in done]

    @property
    def slices(self) -> list[int]:
        return [int(z) for z in self.file.attrs["slices"]]

    @property
    def n_frames(self) -> int:
        return int(self.file["recon"].shape[0])

    def attr(self, name: str, default=None):
        v = self.file.attrs.get(name, default)
        return v.decode() if isinstance(v, bytes) else v

    def write(self, r: Any) -> None:
        """Store a finished slice (a :class:`dainr.volume.SliceResult`) and flush."""
        f = self.file
        pos = self.slices.index(r.index)
        if r.frames.shape != f["recon"].shape[:1] + f["recon"].shape[2:]:
            raise ValueError(
                f"slice {r.index}: result {r.frames.shape} does not fit /recon {f['recon'].shape}"
            )
        f["recon"][:, pos] = r.frames
        secs = np.asarray(f.attrs["seconds"], np.float64)
        secs[pos] = r.seconds
        f.attrs["seconds"] = secs
        workers = json.loads(self.attr("workers"))
        workers[pos] = r.worker
        f.attrs["workers"] = json.dumps(workers)
        done = sorted(set(np.asarray(f.attrs["slices_done"]).tolist()) | {r.index})
        f.attrs["slices_done"] = np.asarray(done, np.int64)
        f.attrs["peak_memory_bytes"] = max(
            int(f.attrs.get("peak_memory_bytes", 0)), r.peak_memory_bytes
        )
        for k in ("method", "spokes_per_frame"):
            if k not in f.attrs:
                f.attrs[k] = getattr(r, k)
        if "config" not in f.attrs:
            f.attrs["config"] = json.dumps(r.config, sort_keys=True, default=str)
        for k, v in r.attrs.items():
            if k not in f.attrs and v is not None:
                _set_attr(f, k, v)
        f.flush()

    def finish(self, wall_seconds: float, cluster: str) -> bool:
        """Close; returns whether every slice is there (then ``partial`` is false)."""
        import dainr

        f = self.file
        complete = len(np.asarray(f.attrs["slices_done"])) == len(self.slices)
        f.attrs["partial"] = not complete
        f.attrs["wall_seconds"] = float(wall_seconds) + float(f.attrs.get("wall_seconds", 0.0))
        f.attrs["cluster"] = cluster
        f.attrs["versions"] = json.dumps(dainr.versions(), sort_keys=True)
        f.close()
        self.file = None
        return complete

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def _set_attr(f, k: str, v) -> None:
    if v is None:
        return
    if isinstance(v, (dict, list, tuple)) and not (
        isinstance(v, (list, tuple)) and v and all(isinstance(x, (int, float)) for x in v)
    ):
        v = json.dumps(v, default=str)
    f.attrs[k] = v


@dataclass
class VolumeReconstruction:
    """A volume output as read back."""

    frames: np.ndarray  #: complex64 [F, Z, ny, nx]
    slices: list[int]
    slices_done: list[int]
    seconds: np.ndarray  #: per slice (NaN: not done)
    method: str
    config: dict[str, Any]
    partial: bool
    attrs: dict[str, Any]


def is_volume_recon(path: str | os.PathLike) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "recon" in f and f["recon"].ndim == 4
    except Exception:
        return False


def read_volume_recon(path: str | os.PathLike) -> VolumeReconstruction:
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise InputError(path, None, f"not a readable HDF5 file ({e})") from None
    with f:
        if "recon" not in f or f["recon"].ndim != 4:
            raise InputError(
                path, "/recon", "not a volume output (expected [frames, slices, ny, nx])"
            )
        frames = f["recon"][()]
        a = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    return VolumeReconstruction(
        frames=frames,
        slices=[int(z) for z in a.get("slices", range(frames.shape[1]))],
        slices_done=[int(z) for z in np.asarray(a.get("slices_done", []))],
        seconds=np.asarray(a.get("seconds", []), np.float64),
        method=str(a.get("method", "unknown")),
        config=json.loads(a.get("config", "{}")),
        partial=bool(a.get("partial", False)),
        attrs=a,
    )


__all__ = ["VolumeOutput", "VolumeReconstruction", "is_volume_recon", "read_volume_recon"]
