"""The Python API for notebooks: ``dainr.fit`` (a stream of messages) and ``dainr.reconstruct``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from .data import KSpaceData
from .loop import Message, Method, StopRequest, drain
from .methods import DEFAULT_METHOD
from .result import Reconstruction
from .session import FitSpec, build_method, fit_stream, messages_only

#: make_method / fit keywords that describe the preparation, not the method's config
_SPEC_KEYS = (
    "spokes_per_frame", "coil_maps", "dcf", "device", "backend",
    "holdout", "holdout_every", "early_stop",
)  # fmt: skip


def _checked(data: KSpaceData | str | os.PathLike) -> KSpaceData | str | os.PathLike:
    """In-memory data get the checks a file gets from its reader (paths are checked on load)."""
    return data.validated() if isinstance(data, KSpaceData) else data


def _spec(method: str, config: Any, seed: int | None, options: dict[str, Any]) -> FitSpec:
    prep = {k: options.pop(k) for k in _SPEC_KEYS if k in options}
    return FitSpec(method=method, config=config, overrides=options, seed=seed, **prep)


def make_method(
    data: KSpaceData | str | os.PathLike,
    method: str = DEFAULT_METHOD,
    *,
    config: Any = None,
    spokes_per_frame: int | None = None,
    coil_maps: np.ndarray | str | os.PathLike | None = None,
    dcf: str = "auto",
    device: str | None = "auto",
    backend: str = "auto",
    seed: int | None = 0,
    **overrides,
) -> Method:
    """Load (if a path), bin, prepare and build ``method`` with its config.

    ``overrides`` set config fields by name (``steps=200``); unknown names and mistyped
    values are errors naming the field. ``seed`` fixes the RNGs before the networks are
    initialised (None leaves them as they are).
    """
    spec = FitSpec(
        method=method,
        config=config,
        overrides=overrides,
        spokes_per_frame=spokes_per_frame,
        coil_maps=coil_maps,
        dcf=dcf,
        device=device,
        backend=backend,
        seed=seed,
    )
    return build_method(_checked(data), spec)


def fit(
    data: KSpaceData | str | os.PathLike,
    method: str = DEFAULT_METHOD,
    *,
    config: Any = None,
    stop: StopRequest | None = None,
    seed: int = 0,
    snapshot_every: int | None = None,
    snapshot_seconds: float | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: str | os.PathLike | None = None,
    **options,
) -> Iterator[Message]:
    """A generator of :class:`Progress` / :class:`Snapshot` / :class:`Done` messages.

    ``options`` are preparation keywords (``spokes_per_frame``, ``coil_maps``, ``dcf``,
    ``device``, ``backend``) and config overrides (``steps=200``).
    """
    spec = _spec(method, config, seed, dict(options))
    return messages_only(
        fit_stream(
            _checked(data),
            spec,
            stop=stop,
            snapshot_every=snapshot_every,
            snapshot_seconds=snapshot_seconds,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            resume=resume,
        )
    )


def reconstruct(
    data: KSpaceData | str | os.PathLike,
    method: str = DEFAULT_METHOD,
    *,
    progress: bool = False,
    ensemble: int = 1,
    parallel: bool | None = None,
    **options,
) -> Reconstruction:
    """Run a fit to the end and return its :class:`Reconstruction`.

    ``ensemble=K`` > 1 fits K seeds (``seed`` .. ``seed + K - 1``) and returns their mean
    with the per-pixel std of their magnitudes in ``std`` (:mod:`dainr.ensemble`;
    ``parallel`` as there).

    ``progress=True`` shows a tqdm bar on stderr (a line per tenth of the steps when
    stderr is a file or a pipe).
    """
    if ensemble != 1:
        return _reconstruct_ensemble(data, method, ensemble, parallel, dict(options))
    messages = fit(data, method, **options)
    if progress:
        from .cli.progress import drain_showing_progress

        return drain_showing_progress(messages)
    return drain(messages)


def _reconstruct_ensemble(
    data, method: str, k: int, parallel: bool | None, opts: dict
) -> Reconstruction:
    from .ensemble import reconstruct_ensemble

    for key in ("checkpoint", "checkpoint_every", "resume"):
        if opts.pop(key, None) is not None:
            raise ValueError(f"{key} is per fit: an ensemble of {k} fits takes none")
    run = {
        key: opts.pop(key) for key in ("stop", "snapshot_every", "snapshot_seconds") if key in opts
    }
    spec = _spec(method, opts.pop("config", None), opts.pop("seed", 0), opts)
    return reconstruct_ensemble(_checked(data), spec, k, parallel=parallel, **run)
