"""Volumes: several slices of one acquisition, each fitted on its own, in parallel on Dask.

* :class:`KSpaceVolume` — slice-separated k-space ``[slices, coils, spokes, readout]``
  (a stack-of-stars file after the kz inverse DFT, or 2-D multi-slice), one
  :class:`KSpaceData` per slice by :meth:`KSpaceVolume.slice`.
* :func:`fit_slice` — the task a Dask worker runs: optional coil compression, then the
  one fit path :func:`dainr.session.fit_stream`, drained to its result. Only that
  slice's k-space travels to the worker.
* :func:`fit_volume_stream` — submits one task per slice (``client.submit``), yields
  results as they complete (``as_completed``), retries a failed slice once, cancels
  pending ones on stop.
* :class:`VolumeOutput` — ``/recon [frames, slices, ny, nx]`` written slice by slice as
  results arrive, so an interrupted volume keeps them and ``resume`` fills the rest.

Qt-free and terminal-free: the CLI and the plugin drain :func:`fit_volume_stream`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data import KSpaceData
from .errors import FitError, InputError

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- data model


@dataclass
class KSpaceVolume:
    """Slice-separated radial k-space of a volume (see docs/raw-input.md)."""

    kspace: np.ndarray  #: complex64 [n_slices, n_coils, n_spokes, n_readout]
    trajectory: np.ndarray  #: float32 [n_slices, n_spokes, n_readout, 2], rad/pixel (y, x)
    image_shape: tuple[int, int]
    #: "stack-of-stars" (kz partitions separated by the inverse DFT), "multi-slice" or "single"
    layout: str = "single"
    pixel_size_mm: tuple[float, float, float] | None = None  #: (dz, dy, dx) for napari's scale
    attrs: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    coil_maps: np.ndarray | None = None  #: complex64 [n_slices, n_coils, ny, nx]
    reference: np.ndarray | None = None  #: [n_frames, n_slices, ny, nx]

    @property
    def n_slices(self) -> int:
        return self.kspace.shape[0]

    @property
    def n_coils(self) -> int:
        return self.kspace.shape[1]

    @property
    def n_spokes(self) -> int:
        return self.kspace.shape[2]

    @property
    def n_readout(self) -> int:
        return self.kspace.shape[3]

    def default_spokes_per_frame(self) -> int:
        s = self.attrs.get("spokes_per_frame")
        return int(s) if s else 13

    def slice(self, z: int) -> KSpaceData:
        """Slice ``z`` as a 2-D k-space file's content (copies: what a task sends)."""
        if not 0 <= z < self.n_slices:
            raise IndexError(f"slice {z} out of range: the volume has {self.n_slices}")
        ref = None
        if self.reference is not None:
            ref = np.ascontiguousarray(self.reference[:, z])
        return KSpaceData(
            kspace=np.ascontiguousarray(self.kspace[z]),
            trajectory=np.array(self.trajectory[z], dtype=np.float32, order="C"),
            image_shape=tuple(self.image_shape),
            coil_maps=None if self.coil_maps is None else np.ascontiguousarray(self.coil_maps[z]),
            reference=ref,
            attrs=dict(self.attrs) | {"slice": int(z), "n_slices": self.n_slices},
            source=f"{self.source} slice {z}" if self.source else f"slice {z}",
        )

    @classmethod
    def from_kspace(cls, data: KSpaceData) -> KSpaceVolume:
        """A one-slice volume of a 2-D file."""
        return cls(
            kspace=data.kspace[None],
            trajectory=data.trajectory[None],
            image_shape=tuple(data.image_shape),
            layout="single",
            attrs=dict(data.attrs),
            source=data.source,
            coil_maps=None if data.coil_maps is None else data.coil_maps[None],
            reference=None if data.reference is None else data.reference[:, None],
        )


def parse_slices(text: str | None, n_slices: int, source: str | None = None) -> list[int]:
    """``"3,5-9"`` -> [3, 5, 6, 7, 8, 9] (checked against the volume); None = all."""
    if text is None or str(text).strip() in ("", "all"):
        return list(range(n_slices))
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            if "-" in part:
                a, b = (int(v) for v in part.split("-", 1))
                if b < a:
                    raise ValueError
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ValueError(f"--slices {text!r}: expected indices and ranges like 3,5-9") from None
    bad = [z for z in out if not 0 <= z < n_slices]
    if bad:
        raise InputError(
            source,
            None,
            f"--slices {text}: slice {bad[0]} does not exist (the volume has {n_slices}: 0-{n_slices - 1})",
        )
    return sorted(set(out))


