"""The objects that travel between modules and the checks that admit them.

* :class:`KSpaceData` -- one slice's raw k-space, spokes in acquisition order;
* :class:`KSpaceVolume` -- several slices of one acquisition, one :class:`KSpaceData` each;
* :class:`RadialSeries` -- spokes binned into frames, what every method consumes;
* :func:`check_array` / :func:`check_kspace_data` -- what turns a malformed input into one
  message naming the file, the dataset and what was expected (every reader uses them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InputError
from .physics.binning import FrameBinning, bin_spokes, plan_binning
from .physics.trajectory import check_radial

#: what :meth:`KSpaceData.from_arrays` accepts as ``trajectory_units``: the factor that
#: turns each axis (y, x) into radians per pixel, given the image size [ny, nx]
TRAJECTORY_UNITS = {
    "rad": lambda shape: (1.0, 1.0),  # radians per pixel, [-pi, pi): the contract's unit
    "cycles": lambda shape: (2 * np.pi, 2 * np.pi),  # cycles per pixel, [-0.5, 0.5)
    "1/FOV": lambda shape: (2 * np.pi / shape[0], 2 * np.pi / shape[1]),  # [-n/2, n/2)
}

#: Group of the ROIs a simulated file carries: ``/roi/<name>/mask`` [ny, nx] and
#: ``/roi/<name>/curve`` [n_frames] (the true mean magnitude inside the mask per frame).
ROI_GROUP = "roi"

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
        import math

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
        check_kspace_data(
            out,
            "trajectory",
            "in cycles per pixel? KSpaceData.from_arrays(..., trajectory_units='cycles')",
        )
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


@dataclass
class KSpaceVolume:
    """Slice-separated radial k-space of a volume (see docs/raw-input.md)."""

    kspace: np.ndarray  #: complex64 [n_slices, n_coils, n_spokes, n_readout]
    trajectory: np.ndarray  #: float32 [n_slices, n_spokes, n_readout, 2], rad/pixel (y, x)
    image_shape: tuple[int, int]
    #: "stack-of-stars" (kz partitions separated by the inverse DFT), "multi-slice" or "single"
    layout: str = "single"
    pixel_size_mm: tuple[float, float, float] | None = None  #: (dz, dy, dx) for napari's scale
    attrs: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    coil_maps: np.ndarray | None = None  #: complex64 [n_slices, n_coils, ny, nx]
    reference: np.ndarray | None = None  #: [n_frames, n_slices, ny, nx]

    @property
    def n_slices(self) -> int:
        return self.kspace.shape[0]

    @property
    def n_coils(self) -> int:
        return self.kspace.shape[1]

    @property
    def n_spokes(self) -> int:
        return self.kspace.shape[2]

    @property
    def n_readout(self) -> int:
        return self.kspace.shape[3]

    def default_spokes_per_frame(self) -> int:
        s = self.attrs.get("spokes_per_frame")
        return int(s) if s else 13

    def slice(self, z: int) -> KSpaceData:
        """Slice ``z`` as a 2-D k-space file's content (copies: what a task sends)."""
        if not 0 <= z < self.n_slices:
            raise IndexError(f"slice {z} out of range: the volume has {self.n_slices}")
        ref = None
        if self.reference is not None:
            ref = np.ascontiguousarray(self.reference[:, z])
        return KSpaceData(
            kspace=np.ascontiguousarray(self.kspace[z]),
            trajectory=np.array(self.trajectory[z], dtype=np.float32, order="C"),
            image_shape=tuple(self.image_shape),
            coil_maps=None if self.coil_maps is None else np.ascontiguousarray(self.coil_maps[z]),
            reference=ref,
            attrs=dict(self.attrs) | {"slice": int(z), "n_slices": self.n_slices},
            source=f"{self.source} slice {z}" if self.source else f"slice {z}",
        )

    @classmethod
    def from_kspace(cls, data: KSpaceData) -> KSpaceVolume:
        """A one-slice volume of a 2-D file."""
        return cls(
            kspace=data.kspace[None],
            trajectory=data.trajectory[None],
            image_shape=tuple(data.image_shape),
            layout="single",
            attrs=dict(data.attrs),
            source=data.source,
            coil_maps=None if data.coil_maps is None else data.coil_maps[None],
            reference=None if data.reference is None else data.reference[:, None],
        )


# ----------------------------------------------------------------------------- checks

_KIND_TEXT = {"complex": "complex numbers", "real": "real floating-point numbers", "any": "numbers"}


def check_array(a, path, dataset: str, ndim: int, kind: str) -> np.ndarray:
    """Rank, dtype and finiteness of one dataset; returns it as complex64 or float32."""
    a = np.asarray(a)
    if a.dtype.names is not None and {"real", "imag"} <= set(a.dtype.names):
        a = a["real"] + 1j * a["imag"]  # MATLAB v7.3 stores complex as a compound type
    if a.ndim != ndim:
        raise InputError(path, dataset, f"expected {ndim} dimensions, got shape {a.shape}")
    if a.size == 0:
        raise InputError(path, dataset, f"is empty (shape {a.shape})")
    numeric = np.issubdtype(a.dtype, np.number) and not np.issubdtype(a.dtype, np.timedelta64)
    if not numeric or (kind == "real" and np.iscomplexobj(a)):
        raise InputError(path, dataset, f"expected {_KIND_TEXT[kind]}, got dtype {a.dtype}")
    if kind == "complex" and not np.iscomplexobj(a):
        raise InputError(path, dataset, f"expected complex numbers, got dtype {a.dtype}")
    if not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise InputError(path, dataset, f"contains {bad} NaN/Inf values")
    return a.astype(np.complex64 if np.iscomplexobj(a) else np.float32, copy=False)


