"""One path into a fit, shared by the CLI, the Python API, the plugin and volume tasks.

:func:`fit_stream` seeds once, prepares the series (binning, coil maps, density
compensation, operator), builds the method, drives :func:`dainr.loop.run_fit` and
releases device memory however the fit ends. Callers describe the fit with a
:class:`FitSpec` and never touch ``torch.cuda`` or the prepared series themselves.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import seed_everything
from .config import build_config
from .data import KSpaceData
from .holdout import DEFAULT_FRACTION
from .loop import Message, RunOptions, StopRequest, run_fit
from .methods import DEFAULT_METHOD, get_method
from .methods.base import Method


@dataclass(frozen=True)
class FitSpec:
    """What defines one fit, whatever the entry point (CLI flags, API keywords, dock controls)."""

    method: str = DEFAULT_METHOD
    #: the method's config object, or a dict of its fields; None = the published defaults
    config: Any = None
    #: config fields set by name on top of ``config`` (``{"steps": 200}``), already typed
    overrides: Mapping[str, Any] = field(default_factory=dict)
    spokes_per_frame: int | None = None
    #: an array [coils, ny, nx], a path to an .h5 with /coil_maps, or None (file's, else estimated)
    coil_maps: np.ndarray | str | os.PathLike | None = None
    #: auto (the file's /dcf when present, else ramp), ramp, pipe-menon or file
    dcf: str = "auto"
    #: radial gradient delays: off (the file's trajectory as is) or auto (RING estimate
    #: from the data, trajectory corrected before binning; :mod:`dainr.physics.delays`)
    delays: str = "off"
    device: str | None = "auto"
    backend: str = "auto"
    #: one seed for everything random: network initialisation, frame order, held-out spokes
    seed: int | None = 0
    #: fraction of every frame's spokes held out to choose the returned state and stop
    #: early (:mod:`dainr.holdout`); None: the method's
    #: default (``Method.holdout_by_default``: none held out), e.g. 0.05 to hold 5% out
    holdout: float | None = None
    #: steps between held-out evaluations; None: ceil(steps / 20)
    holdout_every: int | None = None
    #: evaluations without a better held-out loss before the fit stops; None: 10; 0: never
    early_stop: int | None = None

    @classmethod
    def from_options(
        cls, method: str = DEFAULT_METHOD, *, config: Any = None, **options: Any
    ) -> FitSpec:
        """A spec from keywords: this class's fields by name (``spokes_per_frame``,
        ``seed``, ...; None leaves one at its default, but for ``seed`` and ``device``);
        every other keyword sets a config field of the method (``steps=200``)."""
        names = {f.name for f in fields(cls)} - {"method", "config", "overrides"}
        spec = {k: options.pop(k) for k in list(options) if k in names}
        overrides = dict(options.pop("overrides", None) or {}) | options
        spec = {k: v for k, v in spec.items() if v is not None or k in _NONE_MEANS_SOMETHING}
        return cls(method=method, config=config, overrides=overrides, **spec)


#: FitSpec fields where an explicit None is a choice, not "unset" (seed None: no seeding)
_NONE_MEANS_SOMETHING = frozenset({"seed", "device"})


@dataclass(frozen=True)
class Prepared:
    """Yielded once the method is built, before its first step."""

    method: Method
    total: int  #: steps the method will run
    n_frames: int
    device: str  #: e.g. "cpu", "cuda:0"


def build_method(data: KSpaceData | str | os.PathLike, spec: FitSpec) -> Method:
    """Load (if a path), bin, prepare and build the method of ``spec``, seeded once."""
    from .io import load_coil_maps, load_kspace
    from .prepare import prepare_series

    if not isinstance(data, KSpaceData):
        data = load_kspace(data, spokes_per_frame=spec.spokes_per_frame)
    coil_maps = spec.coil_maps
    if isinstance(coil_maps, (str, Path)):
        coil_maps = load_coil_maps(coil_maps, data.n_coils, data.image_shape)
    method_cls, config_cls = get_method(spec.method)
    config = build_config(config_cls, spec.config, spec.overrides)
    holdout = spec.holdout
    if holdout is None:
        default = method_cls.iterative and method_cls.holdout_by_default
        holdout = DEFAULT_FRACTION if default else 0.0
    prep = prepare_series(
        data,
        spec.spokes_per_frame,
        coil_maps=coil_maps,
        dcf_method=spec.dcf,
        device=spec.device,
        backend=spec.backend,
        holdout=holdout,
        holdout_seed=spec.seed or 0,
        delays=spec.delays,
    )
    if spec.seed is not None:
        seed_everything(spec.seed)
    return method_cls(prep, config)


def fit_stream(
    data: KSpaceData | str | os.PathLike,
    spec: FitSpec,
    options: RunOptions | None = None,
    *,
    stop: StopRequest | None = None,
) -> Iterator[Prepared | Message]:
    """:class:`Prepared`, then the loop's Stage / Progress / Snapshot / Done messages."""
    method = None
    try:
        t0 = time.perf_counter()
        method = build_method(data, spec)
        # Preparation (loading, binning, coil maps, DA-INR's GRASP prior and features) is
        # part of what the user waits for: run_fit counts it in the result's wall time.
        method.prep.settings["seconds"] = round(time.perf_counter() - t0, 3)
        yield Prepared(method, method.total_steps, method.prep.n_frames, str(method.prep.device))
        yield from run_fit(
            method,
            options,
            stop=stop,
            holdout_every=spec.holdout_every,
            early_stop=spec.early_stop,
        )
    finally:
        release_device(method)


def messages_only(stream: Iterator[Prepared | Message]) -> Iterator[Message]:
    """``stream`` without its :class:`Prepared` message (for consumers of the loop's messages)."""
    for m in stream:
        if not isinstance(m, Prepared):
            yield m


def release_device(method: Method | None) -> None:
    """Drop the method's large tensors and return cached GPU blocks to the driver."""
    if method is None:
        return
    from .device import free_device_memory

    method.release()
    free_device_memory(method.prep.device)


__all__ = ["FitSpec", "Prepared", "build_method", "fit_stream", "messages_only", "release_device"]
