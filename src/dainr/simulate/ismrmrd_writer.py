"""Simulated raw scanner data: a golden-angle stack-of-stars DCE volume as ISMRMRD.

Every slice is its own DCE phantom (texture and lesions differ, the anatomy narrows
towards the volume's ends), seen through its own coil maps (the ring of coils
rotates and moves away from slice to slice). Partitions are the centred DFT over z of
the slices' k-space (``docs/raw-input.md``), so reading the file back must undo it.
Noise is correlated across coils and noise scans of the same noise open the file, so
pre-whitening has something to do. The truth goes beside ``/dataset`` (ISMRMRD readers
ignore other groups): ``/dainr/reference [F, Z, ny, nx]``, ``/dainr/coil_maps [Z, C, ny, nx]``.
Written with the ``ismrmrd`` package.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..physics.sampling import sample_coil_images
from .coils import birdcage_maps
from .phantoms import dce_phantom

log = logging.getLogger(__name__)

#: noise scans written at the start of the file, readout samples each
NOISE_SCANS, NOISE_SAMPLES = 4, 256


@dataclass
class RawVolume:
    """What :func:`simulate_dce_volume` makes, before it is written."""

    partitions: np.ndarray  #: complex64 [P, C, S, R], P = number of slices
    traj_cycles: np.ndarray  #: float32 [S, R, 2]: (kx, ky) cycles/pixel
    noise: np.ndarray  #: complex64 [C, n] noise-only samples (noise scans)
    reference: np.ndarray  #: complex64 [F, Z, ny, nx]
    coil_maps: np.ndarray  #: complex64 [Z, C, ny, nx]
    spokes_per_frame: int
    fov_mm: tuple[float, float, float] = (360.0, 360.0, 120.0)


def simulate_dce_volume(
    n_slices: int,
    size: int = 128,
    frames: int = 16,
    coils: int = 8,
    spokes_per_frame: int = 34,
    noise: float = 0.01,
    seed: int = 0,
    readout_oversampling: float = 2.0,
    frame_seconds: float = 4.0,
) -> RawVolume:
    """A stack-of-stars DCE volume of ``n_slices`` slices (see the module docstring)."""
    if n_slices < 1:
        raise ValueError(f"--slices must be >= 1, got {n_slices}")
    rng = np.random.default_rng(seed)
    refs, maps, kz_slices = [], [], []
    traj = None
    for z in range(n_slices):
        ph = dce_phantom(size, frames, seed + z, frame_seconds=frame_seconds)
        # the body narrows away from the centre slice: scale the image content
        shrink = 1.0 - 0.25 * abs(z - n_slices // 2) / max(n_slices, 1)
        f = _zoom(ph.frames, shrink)
        m = birdcage_maps(coils, (size, size), radius=1.4 + 0.2 * z / max(n_slices, 1))
        m = np.roll(m, z % coils, axis=0)  # the ring's phase/position differs per slice
        k, traj = sample_coil_images(f[:, None] * m[None], spokes_per_frame, readout_oversampling)
        refs.append(f)
        maps.append(m)
        kz_slices.append(k)
    slices = np.stack(kz_slices)  # [Z, C, S, R]
    Z = n_slices
    c = Z // 2
    zz = np.arange(Z) - c
    kz = np.arange(Z) - c
    E = np.exp(-2j * np.pi * np.outer(kz, zz) / Z)  # m_p = sum_z x_z exp(-i 2pi kz (z - c) / Z)
    parts = np.einsum("pz,zcsr->pcsr", E, slices)
    # correlated receiver noise: a random mixing of unit-variance channels
    C = coils
    mix = np.eye(C) + 0.3 * (
        rng.standard_normal((C, C)) + 1j * rng.standard_normal((C, C))
    ) / np.sqrt(2 * C)
    sigma = noise * np.sqrt(np.mean(np.abs(parts) ** 2))

    def noisy(shape):
        w = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)
        return np.einsum("ij,j...->i...", mix, w) * sigma

    parts = parts + np.moveaxis(noisy((C, *parts.shape[:1], *parts.shape[2:])), 0, 1)
    nscan = noisy((C, NOISE_SCANS * NOISE_SAMPLES))
    # contract trajectory (y, x) rad/pixel -> ISMRMRD (kx, ky) cycles/pixel
    t = np.stack([traj[..., 1], traj[..., 0]], -1) / (2 * np.pi)
    return RawVolume(
        partitions=parts.astype(np.complex64),
        traj_cycles=t.astype(np.float32),
        noise=nscan.astype(np.complex64),
        reference=np.stack(refs, axis=1).astype(np.complex64),
        coil_maps=np.stack(maps).astype(np.complex64),
        spokes_per_frame=spokes_per_frame,
    )


def _zoom(frames: np.ndarray, s: float) -> np.ndarray:
    """Content scaled by ``s`` about the image centre (pixel n//2), same matrix."""
    if abs(s - 1) < 1e-6:
        return frames
    from scipy.ndimage import affine_transform

    n = frames.shape[-1]
    ctr = n // 2
    out = np.empty_like(frames)
    for i, f in enumerate(frames):
        kw = {"matrix": [1 / s, 1 / s], "offset": [ctr - ctr / s] * 2, "order": 1}
        out[i] = affine_transform(f.real, **kw) + 1j * affine_transform(f.imag, **kw)
    return out


def header_xml(
    nx: int,
    ny: int,
    nz: int,
    n_read: int,
    coils: int,
    n_spokes: int,
    fov_mm=(360.0, 360.0, 120.0),
    spokes_per_frame: int | None = None,
    trajectory: str = "goldenangle",
) -> str:
    """The ISMRMRD XML header of a radial / stack-of-stars acquisition."""
    import ismrmrd.xsd as x

    def space(mx, my, mz):
        return x.encodingSpaceType(
            matrixSize=x.matrixSizeType(x=mx, y=my, z=mz),
            fieldOfView_mm=x.fieldOfViewMm(x=fov_mm[0], y=fov_mm[1], z=fov_mm[2]),
        )

    limits = x.encodingLimitsType(
        kspace_encoding_step_1=x.limitType(minimum=0, maximum=n_spokes - 1, center=0),
        kspace_encoding_step_2=x.limitType(minimum=0, maximum=nz - 1, center=nz // 2),
        slice=x.limitType(minimum=0, maximum=0, center=0),
    )
    enc = x.encodingType(
        encodedSpace=space(n_read, ny, nz),
        reconSpace=space(nx, ny, nz),
        encodingLimits=limits,
        trajectory=x.trajectoryType(trajectory),
    )
    hdr = x.ismrmrdHeader(
        experimentalConditions=x.experimentalConditionsType(H1resonanceFrequency_Hz=63_500_000),
        acquisitionSystemInformation=x.acquisitionSystemInformationType(
            receiverChannels=coils, systemVendor="dainr simulate"
        ),
        encoding=[enc],
    )
    if spokes_per_frame:
        hdr.userParameters = x.userParametersType(
            userParameterLong=[
                x.userParameterLongType(name="spokes_per_frame", value=int(spokes_per_frame))
            ]
        )
    return x.ToXML(hdr)


def write_ismrmrd(path: str | os.PathLike, raw: RawVolume) -> None:
    """Write ``raw`` (noise scans, then spoke-major partitions) with the ismrmrd package."""
    import h5py
    import ismrmrd

    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    tmp.unlink(missing_ok=True)
    P, C, S, R = raw.partitions.shape
    ny, nx = raw.reference.shape[-2:]
    with ismrmrd.Dataset(str(tmp), "dataset", create_if_needed=True) as ds:
        ds.write_xml_header(header_xml(nx, ny, P, R, C, S, raw.fov_mm, raw.spokes_per_frame))
        for i in range(NOISE_SCANS):
            a = ismrmrd.Acquisition.from_array(
                raw.noise[:, i * NOISE_SAMPLES : (i + 1) * NOISE_SAMPLES]
            )
            a.set_flag(ismrmrd.ACQ_IS_NOISE_MEASUREMENT)
            a.scan_counter = i
            ds.append_acquisition(a)
        counter = NOISE_SCANS
        # time order of a stack-of-stars: all partitions of spoke s, then spoke s+1
        for s in range(S):
            for p in range(P):
                a = ismrmrd.Acquisition.from_array(raw.partitions[p, :, s], raw.traj_cycles[s])
                a.idx.kspace_encode_step_1 = s
                a.idx.kspace_encode_step_2 = p
                a.center_sample = R // 2
                a.scan_counter = counter
                counter += 1
                ds.append_acquisition(a)
    with h5py.File(tmp, "a") as f:
        g = f.require_group("dainr")
        g.create_dataset("reference", data=raw.reference, compression="gzip", compression_opts=1)
        g.create_dataset("coil_maps", data=raw.coil_maps, compression="gzip", compression_opts=1)
        g.attrs["spokes_per_frame"] = raw.spokes_per_frame
    os.replace(tmp, path)
    log.info("wrote %s: %d partitions x %d coils x %d spokes x %d samples", path, P, C, S, R)


def read_truth(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray] | None:
    """``(reference [F, Z, ny, nx], coil_maps [Z, C, ny, nx])`` a simulated file carries, else None."""
    import h5py

    with h5py.File(path, "r") as f:
        if "dainr/reference" not in f:
            return None
        return f["dainr/reference"][()], f["dainr/coil_maps"][()]


__all__ = [
    "RawVolume",
    "header_xml",
    "read_truth",
    "simulate_dce_volume",
    "write_ismrmrd",
]
