"""Dask for independent fits: the cluster, its workers' threads, one submit/poll/cancel loop.

Volumes (a task per slice) and ensembles (a task per seed) run the same way:

* :func:`dask_client` -- the caller's client, a scheduler the user started, or a
  ``LocalCluster`` sized for the machine (:func:`cpu_default_workers`, one worker per
  GPU on CUDA), closed afterwards when it was opened here;
* :func:`run_tasks` -- submits one task per item, yields a :class:`TaskOutcome` per
  task as it ends, resubmits failed ones, and cancels what is pending on a stop request;
* :func:`limit_threads_to_worker` -- what a task calls first on its worker.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

#: worker environment variable: torch threads of each task (the LocalCluster sets it)
TASK_THREADS_ENV = "DAINR_TASK_THREADS"


def limit_threads_to_worker() -> str:
    """Set the task's torch threads; returns the worker's address ("local" outside Dask).

    A Dask worker with ``--nthreads T`` runs T tasks at once, so each gets one torch
    thread (as distributed's own OMP_NUM_THREADS=1 for worker processes says) unless
    the worker's environment sets ``DAINR_TASK_THREADS``: the LocalCluster runs one
    task per worker with that many threads. Two workers with two torch threads each on
    two cores thrash (benchmarks/README.md, "Volumes").
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


def cpu_default_workers() -> tuple[int, int]:
    """(workers, torch threads each) of the default CPU LocalCluster.

    One worker fitting slices one after another with two torch threads beat two
    single-threaded workers fitting two at once on a 2-core CPU (benchmarks/README.md,
    "Volumes"): memory traffic and two preparations at once cost more than torch loses
    on a second thread. So one worker per 4 cores, each with its 4 cores' threads
    (above ~4 threads torch gains little on one slice's small tensors: an assumption,
    not measured), at least one worker.
    """
    cores = os.cpu_count() or 1
    threads = min(cores, 4)
    return max(1, cores // threads), threads


def cuda_count() -> int:
    """CUDA devices visible to this process (0 without torch's CUDA)."""
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        return 0


def open_client(
    scheduler: str | None = None, workers: int | None = None, threads_per_worker: int | None = None
):
    """A Dask client and a one-line description; the caller closes it (:func:`close_client`).

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
    gpus = cuda_count()
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
    # one task at a time per worker (a Dask thread each), t torch threads for it
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


@contextlib.contextmanager
def dask_client(
    client=None,
    scheduler: str | None = None,
    workers: int | None = None,
    threads_per_worker: int | None = None,
) -> Iterator[tuple[Any, str]]:
    """``(client, description)``: ``client`` itself when given, else one opened by
    :func:`open_client` and closed on leaving."""
    if client is not None:
        yield client, f"client {client.scheduler.address}"
        return
    client, desc = open_client(scheduler, workers, threads_per_worker)
    try:
        yield client, desc
    finally:
        close_client(client)


@dataclass(frozen=True)
class TaskOutcome:
    """One task that ended: its item, which try it was, and its result or its error."""

    item: Any
    attempt: int
    result: Any = None
    error: BaseException | None = None
    retrying: bool = False  #: the item was submitted again

    @property
    def error_text(self) -> str:
        e = self.error
        return f"{e.__class__.__name__}: {e}"


def run_tasks(
    client,
    submit: Callable[[Any, int], Any],
    items: Iterable[Any],
    *,
    retries: int = 0,
    stop=None,
    poll_seconds: float = 0.2,
) -> Iterator[TaskOutcome]:
    """Submit ``submit(item, attempt)`` (a future) for every item; yield outcomes as they end.

    A failed task is resubmitted up to ``retries`` times (its outcome says so). When
    ``stop`` (a :class:`dainr.loop.StopRequest`) is requested, the pending tasks are
    cancelled and the stream ends; so they are when the consumer stops iterating.
    """
    from distributed import as_completed

    futures: dict = {}

    def send(item, attempt: int):
        fut = submit(item, attempt)
        futures[fut] = (item, attempt)
        return fut

    try:
        ac = as_completed([send(item, 1) for item in items], with_results=False)
        # polled rather than iterated, so that a stop request is seen within a fraction
        # of a second even while every worker is busy with a long task
        while not ac.is_empty():
            if stop is not None and stop.requested:
                break
            if not ac.has_ready():
                time.sleep(poll_seconds)
                continue
            for fut in ac.next_batch(block=False):
                item, attempt = futures.pop(fut)
                if fut.status == "finished":
                    yield TaskOutcome(item, attempt, result=fut.result())
                    continue
                again = attempt <= retries
                yield TaskOutcome(item, attempt, error=_task_error(fut), retrying=again)
                if again:
                    ac.add(send(item, attempt + 1))
    finally:
        for fut in list(futures):
            fut.cancel()


def _task_error(fut) -> BaseException:
    try:
        e = fut.exception(timeout=5)
    except Exception as x:  # the worker died: distributed says so here
        e = x
    return e if e is not None else RuntimeError(f"task {fut.status}")


__all__ = [
    "TASK_THREADS_ENV",
    "TaskOutcome",
    "close_client",
    "cpu_default_workers",
    "cuda_count",
    "dask_client",
    "limit_threads_to_worker",
    "open_client",
    "run_tasks",
]
