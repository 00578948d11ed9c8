"""ISMRMRD raw data (the HDF5 variant) -> :class:`KSpaceVolume` / :class:`KSpaceData`.

Conventions (header fields, trajectory units and axes, the kz sign and centre, noise
scans) are those of ``docs/raw-input.md``. The file, its XML header and the layout of
its acquisition table come from the ``ismrmrd`` package; the table is read in one pass
(per-acquisition ``read_acquisition`` costs milliseconds a spoke, minutes for a liver
exam). Every problem is an :class:`InputError` naming the file and what is wrong.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import h5py
import numpy as np

from ..data import KSpaceVolume
from ..errors import InputError
from ..physics.trajectory import check_radial

log = logging.getLogger(__name__)

#: The group ISMRMRD writers use; the napari reader and the loader look for it.
DATASET = "dataset"
RADIAL_KINDS = ("radial", "goldenangle")

#: acquisitions that are no imaging data (besides noise scans, which whiten the coils)
_SKIPPED_FLAGS = {
    20: "parallel calibration",
    23: "navigation",
    24: "phase correction",
    26: "HP feedback",
    27: "dummy scan",
    28: "RT feedback",
    29: "surface coil correction",
    30: "phase stabilisation reference",
    31: "phase stabilisation",
}
_NOISE_FLAG = 19


def is_ismrmrd_file(path: str | os.PathLike) -> bool:
    """True for an HDF5 file with ``/dataset/xml`` (h5py only: cheap, imports nothing else)."""
    try:
        with h5py.File(path, "r") as f:
            g = f.get(DATASET)
            return isinstance(g, h5py.Group) and "xml" in g
    except Exception:
        return False


def _bit(flag: int) -> int:
    return 1 << (flag - 1)  # ismrmrd's FlagsMixin numbering: flag n is bit n-1


def _header(path: Path, dset) -> object:
    import ismrmrd.xsd

    try:
        xml = dset.read_xml_header()
    except (LookupError, KeyError):
        raise InputError(path, f"/{DATASET}/xml", "missing ISMRMRD XML header") from None
    try:
        return ismrmrd.xsd.CreateFromDocument(xml)
    except Exception as e:
        raise InputError(
            path,
            f"/{DATASET}/xml",
            f"not a valid ISMRMRD header ({e.__class__.__name__}: {str(e)[:120]})",
        ) from None


def _limit(limits, name: str) -> tuple[int, int] | None:
    lim = getattr(limits, name, None) if limits is not None else None
    if lim is None:
        return None
    return int(lim.maximum or 0), int(lim.center or 0)


def read_ismrmrd(path: str | os.PathLike, dataset: str = DATASET) -> KSpaceVolume:
    """All imaging acquisitions of ``path`` as slices (partitions separated by the kz DFT)."""
    import ismrmrd

    from .h5contract import _open_problem

    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "no such file")
    try:
        dset = ismrmrd.Dataset(str(path), dataset, mode="r")
    except OSError as e:
        raise InputError(path, None, _open_problem(path, e)) from None
    with dset:
        if dataset not in dset._file:
            raise InputError(path, f"/{dataset}", "no ISMRMRD dataset group in this HDF5 file")
        hdr = _header(path, dset)
        table = dset._dataset.get("data")
        if table is None or table.size == 0:
            raise InputError(path, f"/{dataset}/data", "no acquisitions")
        try:
            heads = table.fields("head")[()]
            raw = table.fields("data")[()]
            raw_traj = table.fields("traj")[()]
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise InputError(
                path,
                f"/{dataset}/data",
                f"acquisitions could not be read, truncated or damaged ({str(e)[:120]})",
            ) from None
    return _assemble(path, dataset, hdr, heads, raw, raw_traj)


def _assemble(path: Path, dataset: str, hdr, heads, raw, raw_traj) -> KSpaceVolume:
    where = f"/{dataset}/data"
    if not hdr.encoding:
        raise InputError(path, f"/{dataset}/xml", "header has no encoding section")
    enc = hdr.encoding[0]
    kind = enc.trajectory.value if enc.trajectory is not None else "unknown"
    recon = enc.reconSpace.matrixSize
    nx, ny, nz = int(recon.x), int(recon.y), max(1, int(recon.z or 1))
    if kind == "cartesian" or kind in ("epi", "spiral"):
        raise InputError(
            path,
            f"/{dataset}/xml",
            f"{kind} acquisition: this tool reconstructs radial (golden-angle) data only",
        )

    flags = heads["flags"].astype(np.uint64)
    noise = (flags & np.uint64(_bit(_NOISE_FLAG))) != 0
    skip = np.zeros(len(heads), bool)
    for flag, name in _SKIPPED_FLAGS.items():
        hit = (flags & np.uint64(_bit(flag))) != 0
        if hit.any():
            log.info("%s: skipping %d %s acquisitions", path, int(hit.sum()), name)
        skip |= hit
    imaging = ~noise & ~skip
    if not imaging.any():
        raise InputError(path, where, "no imaging acquisitions (only noise or calibration scans)")
    h = heads[imaging]
    samples = np.unique(h["number_of_samples"])
    if samples.size > 1:
        raise InputError(
            path,
            where,
            f"mixed readout lengths ({', '.join(map(str, samples[:4]))} samples): expected one readout length for all spokes",
        )
    coils = np.unique(h["active_channels"])
    if coils.size > 1:
        raise InputError(
            path, where, f"mixed coil counts ({', '.join(map(str, coils[:4]))}) across acquisitions"
        )
    n_read, n_coils = int(samples[0]), int(coils[0])
    data = _samples(path, where, raw[imaging], n_coils, n_read)

    pre, post = int(h["discard_pre"].max()), int(h["discard_post"].max())
    keep = slice(pre, n_read - post)
    traj_dims = np.unique(h["trajectory_dimensions"])
    if traj_dims.size > 1:
        raise InputError(path, where, "mixed trajectory dimensions across acquisitions")
    traj = None
    if int(traj_dims[0]) >= 2:
        traj = _traj(path, where, raw_traj[imaging], n_read, int(traj_dims[0]))[:, keep]
    elif kind not in RADIAL_KINDS:
        raise InputError(
            path,
            where,
            f"no trajectory in the acquisitions and the header's trajectory is {kind!r}, not radial: cannot place the samples",
        )
    data = data[:, :, keep]
    if pre or post:
        log.info("%s: discarding %d + %d samples per readout as the headers say", path, pre, post)

    noise_cov = None
    if noise.any():
        noise_cov = _noise_covariance(path, where, heads[noise], raw[noise], n_coils)

    idx = h["idx"]
    e1, e2, sl = idx["kspace_encode_step_1"], idx["kspace_encode_step_2"], idx["slice"]
    limits = enc.encodingLimits
    e2_lim = _limit(limits, "kspace_encoding_step_2")
    n_part = int(np.unique(e2).size)
    n_sl = int(np.unique(sl).size)
    if n_part > 1 and n_sl > 1:
        raise InputError(
            path,
            where,
            "both kz partitions and 2-D slices: multi-slab stack-of-stars is not supported",
        )
    if n_part > 1 or (e2_lim is not None and e2_lim[0] > 0):
        layout, group, n_groups = "stack-of-stars", e2.astype(np.int64), nz
        if group.max() >= nz:
            raise InputError(
                path,
                where,
                f"partition index {int(group.max())} beyond reconSpace matrixSize.z = {nz}",
            )
    elif n_sl > 1:
        layout, group = "multi-slice", sl.astype(np.int64)
        n_groups = int(group.max()) + 1
    else:
        layout, group, n_groups = "single", np.zeros(len(h), np.int64), 1

    order = np.lexsort((np.arange(len(h)), idx["repetition"], e1, group))
    counts = np.bincount(group, minlength=n_groups)
    present = np.flatnonzero(counts)
    n_spokes = int(counts[present].max())
    short = [int(g) for g in present if counts[g] != n_spokes]
    if short:
        g = short[0]
        what = "partition" if layout == "stack-of-stars" else "slice"
        raise InputError(
            path,
            where,
            f"truncated or incomplete data: {what} {g} has {counts[g]} spokes, the others {n_spokes}",
        )
    if layout == "multi-slice" and present.size != n_groups:
        missing = sorted(set(range(n_groups)) - set(present.tolist()))
        raise InputError(path, where, f"slices {missing[:5]} have no acquisitions")
    R = data.shape[2]
    k = np.zeros((n_groups, n_coils, n_spokes, R), np.complex64)
    spoke_idx = np.zeros((n_groups, n_spokes), np.int64)
    t = None if traj is None else np.zeros((n_groups, n_spokes, R, 2), np.float32)
    # ``order`` sorts by group first: group g's acquisitions are the run of it that
    # starts where the groups before it end
    starts = np.concatenate(([0], np.cumsum(counts)))
    for g in present:
        sel = order[starts[g] : starts[g + 1]]
        k[g] = data[sel].transpose(1, 0, 2)
        spoke_idx[g] = e1[sel]
        if t is not None:
            t[g] = traj[sel]

    if layout == "stack-of-stars":
        if present.size < nz:
            log.info(
                "%s: %d of %d partitions acquired; the others are zero-filled",
                path,
                present.size,
                nz,
            )
        first = present[0]
        if np.any(spoke_idx[present] != spoke_idx[first]):
            raise InputError(
                path,
                where,
                "partitions hold different spoke indices: stack-of-stars needs the same spokes in every partition",
            )
        if t is not None and np.abs(t[present] - t[first]).max() > 1e-4:
            raise InputError(
                path,
                where,
                "partitions have different trajectories: stack-of-stars needs the same spokes in every partition",
            )
        k = partitions_to_slices(k)
        traj_rad = _to_contract(
            path,
            _trajectory(
                path, t[first] if t is not None else None, spoke_idx[first], R, kind, nx, ny
            ),
        )
        trajectory = np.broadcast_to(traj_rad, (nz, *traj_rad.shape))
    else:
        per = [
            _to_contract(
                path, _trajectory(path, None if t is None else t[g], spoke_idx[g], R, kind, nx, ny)
            )
            for g in range(n_groups)
        ]
        same = all(np.array_equal(p, per[0]) for p in per[1:])
        trajectory = np.broadcast_to(per[0], (n_groups, *per[0].shape)) if same else np.stack(per)
    check_radial(trajectory, path, f"{where} trajectory")
    if noise_cov is not None:
        k = whiten(k, noise_cov, axis=1, source=path)
    fov = enc.reconSpace.fieldOfView_mm
    pixel = None
    if fov is not None and fov.x:
        dz = float(fov.z) / (nz if layout == "stack-of-stars" else 1)
        pixel = (dz, float(fov.y) / ny, float(fov.x) / nx)
    attrs = {
        "source_format": "ISMRMRD",
        "layout": layout,
        "header_trajectory": kind,
        "noise_prewhitened": noise_cov is not None,
    }
    system = hdr.acquisitionSystemInformation
    if system is not None:
        if system.systemVendor:
            attrs["vendor"] = str(system.systemVendor)
        if system.receiverChannels and int(system.receiverChannels) != n_coils:
            log.warning(
                "%s: header says %s receiver channels, acquisitions hold %d",
                path,
                system.receiverChannels,
                n_coils,
            )
    spf = _user_long(hdr, "spokes_per_frame")
    if spf:
        attrs["spokes_per_frame"] = spf
    return KSpaceVolume(
        kspace=k,
        trajectory=trajectory,
        image_shape=(ny, nx),
        layout=layout,
        pixel_size_mm=pixel,
        attrs=attrs,
        source=str(path),
    )


def _samples(path: Path, where: str, raw: np.ndarray, n_coils: int, n_read: int) -> np.ndarray:
    """The vlen float pairs of every acquisition -> complex64 ``[A, coils, samples]``."""
    want = 2 * n_coils * n_read
    lengths = np.fromiter((r.size for r in raw), np.int64, len(raw))
    bad = np.flatnonzero(lengths != want)
    if bad.size:
        i = int(bad[0])
        raise InputError(
            path,
            where,
            f"truncated data: acquisition {i} holds {lengths[i]} values, its header says {n_coils} coils x {n_read} samples x 2",
        )
    return np.stack(raw).view(np.complex64).reshape(len(raw), n_coils, n_read)


def _traj(path: Path, where: str, raw: np.ndarray, n_read: int, dims: int) -> np.ndarray:
    want = n_read * dims
    for i, r in enumerate(raw):
        if r.size != want:
            raise InputError(
                path,
                where,
                f"truncated trajectory: acquisition {i} holds {r.size} values, expected {n_read} samples x {dims}",
            )
    return np.stack(raw).reshape(len(raw), n_read, dims)[..., :2].astype(np.float32)


def _trajectory(path, traj, spokes, n_read, kind, nx, ny) -> np.ndarray:
    """``[S, R, 2]`` (kx, ky) in cycles/pixel: the file's (rescaled if ±N/2), else golden angle."""
    if traj is None:
        from ..physics.trajectory import golden_angle_trajectory

        log.info(
            "%s: no trajectory in the acquisitions; header says %s: computing golden-angle spokes (111.246 deg) from the spoke index",
            path,
            kind,
        )
        ga = golden_angle_trajectory(int(spokes.max()) + 1, n_read)[spokes]  # rad/pixel (y, x)
        return np.stack([ga[..., 1], ga[..., 0]], -1) / (2 * np.pi)
    m = float(np.abs(traj).max())
    if m <= 0.5 + 1e-3:
        return traj
    if m <= max(nx, ny) / 2 * 1.05 + 1:
        log.info(
            "%s: trajectory reaches |k| = %.1f: BART-style units of 1/FOV (+-N/2), rescaled to cycles/pixel",
            path,
            m,
        )
        return traj / np.asarray([nx, ny], np.float32)
    raise InputError(
        path,
        f"/{DATASET}/data",
        f"trajectory reaches |k| = {m:.3g}: neither cycles/pixel (within +-0.5) nor +-N/2 for a {ny}x{nx} matrix",
    )


