"""From a k-space file's content to what every method needs, computed once per series."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from .data import KSpaceData, RadialSeries
from .errors import InputError
from .holdout import HeldOut, make_split, split_series
from .physics.coils import estimate_coil_maps
from .physics.density import compute_dcf, ramp_dcf
from .physics.operator import RadialOperator

log = logging.getLogger(__name__)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto``/None -> the best available device; otherwise as given (checked)."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    d = torch.device(device)
    if d.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda requested but no CUDA device is available; use --device cpu")
    return d


@dataclass
class PreparedSeries:
    """A binned series on a device: operator, scaled samples, weights, gridding images."""

    series: RadialSeries
    op: RadialOperator
    kspace: torch.Tensor  #: [F, C, K] complex, multiplied by ``scale``
    dcf: torch.Tensor  #: [F, K] real
    gridding: torch.Tensor  #: [F, ny, nx] complex: the NUFFT baseline of the scaled data
    scale: float  #: samples were multiplied by this so that the gridding images peak near 1
    coil_maps_source: str  #: "file", "user" or "estimated"
    #: how the series was prepared (dcf, NUFFT backend, device, eps, coil maps): every output records it
    settings: dict = field(default_factory=dict)
    #: the held-out spokes (never in ``op``/``kspace``/``gridding``), or None when none are held out
    heldout: HeldOut | None = None

    @property
    def n_frames(self) -> int:
        return self.series.n_frames

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.series.image_shape

    @property
    def device(self) -> torch.device:
        return self.op.device


def gridding_recon(op: RadialOperator, kspace: torch.Tensor, dcf: torch.Tensor) -> torch.Tensor:
    """Density-compensated adjoint, SENSE-normalised coil combination: ``[F, ny, nx]``."""
    x = op.adjoint(kspace * dcf[:, None])
    norm = (op.maps.abs() ** 2).sum(0)
    return x / torch.where(norm > 1e-8, norm, torch.ones_like(norm))


def prepare_series(
    data: KSpaceData,
    spokes_per_frame: int | None = None,
    coil_maps: np.ndarray | None = None,
    dcf_method: str = "auto",
    device: str | torch.device | None = "auto",
    backend: str = "auto",
    nufft_eps: float = 1e-4,
    holdout: float = 0.0,
    holdout_seed: int = 0,
) -> PreparedSeries:
    """Bin, pick coil maps (given > file > estimated), weigh, grid and normalise.

    ``holdout`` > 0 sets that fraction of every frame's spokes aside (:mod:`dainr.holdout`):
    coil maps, density weights, gridding images, scale and the training samples come from
    the other spokes only, so that the held-out loss judges data the fit never saw.
    """
    dev = resolve_device(device)
    series = data.binned(spokes_per_frame)
    split = make_split(series.n_frames, series.spokes_per_frame, holdout, holdout_seed)
    held_series = None
    if split.n_held:
        series, held_series = split_series(series, split)
    if coil_maps is not None:
        maps, src = coil_maps, "user"
    elif series.coil_maps is not None:
        maps, src = series.coil_maps, "file"
    else:
        log.info("no coil maps in the file: estimating them from the time-averaged data")
        used = np.sort(split.acquisition_index("kept").ravel())
        maps = estimate_coil_maps(
            data.kspace[:, used], data.trajectory[used], series.image_shape, backend="auto"
        )
        src = "estimated"
    series.coil_maps = maps
    dcf, dcf_source = _density_weights(data, series, dcf_method)
    op = RadialOperator(
        series.trajectory, series.image_shape, maps, device=dev, backend=backend, eps=nufft_eps
    )
    k = torch.as_tensor(series.kspace, device=dev)
    w = torch.as_tensor(np.ascontiguousarray(dcf), device=dev, dtype=torch.float32)
    with torch.no_grad():
        grid = gridding_recon(op, k, w)
        peak = float(torch.quantile(grid.abs().flatten()[:: max(1, grid.numel() // 200_000)], 0.99))
    scale = 1.0 / peak if peak > 0 else 1.0
    settings = {
        "dcf": dcf_source,
        "nufft_backend": op.backend.name,
        "device": str(dev),
        "nufft_eps": nufft_eps,
        "coil_maps_source": src,
    }
    heldout = None
    if held_series is not None:
        held_op = RadialOperator(
            held_series.trajectory,
            series.image_shape,
            maps,
            device=dev,
            backend=backend,
            eps=nufft_eps,
        )
        held_k = torch.as_tensor(held_series.kspace, device=dev) * scale
        ramp = ramp_dcf(held_series.trajectory, split.n_held, series.n_readout)
        heldout = HeldOut(split, held_op, held_k, torch.as_tensor(ramp, device=dev))
        settings["holdout"] = split.settings()
    return PreparedSeries(series, op, k * scale, w, grid * scale, scale, src, settings, heldout)


#: density compensation choices; "auto" is the file's /dcf when present, else ramp
DCF_METHODS = ("auto", "ramp", "pipe-menon", "file")


def _density_weights(data: KSpaceData, series: RadialSeries, method: str) -> tuple[np.ndarray, str]:
    """The weights and what they are (``file``, ``ramp``, ``pipe-menon``)."""
    if method not in DCF_METHODS:
        raise ValueError(f"dcf must be one of {', '.join(DCF_METHODS)}, got {method!r}")
    if method == "file" or (method == "auto" and series.dcf is not None):
        if series.dcf is None:
            raise InputError(
                data.source,
                "dcf",
                "--dcf file asks for the file's density compensation, but the file has no /dcf",
            )
        return series.dcf, "file"
    kind = "ramp" if method == "auto" else method
    # the spokes actually in the series (fewer than the binning's when some are held out)
    spokes = series.kspace.shape[-1] // series.n_readout
    w = compute_dcf(series.trajectory, series.image_shape, spokes, series.n_readout, kind)
    return w, kind
