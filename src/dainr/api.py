"""The Python API for notebooks: ``dainr.fit`` (a stream of messages) and ``dainr.reconstruct``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .config import from_dict, to_dict
from .data import KSpaceData
from .fit import Message, StopRequest, drain, run_fit, seed_everything
from .io import load_coil_maps, load_kspace
from .methods import DEFAULT_METHOD, get_method
from .prepare import prepare_series
from .result import Reconstruction


def make_method(
    data: KSpaceData | str | os.PathLike,
    method: str = DEFAULT_METHOD,
    *,
    config: Any = None,
    spokes_per_frame: int | None = None,
    coil_maps: np.ndarray | str | os.PathLike | None = None,
    dcf: str = "ramp",
    device: str | None = "auto",
    backend: str = "auto",
    seed: int | None = 0,
    **overrides,
):
    """Load (if a path), bin, prepare and build ``method`` with its config.

    ``overrides`` set config fields by name (``steps=200``); unknown names are an error.
    ``seed`` fixes the RNGs before the networks are initialised (None leaves them as
    they are), so that the same seed gives the same initial model in any entry point.
    """
    if not isinstance(data, KSpaceData):
        data = load_kspace(data, spokes_per_frame=spokes_per_frame)
    if isinstance(coil_maps, (str, Path)):
        coil_maps = load_coil_maps(coil_maps, data.n_coils, data.image_shape)
    method_cls, config_cls = get_method(method)
    if config is None:
        config = config_cls()
    elif isinstance(config, dict):
        config = from_dict(config_cls, config)
    if overrides:
        config = from_dict(config_cls, to_dict(config) | overrides)
    prep = prepare_series(
        data, spokes_per_frame, coil_maps=coil_maps, dcf_method=dcf, device=device, backend=backend
    )
    if seed is not None:
        seed_everything(seed)
    return method_cls(prep, config)


def fit(
    data: KSpaceData | str | os.PathLike,
    method: str = DEFAULT_METHOD,
    *,
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

    ``options`` go to :func:`make_method` (config overrides, spokes_per_frame, ...).
    """
    m = make_method(data, method, seed=seed, **options)
    yield from run_fit(
        m,
        stop=stop,
        seed=seed,
        snapshot_every=snapshot_every,
        snapshot_seconds=snapshot_seconds,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
    )


def reconstruct(data: KSpaceData | str | os.PathLike, method: str = DEFAULT_METHOD, **options) -> Reconstruction:
    """Run a fit to the end and return its :class:`Reconstruction`."""
    return drain(fit(data, method, **options))
