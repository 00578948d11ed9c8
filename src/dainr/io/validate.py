"""Checks that turn a malformed input into one message naming file, dataset and expectation."""

from __future__ import annotations

import numpy as np

from ..data import KSpaceData
from ..errors import InputError

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


def check_kspace_data(d: KSpaceData) -> None:
    """Consistency of a whole k-space file: shapes that must agree, trajectory range."""
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
        if not key.startswith("roi/"):
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
