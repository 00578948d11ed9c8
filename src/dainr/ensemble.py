"""``--ensemble K``: K fits that differ only in their seed, and how much they disagree.

Each member is an ordinary fit through :func:`dainr.session.fit_stream` with seed
``seed + i``, so the members differ in their networks' initialisation, their frame order
and their held-out spokes. The result is the members' complex mean and, per pixel and
frame, the standard deviation of their magnitudes: where the data pin the image down
the members agree, where the fit had to guess they do not.

Members run on Dask workers (:mod:`dainr.cluster`, as volume slices do: one worker per
GPU, or the CPU cluster) when ``parallel`` allows, else one after the other in this
process with the usual live messages.
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

from .cluster import cuda_count, dask_client, limit_threads_to_worker, run_tasks
from .data import KSpaceData
from .errors import FitStopped
from .loop import Done, Message, RunOptions, StopRequest, drain
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
    limit_threads_to_worker()
    return drain(fit_stream(data, member_spec(spec, index)))


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
    options: RunOptions | None = None,
    *,
    stop: StopRequest | None = None,
    parallel: bool | None = None,
    client=None,
    scheduler: str | None = None,
    workers: int | None = None,
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
        parallel = k > 1 and (client is not None or scheduler is not None or cuda_count() > 1)
    t0 = time.perf_counter()
    members: list[tuple[int, Reconstruction]] = []
    if parallel:
        yield from _parallel(data, spec, k, members, stop, client, scheduler, workers)
    else:
        for i in range(k):
            if stop.requested:
                break
            try:
                for m in fit_stream(data, member_spec(spec, i), options, stop=stop):
                    if isinstance(m, Done):
                        members.append((i, m.result))
                        yield MemberDone(i, k, m.result)
                    else:
                        yield m
            except FitStopped:  # stopped before this member's first step: keep the others
                break
    # members in seed order, whatever order they finished in
    ordered = [r for _, r in sorted(members, key=lambda p: p[0])]
    yield Done(combine(ordered, time.perf_counter() - t0, k))


def _parallel(data, spec, k, members, stop, client, scheduler, workers) -> Iterator[MemberDone]:
    with dask_client(client, scheduler, workers) as (client, desc):
        log.info("ensemble of %d on %s", k, desc)
        shared = client.scatter(data, broadcast=True)

        def submit(i: int, attempt: int):
            return client.submit(fit_member, shared, spec, i, pure=False, key=f"dainr-member-{i}")

        for t in run_tasks(client, submit, range(k), stop=stop):
            if t.error is not None:  # a member's error is the ensemble's error
                raise t.error
            members.append((t.item, t.result))
            yield MemberDone(t.item, k, t.result)


def reconstruct_ensemble(
    data: KSpaceData | str | os.PathLike, spec: FitSpec, k: int, *args, **kw
) -> Reconstruction:
    """Run an ensemble to the end and return its combined result."""
    return drain(ensemble_stream(data, spec, k, *args, **kw))


__all__ = [
    "MemberDone",
    "combine",
    "ensemble_stream",
    "fit_member",
    "member_spec",
    "reconstruct_ensemble",
]