def check_kspace_data(
    d: KSpaceData,
    trajectory_name: str = "/trajectory",
    units_hint: str = "expected radians per pixel (cycles per pixel need a factor 2*pi)",
) -> None:
    """Consistency of a whole k-space file: shapes that must agree, trajectory range.

    ``trajectory_name`` and ``units_hint`` word the trajectory's messages (in-memory data
    name their arrays without a slash and point to the unit conversion of the API).
    """
    p = d.source
    C, S, R = d.kspace.shape
    check_spokes_per_frame_attr(d)
    if d.trajectory.shape != (S, R, 2):
        raise InputError(
            p,
            "/trajectory",
            f"expected shape [n_spokes, n_readout, 2] = [{S}, {R}, 2] to match /kspace {d.kspace.shape}, got {d.trajectory.shape}",
        )
    lo, hi = float(d.trajectory.min()), float(d.trajectory.max())
    if lo < -np.pi - 1e-6 or hi >= np.pi + 1e-6:
        raise InputError(
            p,
            "/trajectory",
            f"expected radians per pixel in [-pi, pi), got values in [{lo:.4g}, {hi:.4g}] (cycles/pixel would need a factor 2*pi)",
        )
    check_radial(d.trajectory, p, trajectory_name, units_hint)
    ny, nx = d.image_shape
    if d.coil_maps is not None:
        if d.coil_maps.shape[0] != C:
            raise InputError(
                p, "/coil_maps", f"has {d.coil_maps.shape[0]} coils but /kspace has {C}"
            )
        if d.coil_maps.shape[1:] != (ny, nx):
            raise InputError(
                p,
                "/coil_maps",
                f"expected image size {ny} x {nx} (attribute image_shape), got {d.coil_maps.shape[1]} x {d.coil_maps.shape[2]}",
            )
    if d.coil_maps is not None and not np.any(d.coil_maps):
        raise InputError(
            p,
            "/coil_maps",
            "are zero everywhere: expected coil sensitivities (or leave the dataset out to estimate them)",
        )
    if d.dcf is not None and d.dcf.shape != (S, R):
        raise InputError(
            p, "/dcf", f"expected shape [n_spokes, n_readout] = [{S}, {R}], got {d.dcf.shape}"
        )
    if d.dcf is not None and float(d.dcf.min()) < 0:
        raise InputError(
            p,
            "/dcf",
            f"expected non-negative density weights, got values down to {float(d.dcf.min()):.4g}",
        )
    if d.reference is not None:
        if d.reference.shape[1:] != (ny, nx):
            raise InputError(
                p,
                "/reference",
                f"expected frames of {ny} x {nx} (attribute image_shape), got {d.reference.shape[1:]}",
            )
        spf = d.attrs.get("spokes_per_frame")
        if spf is None:
            raise InputError(p, "attribute spokes_per_frame", "required when /reference is present")
        if int(spf) < 1 or S // int(spf) < d.reference.shape[0]:
            raise InputError(
                p,
                "/reference",
                f"{d.reference.shape[0]} frames need {d.reference.shape[0]} x {spf} spokes, /kspace has {S}",
            )
    if S < 1 or R < 2:
        raise InputError(
            p, "/kspace", f"expected at least one spoke of at least 2 samples, got {S} x {R}"
        )
    if not np.any(d.kspace):
        raise InputError(p, "/kspace", "all samples are zero: nothing to reconstruct")
    check_rois(d)


def check_rois(d: KSpaceData) -> None:
    """``/roi/<name>/mask`` must be an image-sized 2-D array, ``/roi/<name>/curve`` 1-D and finite."""
    ny, nx = d.image_shape
    for key, a in d.extra.items():
        if not key.startswith(ROI_GROUP + "/"):
            continue
        a = np.asarray(a)
        numeric = a.dtype == np.bool_ or np.issubdtype(a.dtype, np.number)
        if key.endswith("/mask"):
            if not numeric or a.shape != (ny, nx):
                raise InputError(
                    d.source,
                    f"/{key}",
                    f"expected a {ny} x {nx} mask (attribute image_shape), got shape {a.shape} of {a.dtype}",
                )
        elif key.endswith("/curve"):
            if not numeric or a.ndim != 1 or np.iscomplexobj(a) or not np.all(np.isfinite(a)):
                raise InputError(
                    d.source,
                    f"/{key}",
                    f"expected a finite real curve [n_frames], got shape {a.shape} of {a.dtype}",
                )


def check_spokes_per_frame_attr(d: KSpaceData) -> None:
    """The root attribute ``spokes_per_frame``, when present, is a positive integer."""
    spf = d.attrs.get("spokes_per_frame")
    if spf is None:
        return
    try:
        value = float(np.asarray(spf).ravel()[0]) if np.size(spf) == 1 else float("nan")
    except (TypeError, ValueError):
        value = float("nan")
    if not (value >= 1 and value == int(value)):
        raise InputError(
            d.source, "attribute spokes_per_frame", f"expected a positive integer, got {spf!r}"
        )
    d.attrs["spokes_per_frame"] = int(value)