def _to_contract(path, k_cycles: np.ndarray) -> np.ndarray:
    """(kx, ky) cycles/pixel -> the contract's (y, x) radians/pixel in [-pi, pi)."""
    t = np.stack([k_cycles[..., 1], k_cycles[..., 0]], -1).astype(np.float64) * 2 * np.pi
    t = np.where(t >= np.pi, t - 2 * np.pi, t)
    return t.astype(np.float32)


def partitions_to_slices(m: np.ndarray) -> np.ndarray:
    """Centred inverse DFT over axis 0 (kz = p - nz//2, z - nz//2): raw-input.md's signal model."""
    x = np.fft.fftshift(np.fft.ifft(np.fft.ifftshift(m, axes=0), axis=0), axes=0)
    return x.astype(np.complex64)


def _noise_covariance(path: Path, where: str, heads, raw, n_coils: int) -> np.ndarray | None:
    chunks = []
    for hd, r in zip(heads, raw):
        c, n = int(hd["active_channels"]), int(hd["number_of_samples"])
        if c != n_coils:
            log.warning("%s: noise scan with %d coils (data has %d): ignored", path, c, n_coils)
            continue
        if r.size != 2 * c * n:
            raise InputError(
                path,
                where,
                f"truncated noise scan: {r.size} values, header says {c} coils x {n} samples x 2",
            )
        chunks.append(r.view(np.complex64).reshape(c, n))
    if not chunks:
        return None
    x = np.concatenate(chunks, axis=1).astype(np.complex128)
    log.info("%s: noise covariance from %d noise samples per coil", path, x.shape[1])
    return x @ x.conj().T / x.shape[1]


def whiten(k: np.ndarray, cov: np.ndarray, axis: int, source=None) -> np.ndarray:
    """Pre-whiten coils: ``L^-1 k`` along ``axis`` with ``cov = L L^H`` (Cholesky).

    Scaled so that the mean noise variance per coil is unchanged (only the coils'
    correlations and relative levels change); a singular covariance leaves the data as is.
    """
    try:
        L = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        log.warning("%s: noise covariance is not positive definite: data not pre-whitened", source)
        return k
    W = np.linalg.inv(L) * np.sqrt(np.real(np.trace(cov)) / cov.shape[0])
    moved = np.moveaxis(k, axis, -1)
    return np.moveaxis(moved @ W.T.astype(np.complex64), -1, axis).astype(np.complex64)


def _user_long(hdr, name: str) -> int | None:
    up = getattr(hdr, "userParameters", None)
    for p in getattr(up, "userParameterLong", None) or []:
        if p.name == name:
            return int(p.value)
    return None


__all__ = ["is_ismrmrd_file", "partitions_to_slices", "read_ismrmrd", "whiten"]