# ----------------------------------------------------------------------------- the task


@dataclass
class SliceResult:
    """One finished slice, as a worker returns it."""

    index: int
    frames: np.ndarray  #: complex64 [F, ny, nx]
    seconds: float  #: wall time of the task on its worker (compression, preparation, fit)
    peak_memory_bytes: int
    worker: str
    method: str
    config: dict[str, Any]
    spokes_per_frame: int
    attrs: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    partial: bool = False


@dataclass
class SliceFailed:
    """A slice whose task failed (worker lost, out of memory, non-finite loss)."""

    index: int
    error: str
    retrying: bool
    attempt: int


@dataclass
class VolumeStarted:
    slices: list[int]
    cluster: str  #: what ran it: scheduler address and workers
    workers: list[str]


VolumeEvent = VolumeStarted | SliceResult | SliceFailed


def fit_slice(
    data: KSpaceData, spec, index: int, virtual_coils: int | None = None, attempt: int = 1
) -> SliceResult:
    """Fit one slice through :func:`dainr.session.fit_stream` (what a Dask task runs)."""
    from .loop import Done
    from .physics.compress import compress_coils
    from .session import fit_stream

    t0 = time.perf_counter()
    worker = _limit_threads_to_worker()
    if virtual_coils:
        data = compress_coils(data, int(virtual_coils))
    result = None
    for m in fit_stream(data, spec):
        if isinstance(m, Done):
            result = m.result
    if result is None:
        raise FitError(f"slice {index}: the fit ended without a result")
    if not np.all(np.isfinite(result.frames)):
        raise FitError(f"slice {index}: non-finite values in the result")
    return SliceResult(
        index=index,
        frames=result.frames.astype(np.complex64),
        seconds=time.perf_counter() - t0,
        peak_memory_bytes=int(result.peak_memory_bytes),
        worker=worker,
        method=result.method,
        config=result.config,
        spokes_per_frame=int(result.spokes_per_frame),
        attrs={
            k: v
            for k, v in result.attrs.items()
            if k in ("coil_maps_source", "preparation", "virtual_coils_energy")
        },
        attempt=attempt,
        partial=bool(result.partial),
    )


#: worker environment variable: torch threads of each slice task (the LocalCluster sets it)
TASK_THREADS_ENV = "DAINR_TASK_THREADS"


def _limit_threads_to_worker() -> str:
    """Set the task's torch threads; returns the worker's address ("local" outside Dask).

    A Dask worker with ``--nthreads T`` runs T slices at once, so each gets one torch
    thread (as distributed's own OMP_NUM_THREADS=1 for worker processes says) unless
    the worker's environment sets ``DAINR_TASK_THREADS``: the LocalCluster runs one
    slice per worker with that many threads. Two workers with two torch threads each
    on two cores thrash (measured: benchmarks/README.md).
    """
    try:
        from distributed import get_worker

        w = get_worker()
    except (ImportError, ValueError):
        return "local"
    import torch

    n = max(1, int(os.environ.get(TASK_THREADS_ENV) or 1))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return str(w.address)


# ----------------------------------------------------------------------------- the cluster


