"""The two objects that travel between modules: raw k-space and a binned series."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .physics.binning import FrameBinning, bin_spokes, plan_binning


@dataclass
class KSpaceData:
    """A k-space file's content, spokes in acquisition order (see the contract)."""

    kspace: np.ndarray  #: complex64 [n_coils, n_spokes, n_readout]
    trajectory: np.ndarray  #: float32 [n_spokes, n_readout, 2], rad/pixel, (y, x)
    image_shape: tuple[int, int]
    coil_maps: np.ndarray | None = None  #: complex64 [n_coils, ny, nx]
    reference: np.ndarray | None = None  #: [n_frames, ny, nx]
    dcf: np.ndarray | None = None  #: float32 [n_spokes, n_readout]
    attrs: dict[str, Any] = field(default_factory=dict)  #: other root attributes, carried through
    source: str | None = None  #: where it came from, for messages
    #: other datasets by HDF5 path without the leading slash (e.g. ``roi/aorta/mask``)
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_coils(self) -> int:
        return self.kspace.shape[0]

    @property
    def n_spokes(self) -> int:
        return self.kspace.shape[1]

    @property
    def n_readout(self) -> int:
        return self.kspace.shape[2]

    @property
    def spokes_per_frame(self) -> int | None:
        """The binning the file suggests (the one its reference was simulated with)."""
        s = self.attrs.get("spokes_per_frame")
        return int(s) if s is not None else None

    def default_spokes_per_frame(self) -> int:
        return self.spokes_per_frame or 13

    def binned(self, spokes_per_frame: int | None = None) -> RadialSeries:
        """Frames of ``spokes_per_frame`` spokes (the file's own binning by default)."""
        spf = spokes_per_frame or self.default_spokes_per_frame()
        b = plan_binning(self.n_spokes, spf, self.source)
        k = bin_spokes(self.kspace, b, spoke_axis=1)  # [F, C, S, R]
        t = bin_spokes(self.trajectory, b, spoke_axis=0)  # [F, S, R, 2]
        d = None if self.dcf is None else bin_spokes(self.dcf, b, spoke_axis=0)
        ref = None
        if self.reference is not None and self.spokes_per_frame == spf:
            ref = self.reference[: b.n_frames]
        return RadialSeries(
            kspace=np.ascontiguousarray(k.reshape(b.n_frames, self.n_coils, -1)),
            trajectory=np.ascontiguousarray(t.reshape(b.n_frames, -1, 2)),
            dcf=None if d is None else np.ascontiguousarray(d.reshape(b.n_frames, -1)),
            image_shape=tuple(self.image_shape),
            coil_maps=self.coil_maps,
            reference=ref,
            binning=b,
            n_readout=self.n_readout,
            attrs=dict(self.attrs),
            source=self.source,
        )


@dataclass
class RadialSeries:
    """Spokes binned into frames: what every reconstruction method consumes."""

    kspace: np.ndarray  #: complex64 [n_frames, n_coils, n_samples]
    trajectory: np.ndarray  #: float32 [n_frames, n_samples, 2]
    dcf: np.ndarray | None  #: float32 [n_frames, n_samples]
    image_shape: tuple[int, int]
    coil_maps: np.ndarray | None
    reference: np.ndarray | None
    binning: FrameBinning
    n_readout: int
    attrs: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    @property
    def n_frames(self) -> int:
        return self.kspace.shape[0]

    @property
    def n_coils(self) -> int:
        return self.kspace.shape[1]

    @property
    def spokes_per_frame(self) -> int:
        return self.binning.spokes_per_frame
