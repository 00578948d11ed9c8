"""Binning acquisition-ordered spokes into frames, chosen at reconstruction time."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameBinning:
    """Which spokes make which frame: frame ``f`` holds spokes ``f*S .. f*S+S-1``."""

    spokes_per_frame: int
    n_frames: int
    n_dropped: int

    @property
    def n_used(self) -> int:
        return self.spokes_per_frame * self.n_frames


def plan_binning(n_spokes: int, spokes_per_frame: int, source: str | None = None) -> FrameBinning:
    """Frames for ``spokes_per_frame``; leftover spokes at the end are dropped (and logged)."""
    if spokes_per_frame < 1:
        raise InputError(source, None, f"spokes per frame must be >= 1, got {spokes_per_frame}")
    n_frames = n_spokes // spokes_per_frame
    if n_frames < 1:
        raise InputError(
            source,
            "/kspace",
            f"too few spokes for one frame: {n_spokes} spokes, {spokes_per_frame} per frame",
        )
    dropped = n_spokes - n_frames * spokes_per_frame
    if dropped:
        log.warning(
            "%d spokes per frame: %d frames; the last %d of %d spokes are dropped",
            spokes_per_frame,
            n_frames,
            dropped,
            n_spokes,
        )
    return FrameBinning(spokes_per_frame, n_frames, dropped)


def bin_spokes(array: np.ndarray, binning: FrameBinning, spoke_axis: int) -> np.ndarray:
    """Split ``array``'s spoke axis into ``[n_frames, spokes_per_frame]`` at the front.

    The result has the frame axis first, then the remaining axes with the spoke axis
    kept in place at length ``spokes_per_frame``.
    """
    a = np.moveaxis(array, spoke_axis, 0)[: binning.n_used]
    a = a.reshape(binning.n_frames, binning.spokes_per_frame, *a.shape[1:])
    return np.moveaxis(a, 1, spoke_axis + 1)