def cpu_default_workers() -> tuple[int, int]:
    """(workers, torch threads each) of the default CPU LocalCluster.

    Measured on the shared 2-core development machine (benchmarks/README.md, "Volumes
    on Dask"): one worker fitting the slices one after another with two torch threads
    finished a 2-slice DA-INR volume in 60 and 110 s, two single-threaded workers
    fitting both at once in 135 s (memory traffic and two preparations at once cost
    more than torch loses on a second thread). So one worker per 4 cores, each using
    its 4 cores' threads (above ~4 threads torch gains little on one slice's small
    tensors: an assumption, not measured here), at least one worker.
    """
    cores = os.cpu_count() or 1
    threads = min(cores, 4)
    return max(1, cores // threads), threads


def open_client(
    scheduler: str | None = None, workers: int | None = None, threads_per_worker: int | None = None
):
    """A Dask client and a one-line description; the caller closes it (``close_client``).

    ``scheduler`` (``tcp://host:port``) connects to a cluster the user started
    (``dask scheduler`` + ``dask worker``, dask-jobqueue, dask-cuda). Otherwise a
    ``LocalCluster`` of worker processes: one per GPU with its own
    ``CUDA_VISIBLE_DEVICES`` when CUDA is there, else :func:`cpu_default_workers`.
    """
    from distributed import Client

    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as e:
            raise ValueError(f"--scheduler {scheduler}: could not connect ({e})") from None
        n = len(client.scheduler_info().get("workers", {}))
        return client, f"scheduler {scheduler} ({n} workers)"
    gpus = _cuda_count()
    if gpus:
        from distributed import Nanny, Scheduler, SpecCluster

        n = min(workers or gpus, gpus)
        specs = {
            f"gpu{i}": {
                "cls": Nanny,
                "options": {"nthreads": 1, "env": {"CUDA_VISIBLE_DEVICES": str(i)}},
            }
            for i in range(n)
        }
        cluster = SpecCluster(
            workers=specs, scheduler={"cls": Scheduler, "options": {"dashboard_address": None}}
        )
        return Client(cluster), f"local cluster: {n} GPU workers (one per GPU)"
    from distributed import LocalCluster

    n, t = cpu_default_workers()
    n = workers or n
    t = threads_per_worker or t
    # one slice at a time per worker (a Dask thread each), t torch threads for it
    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        env={TASK_THREADS_ENV: str(t), "OMP_NUM_THREADS": str(t)},
    )
    return Client(cluster), f"local cluster: {n} workers x {t} threads (CPU)"


def close_client(client) -> None:
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def _cuda_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        return 0


# ----------------------------------------------------------------------------- the runner


def fit_volume_stream(
    volume: KSpaceVolume,
    spec,
    slices: Sequence[int] | None = None,
    *,
    client=None,
    scheduler: str | None = None,
    workers: int | None = None,
    threads_per_worker: int | None = None,
    virtual_coils: int | None = None,
    retries: int = 1,
    stop=None,
    poll_seconds: float = 0.2,
) -> Iterator[VolumeEvent]:
    """:class:`VolumeStarted`, then a :class:`SliceResult` per slice as it completes.

    A failed slice yields :class:`SliceFailed` and is resubmitted ``retries`` times
    (the others go on); one that still fails is reported and left out. When ``stop``
    (a :class:`dainr.loop.StopRequest`) is requested, pending slices are cancelled and
    the stream ends; finished ones have been yielded already.
    """
    from distributed import as_completed

    slices = list(range(volume.n_slices)) if slices is None else list(slices)
    own = client is None
    desc = ""
    if own:
        client, desc = open_client(scheduler, workers, threads_per_worker)
    else:
        desc = f"client {client.scheduler.address}"
    futures: dict = {}
    try:
        info_workers = sorted(client.scheduler_info().get("workers", {}))
        yield VolumeStarted(slices, desc, info_workers)

        def submit(z: int, attempt: int):
            # scatter only this slice's arrays; pure=False: a retry must run again
            fut = client.submit(
                fit_slice,
                volume.slice(z),
                spec,
                z,
                virtual_coils,
                attempt,
                pure=False,
                key=f"dainr-slice-{z}-try{attempt}",
            )
            futures[fut] = (z, attempt)
            return fut

        ac = as_completed([submit(z, 1) for z in slices], with_results=False)
        # polled rather than iterated, so that a stop request is seen within a fraction
        # of a second even while every worker is busy with a long slice
        while not ac.is_empty():
            if stop is not None and stop.requested:
                break
            if not ac.has_ready():
                time.sleep(poll_seconds)
                continue
            for fut in ac.next_batch(block=False):
                z, attempt = futures.pop(fut)
                if fut.status == "finished":
                    yield fut.result()
                    continue
                err = _describe_error(fut)
                again = attempt <= retries
                log.warning(
                    "slice %d failed on try %d: %s%s",
                    z,
                    attempt,
                    err,
                    " (retrying)" if again else "",
                )
                yield SliceFailed(z, err, again, attempt)
                if again:
                    ac.add(submit(z, attempt + 1))
    finally:
        for fut in list(futures):
            fut.cancel()
        if own:
            close_client(client)


