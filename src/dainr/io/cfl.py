"""BART ``.cfl``/``.hdr`` pairs: radial k-space with its trajectory.

BART keeps an array as a text header (``# Dimensions`` then 16 sizes) and raw
complex64 samples in column-major order. Its radial k-space is
``[1, readout, spokes, coils, 1 ... ]`` with frames (if binned) in dimension 10 and
separate slices in dimension 13; its trajectory ``[3, readout, spokes, ...]`` holds
(kx, ky, kz) in units of 1/FOV (±N/2 for an N-pixel image). BART's image dimension 0
(kx) is our column axis x and dimension 1 (ky) our row axis y, so an image BART shows
as ``img[x, y]`` is ``img.T`` here (checked against ``bart phantom`` in the tests).

The trajectory of ``NAME.cfl`` is ``NAME_traj.cfl`` or ``traj.cfl`` beside it, unless
given. The image matrix is ``2 * ceil(max |k|)`` per axis unless ``image_shape`` says.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..data import KSpaceVolume
from ..errors import InputError
from ..physics.trajectory import check_radial

log = logging.getLogger(__name__)

TIME_DIM, SLICE_DIM = 10, 13


def _base(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix.lower() in (".cfl", ".hdr") else p


def read_cfl(path: str | os.PathLike) -> np.ndarray:
    """A BART array (either file of the pair, or their common stem)."""
    base = _base(path)
    hdr, cfl = base.with_suffix(".hdr"), base.with_suffix(".cfl")
    for p in (hdr, cfl):
        if not p.exists():
            raise InputError(p, None, "no such file (a BART array is a .cfl/.hdr pair)")
    lines = hdr.read_text(errors="replace").splitlines()
    try:
        at = next(
            i for i, line in enumerate(lines) if line.strip().lower().startswith("# dimensions")
        )
        dims = [int(v) for v in lines[at + 1].split()]
    except (StopIteration, IndexError, ValueError):
        raise InputError(
            hdr, None, "not a BART header: expected '# Dimensions' and a line of sizes"
        ) from None
    if not dims or any(d < 1 for d in dims):
        raise InputError(hdr, None, f"BART dimensions must be positive, got {dims}")
    n = int(np.prod(dims, dtype=np.int64))
    size = cfl.stat().st_size
    if size != 8 * n:
        raise InputError(
            cfl,
            None,
            f"truncated or mismatched data: {size} bytes, the header's {dims} needs {8 * n}",
        )
    return np.fromfile(cfl, np.complex64).reshape(dims, order="F")


def find_trajectory(path: str | os.PathLike) -> Path:
    base = _base(path)
    for cand in (base.with_name(base.name + "_traj"), base.with_name("traj")):
        if cand.with_suffix(".cfl").exists():
            return cand
    raise InputError(
        base.with_suffix(".cfl"),
        None,
        f"no trajectory: expected {base.name}_traj.cfl/.hdr or traj.cfl/.hdr beside it",
    )


def read_bart(
    path: str | os.PathLike,
    trajectory: str | os.PathLike | None = None,
    image_shape: tuple[int, int] | None = None,
) -> KSpaceVolume:
    """K-space and trajectory pair -> :class:`KSpaceVolume` (slices from dimension 13)."""
    base = _base(path)
    src = base.with_suffix(".cfl")
    k = read_cfl(base)
    tpath = _base(trajectory) if trajectory is not None else find_trajectory(base)
    t = read_cfl(tpath)
    k16 = np.reshape(k, k.shape + (1,) * (16 - k.ndim))
    t16 = np.reshape(t, t.shape + (1,) * (16 - t.ndim))
    if k16.shape[0] != 1:
        raise InputError(
            src,
            None,
            f"expected non-Cartesian BART k-space [1, readout, spokes, coils, ...], got dims {list(k.shape)}",
        )
    if t16.shape[0] != 3 or t16.shape[1:3] != k16.shape[1:3]:
        raise InputError(
            tpath.with_suffix(".cfl"),
            None,
            f"trajectory dims {list(t.shape)} do not match k-space {list(k.shape)} (expected [3, readout, spokes, ...])",
        )
    other = [d for d in range(4, 16) if d not in (TIME_DIM, SLICE_DIM) and k16.shape[d] > 1]
    if other:
        raise InputError(
            src,
            None,
            f"dimension {other[0]} of size {k16.shape[other[0]]} is not supported (frames: dim 10, slices: dim 13)",
        )
    R, S, C, F, Z = (
        k16.shape[1],
        k16.shape[2],
        k16.shape[3],
        k16.shape[TIME_DIM],
        k16.shape[SLICE_DIM],
    )
    # frames of a binned file, back in acquisition order: spoke s of frame f is spoke f*S + s
    kk = k16[0, :, :, :, 0, 0, 0, 0, 0, 0, :, 0, 0, :, 0, 0]  # [R, S, C, F, Z]
    kk = np.transpose(kk, (4, 2, 3, 1, 0)).reshape(Z, C, F * S, R)
    tf = t16.shape[TIME_DIM]
    if tf not in (1, F):
        raise InputError(
            tpath.with_suffix(".cfl"), None, f"trajectory has {tf} frames, k-space {F}"
        )
    tt = t16[:, :, :, 0, 0, 0, 0, 0, 0, 0, :, 0, 0, 0, 0, 0].real  # [3, R, S, tf]
    tt = np.broadcast_to(tt, (3, R, S, F))
    tt = np.transpose(tt, (3, 2, 1, 0)).reshape(F * S, R, 3)
    m = np.abs(tt[..., :2]).max(axis=(0, 1))
    if image_shape is None:
        nx, ny = (int(2 * np.ceil(v - 1e-6)) for v in m)
        if nx < 2 or ny < 2:
            raise InputError(
                tpath.with_suffix(".cfl"),
                None,
                "trajectory too small to infer the image matrix; pass image_shape",
            )
        if nx != ny:
            nx = ny = max(nx, ny)
        log.info("%s: image matrix %dx%d inferred from the trajectory's extent", src, ny, nx)
    else:
        ny, nx = (int(v) for v in image_shape)
    traj = np.stack([2 * np.pi * tt[..., 1] / ny, 2 * np.pi * tt[..., 0] / nx], -1)
    traj = np.where(traj >= np.pi, traj - 2 * np.pi, traj).astype(np.float32)
    if np.abs(traj).max() > np.pi + 1e-3:
        raise InputError(
            tpath.with_suffix(".cfl"), None, f"trajectory beyond ±N/2 of a {ny}x{nx} matrix"
        )
    check_radial(traj, tpath.with_suffix(".cfl"), None)
    attrs = {"source_format": "BART cfl", "layout": "multi-slice" if Z > 1 else "single"}
    if F > 1:
        attrs["spokes_per_frame"] = int(S)
    return KSpaceVolume(
        kspace=np.ascontiguousarray(kk.astype(np.complex64)),
        trajectory=np.broadcast_to(traj, (Z, *traj.shape)),
        image_shape=(ny, nx),
        layout=attrs["layout"],
        attrs=attrs,
        source=str(src),
    )


def write_cfl(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a BART pair (tests and conversions)."""
    base = _base(path)
    a = np.asarray(array, np.complex64)
    dims = list(a.shape) + [1] * (16 - a.ndim)
    base.with_suffix(".hdr").write_text("# Dimensions\n" + " ".join(map(str, dims)) + " \n")
    a.reshape(-1, order="F").tofile(base.with_suffix(".cfl"))


__all__ = ["find_trajectory", "read_bart", "read_cfl", "write_cfl"]
