"""Scores without ground truth: how well a reconstruction predicts spokes it never saw.

Reconstructions of one file, fitted with the same spokes held out (``--holdout F``,
same seed), are compared on those spokes: each output's frames, through its own coil
maps, predict the held-out samples, and

    error = || a A x - y || / || y ||    over the held-out samples,

with ``a`` the complex least-squares scale (so that a global intensity or phase
convention costs nothing). Lower is better, in the same units for every method,
whatever its own loss. ``weighted`` is the same error with every sample weighed by the
radial ramp (the samples then count as a uniform cover of k-space, as an image-domain
error does), which the strong samples near the centre do not rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import KSpaceData
from .errors import InputError
from .result import Reconstruction


@dataclass(frozen=True)
class HeldOutScore:
    method: str
    error: float  #: || a A x - y || / || y || over the held-out samples
    weighted: float  #: the same, every sample weighed by the radial ramp
    samples: int  #: held-out samples per coil


def heldout_score(result: Reconstruction, data: KSpaceData, source=None) -> HeldOutScore:
    """The held-out error of one output (see the module's docstring)."""
    import torch

    from .physics.density import ramp_dcf
    from .physics.operator import RadialOperator

    where = source or result.method
    if result.heldout_spokes is None:
        raise InputError(
            where, "/holdout_spokes", "no spokes were held out of this fit: fit with --holdout"
        )
    if result.coil_maps is None:
        raise InputError(where, "/coil_maps", "missing: the fit's coil maps are needed")
    if result.upscale != 1.0:
        raise InputError(where, "attribute upscale", "scores need the fit's own grid (r = 1)")
    held = np.asarray(result.heldout_spokes, dtype=np.int64)  # [H, n]
    spf = int(result.spokes_per_frame)
    frames = held[:, 0] // spf
    if held.max() >= data.n_spokes or np.any(held // spf != frames[:, None]):
        raise InputError(
            where, "/holdout_spokes", f"do not fit {data.source}'s spokes binned by {spf}"
        )
    if frames.max() >= result.frames.shape[0]:
        raise InputError(where, "/recon", "has fewer frames than its held-out spokes need")
    if result.coil_maps.shape != (data.n_coils, *data.image_shape):
        raise InputError(
            where,
            "/coil_maps",
            f"shape {result.coil_maps.shape} does not fit {data.source} "
            f"({data.n_coils} coils, {data.image_shape[0]} x {data.image_shape[1]})",
        )
    H, n = held.shape
    R = data.n_readout
    traj = data.trajectory[held].reshape(H, n * R, 2)
    y = data.kspace[:, held].reshape(data.n_coils, H, n * R).transpose(1, 0, 2)  # [H, C, K]
    op = RadialOperator(traj, data.image_shape, result.coil_maps, device="cpu")
    x = torch.as_tensor(np.ascontiguousarray(result.frames[frames]), dtype=torch.complex64)
    with torch.no_grad():
        ax = op.forward(x).numpy().astype(np.complex128)
    y = y.astype(np.complex128)
    w = ramp_dcf(traj, n, R).astype(np.float64)[:, None, :]  # [H, 1, K]

    def error(weights: np.ndarray) -> float:
        a = np.sum(weights * np.conj(ax) * y) / max(np.sum(weights * np.abs(ax) ** 2), 1e-300)
        r = a * ax - y
        return float(np.sqrt(np.sum(weights * np.abs(r) ** 2) / np.sum(weights * np.abs(y) ** 2)))

    return HeldOutScore(result.method, error(np.ones_like(w)), error(w), n * R * H)


def heldout_scores(paths: list[Path], data: KSpaceData) -> list[HeldOutScore]:
    """Scores of several outputs of ``data``, which must have held out the same spokes."""
    from .io import read_recon_h5

    results = [read_recon_h5(p) for p in paths]
    first = results[0].heldout_spokes
    for p, r in zip(paths, results):
        if r.heldout_spokes is None:
            raise InputError(
                p, "/holdout_spokes", "no spokes were held out of this fit: fit with --holdout"
            )
        if first is not None and not np.array_equal(r.heldout_spokes, first):
            raise InputError(
                p,
                "/holdout_spokes",
                f"differ from {paths[0].name}'s: compare fits that held out the same spokes "
                "(same --holdout and --seed)",
            )
    return [heldout_score(r, data, p) for p, r in zip(paths, results)]


__all__ = ["HeldOutScore", "heldout_score", "heldout_scores"]
