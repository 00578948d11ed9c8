"""``--ensemble K``: K fits that differ only in their seed, and how much they disagree.

Each member is an ordinary fit through :func:`dainr.session.fit_stream` with seed
``seed + i``, so the members differ in their networks' initialisation, their frame order
and their held-out spokes. The result is the members' complex mean and, per pixel and
frame, the standard deviation of their magnitudes: where the data pin the image down
the members agree, where the fit had to guess they do not.

Members run on Dask workers (:func:`dainr.volume.open_client`, the volume runner's
cluster: one worker per GPU, or single-threaded CPU workers) when ``parallel`` allows,
else one after the other in this process with the usual live messages.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .data import KSpaceData
from .loop import Done, Message, StopRequest
from .result import Reconstruction
from .session import FitSpec, Prepared, fit_stream

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemberDone:
    """One member finished (``index`` 0-based of ``count``)."""

    index: int
    count: int
    result: Reconstruction


def member_spec(spec: FitSpec, index: int) -> FitSpec:
    return dataclasses.replace(spec, seed=(spec.seed or 0) + index)


def fit_member(data: KSpaceData, spec: FitSpec, index: int) -> Reconstruction:
    """One member to the end (what a Dask task runs)."""
    from .volume import _limit_threads_to_worker

    _limit_threads_to_worker()
    for m in fit_stream(data, member_spec(spec, index)):
        if isinstance(m, Done):
            return m.result
    raise RuntimeError(f"ensemble member {index}: the fit ended without a result")


def combine(
    members: list[Reconstruction], seconds: float | None = None, k: int | None = None
) -> Reconstruction:
    """The members' complex mean with the std of their magnitudes (None for one member)."""
    if not members:
        raise ValueError("an ensemble needs at least one finished member")
    first = members[0]
    stack = np.stack([m.frames for m in members])
    std = None
    if len(members) > 1:
        std = np.abs(stack).std(axis=0, ddof=1).astype(np.float32)
    attrs = dict(first.attrs)
    attrs["ensemble_chosen_steps"] = json.dumps([m.chosen_step for m in members])
    attrs["ensemble_steps_done"] = json.dumps([m.steps_done for m in members])
    return dataclasses.replace(
        first,
        frames=stack.mean(axis=0).astype(np.complex64),
        std=std,
        ensemble=len(members),
        seconds=sum(m.seconds for m in members) if seconds is None else seconds,
        peak_memory_bytes=max(m.peak_memory_bytes for m in members),
        partial=any(m.partial for m in members) or (k is not None and len(members) < k),
        attrs=attrs,
    )


def ensemble_stream(
    data: KSpaceData | str | os.PathLike,
    spec: FitSpec,
    k: int,
    *,
    stop: StopRequest | None = None,
    parallel: bool | None = None,
    client=None,
    scheduler: str | None = None,
    workers: int | None = None,
    snapshot_every: int | None = None,
    snapshot_seconds: float | None = None,
) -> Iterator[Prepared | Message | MemberDone]:
    """Each member's messages (sequential) or :class:`MemberDone` as members finish
    (parallel), then one :class:`Done` with the combined result.

    ``parallel``: None = on Dask when a ``client`` or ``scheduler`` is given or the machine
    has several GPUs (one member per GPU), else one after the other here, with live
    progress: on the 2-core development machine a LocalCluster's start-up cost more than
    it saved (benchmarks/README.md, "Held-out spokes and ensembles"). A stop
    request ends the ensemble with the members finished so far (the running one's
    partial result included when sequential).
    """
    from .io import load_kspace

    if k < 1:
        raise ValueError(f"ensemble size must be at least 1, got {k}")
    stop = stop or StopRequest()
    if not isinstance(data, KSpaceData):
        data = load_kspace(data, spokes_per_frame=spec.spokes_per_frame)
    if parallel is None:
        from .volume import _cuda_count

        parallel = k > 1 and (client is not None or scheduler is not None or _cuda_count() > 1)
    t0 = time.perf_counter()
    members: list[tuple[int, Reconstruction]] = []
    if parallel:
        yield from _parallel(data, spec, k, members, stop, client, scheduler, workers)
    else:
        for i in range(k):
            if stop.requested:
                break
            for m in fit_stream(
                data,
                member_spec(spec, i),
                stop=stop,
                snapshot_every=snapshot_every,
                snapshot_seconds=snapshot_seconds,
            ):
                if isinstance(m, Done):
                    members.append((i, m.result))
                    yield MemberDone(i, k, m.result)
                else:
                    yield m
    # members in seed order, whatever order they finished in
    ordered = [r for _, r in sorted(members, key=lambda p: p[0])]
    yield Done(combine(ordered, time.perf_counter() - t0, k))


def _parallel(data, spec, k, members, stop, client, scheduler, workers) -> Iterator[MemberDone]:
    from distributed import as_completed

    from .volume import close_client, open_client

    own = client is None
    if own:
        client, desc = open_client(scheduler, workers)
        log.info("ensemble of %d on %s", k, desc)
    futures = {}
    try:
        shared = client.scatter(data, broadcast=True)
        for i in range(k):
            fut = client.submit(fit_member, shared, spec, i, pure=False, key=f"dainr-member-{i}")
            futures[fut] = i
        ac = as_completed(list(futures))
        while not ac.is_empty():
            if stop.requested:
                break
            if not ac.has_ready():
                time.sleep(0.2)
                continue
            for fut in ac.next_batch(block=False):
                i = futures.pop(fut)
                result = fut.result()  # a member's error is the ensemble's error
                members.append((i, result))
                yield MemberDone(i, k, result)
    finally:
        for fut in list(futures):
            fut.cancel()
        if own:
            close_client(client)


def reconstruct_ensemble(
    data: KSpaceData | str | os.PathLike, spec: FitSpec, k: int, **kw
) -> Reconstruction:
    """Run an ensemble to the end and return its combined result."""
    for m in ensemble_stream(data, spec, k, **kw):
        if isinstance(m, Done):
            return m.result
    raise RuntimeError("the ensemble ended without a result")


__all__ = [
    "MemberDone",
    "combine",
    "ensemble_stream",
    "fit_member",
    "member_spec",
    "reconstruct_ensemble",
]
