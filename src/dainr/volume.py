"""Volumes: the slices of one acquisition, each fitted on its own, in parallel on Dask.

The volume itself is a :class:`dainr.data.KSpaceVolume` (one :class:`KSpaceData` per
slice); its output file is :class:`dainr.io.volume_output.VolumeOutput`; the cluster
and the submit/poll/cancel loop are :mod:`dainr.cluster`'s. Here:

* :func:`fit_slice` -- the task a Dask worker runs: optional coil compression, then the
  one fit path :func:`dainr.session.fit_stream`, drained to its result. Only that
  slice's k-space travels to the worker.
* :func:`fit_volume_stream` -- a task per slice; :class:`VolumeStarted`, then a
  :class:`SliceResult` per slice as it completes; a failed slice is retried once.
* :func:`run_volume` -- the stream written into a volume output (or a resumed one);
  :func:`dainr.api.reconstruct_volume` is its Python API.

Qt-free and terminal-free: the CLI and the plugin drain :func:`fit_volume_stream`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .cluster import dask_client, limit_threads_to_worker, run_tasks
from .data import KSpaceData, KSpaceVolume
from .errors import FitError, InputError
from .io.volume_output import VolumeOutput

log = logging.getLogger(__name__)


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
    from .loop import drain
    from .physics.compress import compress_coils
    from .session import fit_stream

    t0 = time.perf_counter()
    worker = limit_threads_to_worker()
    if virtual_coils:
        data = compress_coils(data, int(virtual_coils))
    result = drain(fit_stream(data, spec))
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
    slices = list(range(volume.n_slices)) if slices is None else list(slices)
    with dask_client(client, scheduler, workers, threads_per_worker) as (client, desc):
        yield VolumeStarted(slices, desc, sorted(client.scheduler_info().get("workers", {})))

        def submit(z: int, attempt: int):
            # scatter only this slice's arrays; pure=False: a retry must run again
            return client.submit(
                fit_slice,
                volume.slice(z),
                spec,
                z,
                virtual_coils,
                attempt,
                pure=False,
                key=f"dainr-slice-{z}-try{attempt}",
            )

        tasks = run_tasks(
            client, submit, slices, retries=retries, stop=stop, poll_seconds=poll_seconds
        )
        for t in tasks:
            if t.error is None:
                yield t.result
                continue
            log.warning(
                "slice %d failed on try %d: %s%s",
                t.item,
                t.attempt,
                t.error_text,
                " (retrying)" if t.retrying else "",
            )
            yield SliceFailed(t.item, t.error_text, t.retrying, t.attempt)


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
    """Fit ``slices`` of ``vol`` into the volume output ``out``, or finish it.

    Parameters
    ----------
    vol : KSpaceVolume
        The slices' k-space.
    spec : FitSpec
        The fit every slice gets (:class:`dainr.session.FitSpec`).
    slices : list of int
        Volume indices to fit (ignored on ``resume``: the output says which are left).
    out : path
        The volume output (:class:`dainr.io.volume_output.VolumeOutput`).
    resume : bool
        Reopen ``out`` and fit only its missing slices; refused if its method or
        binning differ from ``spec``'s.
    client, scheduler, workers
        The Dask cluster (:func:`dainr.cluster.dask_client`).
    virtual_coils : int, optional
        Compress each slice's coils to this many before its fit.
    stop : StopRequest, optional
        Cancels the pending slices; the finished ones stay in ``out``.
    input_path : path, optional
        The input file, which ``out`` must not overwrite.
    on_event : callable, optional
        Sees every :class:`VolumeStarted`, :class:`SliceResult` and :class:`SliceFailed`.

    Returns
    -------
    path : Path
        The output written.
    complete : bool
        Whether every slice is in it (its ``partial`` attribute is then false).
    failures : list of SliceFailed
        Slices that failed on every try.
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
    """Any supported input as a volume.

    Parameters
    ----------
    path : path
        ISMRMRD (``.mrd``, or ``.h5`` holding ``/dataset``), BART ``.cfl``/``.hdr``, or a
        2-D k-space file (``.h5`` contract, ``.mat``), which becomes one slice.
    **options
        Passed to the reader (e.g. ``trajectory=`` and ``image_shape=`` for BART).

    Returns
    -------
    KSpaceVolume
    """
    from .io import load_kspace_or_volume

    v = load_kspace_or_volume(path, **options)
    return v if isinstance(v, KSpaceVolume) else KSpaceVolume.from_kspace(v)


def grid_slices(
    vol: KSpaceVolume,
    spokes_per_frame: int | None = None,
    slices: Sequence[int] | None = None,
    backend: str = "auto",
) -> np.ndarray:
    """Gridding of each slice: the quick preview and the baseline.

    Parameters
    ----------
    vol : KSpaceVolume
    spokes_per_frame : int, optional
        Binning (default: the volume's, else 13).
    slices : sequence of int, optional
        Volume indices (default: all).
    backend : str
        NUFFT backend (``auto``, ``finufft``, ``torch``, ...).

    Returns
    -------
    ndarray
        complex64 ``[frames, slices, ny, nx]`` in the input's intensity scale.
    """
    from .prepare import prepare_series

    slices = range(vol.n_slices) if slices is None else slices
    out = []
    for z in slices:
        prep = prepare_series(vol.slice(z), spokes_per_frame, device="cpu", backend=backend)
        out.append((prep.gridding / prep.scale).cpu().numpy())
    return np.stack(out, axis=1).astype(np.complex64)


__all__ = [
    "SliceFailed",
    "SliceResult",
    "VolumeStarted",
    "fit_slice",
    "fit_volume_stream",
    "grid_slices",
    "load_volume",
    "parse_slices",
    "run_volume",
]