def _describe_error(fut) -> str:
    try:
        e = fut.exception(timeout=5)
    except Exception as x:  # the worker died: distributed says so here
        e = x
    return f"{e.__class__.__name__}: {e}" if e is not None else f"task {fut.status}"


# ----------------------------------------------------------------------------- the output


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

    def write(self, r: SliceResult) -> None:
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


def reconstruct_volume(
    data: KSpaceVolume | str | os.PathLike,
    method: str | None = None,
    *,
    out: str | os.PathLike | None = None,
    slices: Sequence[int] | str | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    virtual_coils: int | None = None,
    client=None,
    seed: int = 0,
    spokes_per_frame: int | None = None,
    device: str | None = "auto",
    **overrides,
) -> VolumeReconstruction:
    """Python API: fit every (or the selected) slice on Dask; write ``out`` when given.

    ``overrides`` set config fields of the method by name (``steps=300``).
    """
    import tempfile

    from .methods import DEFAULT_METHOD
    from .session import FitSpec

    vol = data if isinstance(data, KSpaceVolume) else load_volume(data)
    if not isinstance(slices, (list, tuple)):
        slices = parse_slices(slices, vol.n_slices, vol.source)
    spec = FitSpec(
        method=method or DEFAULT_METHOD,
        overrides=overrides,
        seed=seed,
        spokes_per_frame=spokes_per_frame,
        device=device,
    )
    tmp = None
    if out is None:
        tmp = tempfile.TemporaryDirectory()
        out = Path(tmp.name) / "volume.h5"
    try:
        run_volume(
            vol,
            spec,
            list(slices),
            out,
            client=client,
            scheduler=scheduler,
            workers=workers,
            virtual_coils=virtual_coils,
        )
        return read_volume_recon(out)
    finally:
        if tmp is not None:
            tmp.cleanup()


def n_frames_of(vol: KSpaceVolume, spokes_per_frame: int | None) -> int:
    spf = spokes_per_frame or vol.default_spokes_per_frame()
    n = vol.n_spokes // spf
    if n < 1:
        raise InputError(
            vol.source,
            None,
            f"{vol.n_spokes} spokes per slice are fewer than {spf} spokes per frame",
        )
    return n


def run_volume(
    vol: KSpaceVolume,
    spec,
    slices: list[int],
    out: str | os.PathLike,
    *,
    resume: bool = False,
    client=None,
    scheduler: str | None = None,
    workers: int | None = None,
    virtual_coils: int | None = None,
    stop=None,
    input_path=None,
    on_event=None,
) -> tuple[Path, bool, list[SliceFailed]]:
    """Fit ``slices`` into the volume output ``out`` (or resume it); (path, complete, failures).

    ``on_event`` sees every :class:`VolumeEvent` (a progress bar, the plugin's layer).
    """
    t0 = time.perf_counter()
    if resume:
        output, todo = VolumeOutput.resume(out)
        method = output.attr("method")
        if method and method != spec.method:
            output.close()
            raise InputError(
                out,
                "attribute method",
                f"--resume: the volume was started with {method}, not {spec.method}",
            )
        if output.n_frames != n_frames_of(vol, spec.spokes_per_frame):
            output.close()
            raise InputError(
                out,
                "/recon",
                "--resume: the volume's frames differ from this binning (--spokes-per-frame)",
            )
    else:
        attrs = {k: v for k, v in vol.attrs.items() if k != "spokes_per_frame"}
        attrs |= {"layout": vol.layout, "n_slices_in_input": vol.n_slices}
        if vol.pixel_size_mm:
            attrs["pixel_size_mm"] = list(vol.pixel_size_mm)
        if virtual_coils:
            attrs["virtual_coils"] = int(virtual_coils)
        output = VolumeOutput.create(
            out,
            slices,
            n_frames_of(vol, spec.spokes_per_frame),
            vol.image_shape,
            attrs,
            input_path=input_path,
        )
        todo = list(slices)
    failures: list[SliceFailed] = []
    cluster = "none (nothing left to fit)"
    try:
        if todo:
            for ev in fit_volume_stream(
                vol,
                spec,
                todo,
                client=client,
                scheduler=scheduler,
                workers=workers,
                virtual_coils=virtual_coils,
                stop=stop,
            ):
                if isinstance(ev, VolumeStarted):
                    cluster = ev.cluster
                elif isinstance(ev, SliceResult):
                    output.write(ev)
                elif isinstance(ev, SliceFailed) and not ev.retrying:
                    failures.append(ev)
                if on_event is not None:
                    on_event(ev)
    finally:
        complete = (
            output.finish(time.perf_counter() - t0, cluster) if output.file is not None else False
        )
    return Path(out), complete, failures


