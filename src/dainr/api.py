"""The Python API for notebooks: ``dainr.fit`` (a stream of messages), ``dainr.reconstruct``
and ``dainr.reconstruct_volume``."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .data import KSpaceData, KSpaceVolume
from .io.volume_output import VolumeReconstruction, read_volume_recon
from .loop import Message, RunOptions, StopRequest, drain
from .methods import DEFAULT_METHOD
from .methods.base import Method
from .result import Reconstruction
from .session import FitSpec, build_method, fit_stream, messages_only


def _checked(data: KSpaceData | str | os.PathLike) -> KSpaceData | str | os.PathLike:
    """In-memory data get the checks a file gets from its reader (paths are checked on load)."""
    return data.validated() if isinstance(data, KSpaceData) else data


def make_method(
    data: KSpaceData | str | os.PathLike,
    method: str = DEFAULT_METHOD,
    *,
    config: Any = None,
    seed: int | None = 0,
    **options,
) -> Method:
    """Load (if a path), bin, prepare and build ``method``, ready for its first step.

    ``options`` are :class:`~dainr.session.FitSpec` fields (``spokes_per_frame``,
    ``coil_maps``, ``dcf``, ``device``, ``backend``, ...) and config fields by name
    (``steps=200``); unknown names and mistyped values are errors naming the field.
    ``seed`` fixes the RNGs before the networks are initialised (None leaves them as
    they are). Work the method does before its first step (DA-INR's GRASP prior) is
    done here.
    """
    built = build_method(
        _checked(data), FitSpec.from_options(method, config=config, seed=seed, **options)
    )
    built.prepare()
    return built


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
    """A generator of :class:`Stage` / :class:`Progress` / :class:`Snapshot` / :class:`Done`
    messages.

    ``options`` are :class:`~dainr.session.FitSpec` fields (``spokes_per_frame``,
    ``coil_maps``, ``dcf``, ``device``, ``backend``, ``holdout``, ...) and config
    fields by name (``steps=200``).
    """
    run = RunOptions(snapshot_every, snapshot_seconds, checkpoint, checkpoint_every, resume)
    spec = FitSpec.from_options(method, config=config, seed=seed, **options)
    return messages_only(fit_stream(_checked(data), spec, run, stop=stop))


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
    stop = opts.pop("stop", None)
    run = RunOptions(opts.pop("snapshot_every", None), opts.pop("snapshot_seconds", None))
    spec = FitSpec.from_options(
        method, config=opts.pop("config", None), seed=opts.pop("seed", 0), **opts
    )
    return reconstruct_ensemble(_checked(data), spec, k, run, parallel=parallel, stop=stop)


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
    """Fit every (or the selected) slice of a volume on Dask.

    Parameters
    ----------
    data : KSpaceVolume or path
        The volume, or any input :func:`load_volume` reads (a 2-D file is one slice).
    method : str, optional
        A registered method (:func:`dainr.available_methods`); DA-INR by default.
    out : path, optional
        Where to write the volume output (kept); a temporary file otherwise.
    slices : sequence of int or str, optional
        Volume indices, or text such as ``"3,5-9"``; all slices by default.
    scheduler : str, optional
        ``tcp://host:port`` of a Dask scheduler the user started.
    workers : int, optional
        Size of the local cluster (default: :func:`dainr.cluster.cpu_default_workers`).
    virtual_coils : int, optional
        Compress each slice's coils to this many (SVD) before its fit.
    client : distributed.Client, optional
        A client to use instead of opening one.
    seed : int
        The seed of every slice's fit.
    spokes_per_frame : int, optional
        Binning (default: the file's, else 13).
    device : str
        ``auto``, ``cpu``, ``cuda``, ...
    **overrides
        Config fields of the method by name (``steps=300``).

    Returns
    -------
    VolumeReconstruction
        ``frames [F, Z, ny, nx]``, the slices done, per-slice seconds and the config.
    """
    import tempfile

    from .volume import load_volume, parse_slices, run_volume

    vol = data if isinstance(data, KSpaceVolume) else load_volume(data)
    if not isinstance(slices, (list, tuple)):
        slices = parse_slices(slices, vol.n_slices, vol.source)
    spec = FitSpec.from_options(
        method or DEFAULT_METHOD,
        seed=seed,
        spokes_per_frame=spokes_per_frame,
        device=device,
        **overrides,
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
