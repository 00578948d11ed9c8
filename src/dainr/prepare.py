"""From a k-space file's content to what every method needs, computed once per series."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .data import KSpaceData, RadialSeries
from .errors import InputError
from .holdout import HeldOut, held_samples, make_split, sample_mask
from .physics.coils import estimate_coil_maps
from .physics.density import compute_dcf, file_dcf, ramp_dcf
from .physics.noise import estimate_noise
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
    #: the held-out spokes (zero in ``kspace`` and ``dcf``, absent from ``gridding``), or
    #: None when none are held out
    heldout: HeldOut | None = None
    #: [F, K] float, 0 on held-out samples and 1 elsewhere (None: none held out): every
    #: method's data term multiplies its residual by it (:meth:`train_residual`)
    train_mask: torch.Tensor | None = None
    #: the gridding images of all spokes, held-out ones included (None: same as
    #: ``gridding``). Only DA-INR's frozen image features read it; no loss does.
    gridding_all: torch.Tensor | None = None

    def train_residual(self, y: torch.Tensor, frames: torch.Tensor | None = None) -> torch.Tensor:
        """``y - kspace`` of ``frames`` (all when None), zero on held-out samples."""
        target = self.kspace if frames is None else self.kspace[frames]
        d = y - target
        if self.train_mask is None:
            return d
        mask = self.train_mask if frames is None else self.train_mask[frames]
        return d * mask[:, None]

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
    delays: str = "off",
) -> PreparedSeries:
    """Bin, pick coil maps (given > file > estimated), weigh, grid and normalise.

    ``holdout`` > 0 sets that fraction of the spokes aside (:mod:`dainr.holdout`): coil
    maps, gridding images, scale and the training samples come from the other spokes only
    (held-out samples are zero in ``kspace``, ``dcf`` and ``train_mask``), so that the
    held-out loss judges data the fit never saw. ``gridding_all`` keeps all spokes for
    DA-INR's frozen features.

    ``delays="auto"`` estimates the radial gradient delays from all spokes
    (:func:`dainr.physics.delays.estimate_delays`) and bins, grids and fits on the
    trajectory moved to where the samples were taken; ``"off"`` trusts the file's.
    """
    if delays not in DELAY_MODES:
        raise ValueError(f"delays must be one of {', '.join(DELAY_MODES)}, got {delays!r}")
    dev = resolve_device(device)
    gradient_delays = None
    if delays == "auto":
        from .physics.delays import apply_delays, estimate_delays

        gradient_delays = estimate_delays(data.kspace, data.trajectory)
        log.info("gradient delays (s_x, s_y, s_xy): %.3f %.3f %.3f samples", *gradient_delays)
        data = dataclasses.replace(data, trajectory=apply_delays(data.trajectory, gradient_delays))
    series = data.binned(spokes_per_frame)
    split = make_split(series.n_frames, series.spokes_per_frame, holdout, holdout_seed)
    mask = sample_mask(split, series.n_readout) if split.n_spokes else None
    maps_seconds = None
    if coil_maps is not None:
        maps, src = coil_maps, "user"
    elif series.coil_maps is not None:
        maps, src = series.coil_maps, "file"
    else:
        log.info("no coil maps in the file: estimating them from the time-averaged data")
        t_maps = time.perf_counter()
        kept = np.flatnonzero(split.spoke_mask().ravel())  # acquisition order, as binned
        maps = estimate_coil_maps(
            data.kspace[:, kept], data.trajectory[kept], series.image_shape, backend="auto"
        )
        src = "estimated"
        maps_seconds = round(time.perf_counter() - t_maps, 3)
    series.coil_maps = maps
    dcf, dcf_source = _density_weights(data, series, dcf_method)
    op = RadialOperator(
        series.trajectory, series.image_shape, maps, device=dev, backend=backend, eps=nufft_eps
    )
    k = torch.as_tensor(series.kspace, device=dev)
    w = torch.as_tensor(np.ascontiguousarray(dcf), device=dev, dtype=torch.float32)
    train_mask = grid_all = None
    if mask is not None:
        with torch.no_grad():
            grid_all = gridding_recon(op, k, w)
        train_mask = torch.as_tensor(mask, device=dev)
        held_k = k[torch.as_tensor(split.frames, device=dev)]
        k, w = k * train_mask[:, None], w * train_mask
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
    if maps_seconds is not None:
        settings["coil_maps_seconds"] = maps_seconds
    if gradient_delays is not None:
        settings["gradient_delays"] = [round(v, 4) for v in gradient_delays]
    settings["noise"] = _noise(data, w, op.maps, scale)
    heldout = None
    if mask is not None:
        pos = held_samples(split, series.n_readout)
        traj = np.take_along_axis(series.trajectory[split.frames], pos[:, :, None], axis=1)
        held_op = RadialOperator(
            traj, series.image_shape, maps, device=dev, backend=backend, eps=nufft_eps
        )
        idx = torch.as_tensor(pos, device=dev)[:, None].expand(-1, held_k.shape[1], -1)
        held_k = torch.gather(held_k, 2, idx) * scale
        ramp = ramp_dcf(traj, split.n_held, series.n_readout)
        heldout = HeldOut(split, held_op, held_k, torch.as_tensor(ramp, device=dev))
        settings["holdout"] = split.settings()
        grid_all = grid_all * scale
    return PreparedSeries(
        series, op, k * scale, w, grid * scale, scale, src, settings, heldout, train_mask, grid_all
    )


def _noise(data: KSpaceData, w: torch.Tensor, maps: torch.Tensor, scale: float) -> dict:
    """The data's noise (:func:`dainr.physics.noise.estimate_noise`) and ``image_ratio``:
    the noise it leaves in a gridding image (sigma times the root of each frame's summed
    squared weights and of the maps' mean energy) over the image's peak (the 99th
    percentile that ``scale`` inverts). Methods may set their regularisation by it."""
    est = estimate_noise(data.kspace, data.trajectory)
    energy = float((maps.abs() ** 2).sum(0).mean())
    spread = float(torch.sqrt((w.double() ** 2).sum(-1).mean()))
    out = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in est.as_dict().items()}
    out["image_ratio"] = round(est.sigma * spread * energy**0.5 * scale, 6)
    return out


#: gradient-delay handling: trust the file's trajectory, or estimate and correct (RING)
DELAY_MODES = ("off", "auto")

#: density compensation choices; "auto" is the file's /dcf when present, else ramp
DCF_METHODS = ("auto", "ramp", "pipe-menon", "file")


def _file_weights(data: KSpaceData, series: RadialSeries, spokes: int) -> np.ndarray:
    """The file's weights by :func:`dainr.physics.density.file_dcf`'s rule, refused when
    they leave most of the measured samples without weight."""
    measured = np.abs(series.kspace).max(axis=1) > 0  # [F, K]: any coil has signal
    unweighted = np.count_nonzero(measured & (series.dcf <= 0))
    if unweighted > 0.5 * np.count_nonzero(measured):
        raise InputError(
            data.source,
            "dcf",
            f"weighs {unweighted} of the {np.count_nonzero(measured)} measured samples zero: "
            "expected density compensation weights (or --dcf ramp)",
        )
    try:
        return file_dcf(series.dcf, series.trajectory, spokes, series.n_readout)
    except ValueError as e:
        raise InputError(
            data.source, "dcf", f"{e}: expected density compensation weights"
        ) from None


def _density_weights(data: KSpaceData, series: RadialSeries, method: str) -> tuple[np.ndarray, str]:
    """The weights and what they are (``file``, ``ramp``, ``pipe-menon``)."""
    if method not in DCF_METHODS:
        raise ValueError(f"dcf must be one of {', '.join(DCF_METHODS)}, got {method!r}")
    if method == "file" and series.dcf is None:
        raise InputError(
            data.source,
            "dcf",
            "--dcf file asks for the file's density compensation, but the file has no /dcf",
        )
    # the spokes actually in the series (fewer than the binning's when some are held out)
    spokes = series.kspace.shape[-1] // series.n_readout
    if method == "file" or (method == "auto" and series.dcf is not None):
        return _file_weights(data, series, spokes), "file"
    kind = "ramp" if method == "auto" else method
    w = compute_dcf(series.trajectory, series.image_shape, spokes, series.n_readout, kind)
    return w, kind