def load_volume(path: str | os.PathLike, **options) -> KSpaceVolume:
    """Any supported input as a volume: ISMRMRD, BART .cfl, or a 2-D file as one slice."""
    from .io import load_kspace_or_volume

    v = load_kspace_or_volume(path, **options)
    return v if isinstance(v, KSpaceVolume) else KSpaceVolume.from_kspace(v)


def grid_slices(
    vol: KSpaceVolume,
    spokes_per_frame: int | None = None,
    slices: Sequence[int] | None = None,
    backend: str = "auto",
) -> np.ndarray:
    """Gridding of each slice ``[F, Z, ny, nx]`` (the quick preview and the baseline)."""
    from .prepare import prepare_series

    slices = range(vol.n_slices) if slices is None else slices
    out = []
    for z in slices:
        prep = prepare_series(vol.slice(z), spokes_per_frame, device="cpu", backend=backend)
        out.append((prep.gridding / prep.scale).cpu().numpy())
    return np.stack(out, axis=1).astype(np.complex64)


__all__ = [
    "KSpaceVolume",
    "SliceFailed",
    "SliceResult",
    "VolumeOutput",
    "VolumeReconstruction",
    "VolumeStarted",
    "cpu_default_workers",
    "fit_slice",
    "fit_volume_stream",
    "grid_slices",
    "is_volume_recon",
    "load_volume",
    "open_client",
    "parse_slices",
    "read_volume_recon",
    "reconstruct_volume",
    "run_volume",
]


def describe_volume(path: str | os.PathLike, spokes_per_frame: int | None = None) -> str:
    """``dainr info`` of raw input: layout, slices/partitions, spokes, coils, frames."""
    vol = load_volume(path)
    spf = spokes_per_frame or vol.default_spokes_per_frame()
    n_frames, left = divmod(vol.n_spokes, spf)
    what = {
        "stack-of-stars": "kz partitions (slices after the inverse DFT over kz)",
        "multi-slice": "2-D slices",
        "single": "slice",
    }[vol.layout]
    lines = [
        f"{path}: {vol.attrs.get('source_format', 'raw')} radial k-space, {vol.layout}",
        f"  slices       {vol.n_slices} {what}",
        f"  coils        {vol.n_coils}",
        f"  spokes       {vol.n_spokes} per slice x {vol.n_readout} samples",
        f"  image        {vol.image_shape[0]} x {vol.image_shape[1]}",
        f"  frames       {n_frames} at {spf} spokes/frame"
        + (f" ({left} spokes dropped)" if left else ""),
    ]
    if vol.pixel_size_mm:
        dz, dy, dx = vol.pixel_size_mm
        lines.append(f"  voxel        {dz:g} x {dy:g} x {dx:g} mm (z, y, x)")
    lines += [
        f"  {k:<12} {v}" for k, v in vol.attrs.items() if k not in ("source_format", "layout")
    ]
    return "\n".join(lines)


def describe_volume_recon(path: str | os.PathLike) -> str:
    r = read_volume_recon(path)
    F, Z, ny, nx = r.frames.shape
    secs = ", ".join(f"{z}: {s:.1f}" for z, s in zip(r.slices, r.seconds) if np.isfinite(s))
    lines = [
        f"{path}: volume reconstruction by {r.method}" + (" (partial)" if r.partial else ""),
        f"  recon        {F} frames x {Z} slices x {ny} x {nx}",
        f"  slices       {r.slices} ({len(r.slices_done)} done)",
        f"  seconds      {secs or 'none done'}",
        f"  cluster      {r.attrs.get('cluster', '?')}",
        f"  wall time    {float(r.attrs.get('wall_seconds', 0.0)):.1f} s",
        f"  config       {r.config}",
    ]
    return "\n".join(lines)
