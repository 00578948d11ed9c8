"""The two objects that travel between modules: raw k-space and a binned series."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .physics.binning import FrameBinning, bin_spokes, plan_binning

#: what :meth:`KSpaceData.from_arrays` accepts as ``trajectory_units``: the factor that
#: turns each axis (y, x) into radians per pixel, given the image size [ny, nx]
TRAJECTORY_UNITS = {
    "rad": lambda shape: (1.0, 1.0),  # radians per pixel, [-pi, pi): the contract's unit
    "cycles": lambda shape: (2 * np.pi, 2 * np.pi),  # cycles per pixel, [-0.5, 0.5)
    "1/FOV": lambda shape: (2 * np.pi / shape[0], 2 * np.pi / shape[1]),  # [-n/2, n/2)
}

#: the name in-memory data carry in messages, where a file would give its path
IN_MEMORY = "in-memory KSpaceData"


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

    @classmethod
    def from_arrays(
        cls,
        kspace: np.ndarray,
        trajectory: np.ndarray,
        image_shape: tuple[int, int],
        *,
        trajectory_units: str = "rad",
        coil_maps: np.ndarray | None = None,
        dcf: np.ndarray | None = None,
        reference: np.ndarray | None = None,
        spokes_per_frame: int | None = None,
        source: str | None = None,
    ) -> KSpaceData:
        """Checked k-space from arrays, with the trajectory converted to radians per pixel.

        ``kspace`` [n_coils, n_spokes, n_readout] complex, spokes in acquisition order;
        ``trajectory`` [n_spokes, n_readout, 2] as (ky, kx) in ``trajectory_units``:
        ``rad`` (radians per pixel, [-pi, pi)), ``cycles`` (cycles per pixel,
        [-0.5, 0.5)) or ``1/FOV`` (k times the field of view, [-n/2, n/2) for an
        n-pixel axis). Every problem is an :class:`~dainr.InputError` naming the array.
        """
        if trajectory_units not in TRAJECTORY_UNITS:
            raise ValueError(
                f"trajectory_units must be one of {', '.join(TRAJECTORY_UNITS)}, "
                f"got {trajectory_units!r}"
            )
        traj = np.asarray(trajectory)
        if traj.ndim == 3 and traj.shape[-1] == 2 and np.issubdtype(traj.dtype, np.number):
            ny, nx = (int(n) for n in np.asarray(image_shape).ravel()[:2])
            factors = TRAJECTORY_UNITS[trajectory_units]((ny, nx))
            traj = traj * np.asarray(factors, dtype=np.float64)
        attrs = {} if spokes_per_frame is None else {"spokes_per_frame": spokes_per_frame}
        data = cls(
            kspace=kspace,
            trajectory=traj,
            image_shape=image_shape,
            coil_maps=coil_maps,
            reference=reference,
            dcf=dcf,
            attrs=attrs,
            source=source,
        )
        return data.validated()

    def validated(self) -> KSpaceData:
        """This data checked as a file reader checks a file, arrays as complex64/float32.

        The API calls it on every in-memory :class:`KSpaceData`: a wrong shape, dtype,
        NaN or trajectory unit is one :class:`~dainr.InputError` naming the array and
        what was expected, not a failure deep inside the NUFFT.
        """
        import logging
        import math

        from .errors import InputError
        from .io.validate import check_array, check_kspace_data

        src = self.source or IN_MEMORY
        shape = np.asarray(self.image_shape).ravel()
        if shape.size != 2 or not np.all(np.mod(shape, 1) == 0) or np.any(shape < 1):
            raise InputError(
                src, "image_shape", f"expected two positive ints (ny, nx), got {self.image_shape!r}"
            )

        def opt(a, name, ndim, kind):
            return None if a is None else check_array(a, src, name, ndim=ndim, kind=kind)

        out = KSpaceData(
            kspace=check_array(self.kspace, src, "kspace", ndim=3, kind="complex"),
            trajectory=check_array(self.trajectory, src, "trajectory", ndim=3, kind="real"),
            image_shape=(int(shape[0]), int(shape[1])),
            coil_maps=opt(self.coil_maps, "coil_maps", 3, "any"),
            reference=opt(self.reference, "reference", 3, "any"),
            dcf=opt(self.dcf, "dcf", 2, "real"),
            attrs=dict(self.attrs),
            source=src,
            extra=dict(self.extra),
        )
        if out.coil_maps is not None:
            out.coil_maps = out.coil_maps.astype(np.complex64, copy=False)
        peak = float(np.abs(out.trajectory).max())
        if peak >= math.pi + 1e-6:
            ny, nx = out.image_shape
            hint = (
                "; it looks like 1/FOV units: KSpaceData.from_arrays(..., trajectory_units='1/FOV')"
                if peak <= max(ny, nx) / 2 + 1e-6
                else ""
            )
            raise InputError(
                src,
                "trajectory",
                f"expected radians per pixel in [-pi, pi), got values up to {peak:.4g}{hint}",
            )
        if 0 < peak <= 0.5 + 1e-6:
            logging.getLogger(__name__).warning(
                "%s: the trajectory reaches only %.3g rad/pixel (a full radial spoke reaches "
                "pi): if it is in cycles per pixel, use KSpaceData.from_arrays(..., "
                "trajectory_units='cycles')",
                src,
                peak,
            )
        check_kspace_data(out)
        return out

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
