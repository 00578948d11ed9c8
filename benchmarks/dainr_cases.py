"""Real-anatomy development cases for the DA-INR benchmarks (true coil maps in the file).

The real short-axis cine ``../shared/data/sax_cine_data25.mat`` (MIT, github
yhao-z/GIRAF-3d-fast data/data25.mat; see that folder's README) cropped to the heart,
given a smooth complex phase and birdcage coil maps, and sampled radially:

* :func:`real_cine` -- the 128 x 128 x 25 cine case (13 spokes/frame, 12 coils);
* :func:`real_cine_extent` -- the r > 1 protocol: k-space covering only a ``size/r``
  grid's extent, made from the ``size`` x ``size`` truth (returns the data of the
  coarse grid and the fine truth).

The coil maps used to simulate are stored in the file, so reconstructions use the true
maps and coil-map quality does not confound comparisons of reconstruction settings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dainr.data import KSpaceData
from dainr.physics.sampling import add_noise
from dainr.simulate.acquire import acquire_series
from dainr.simulate.coils import birdcage_maps

CINE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sax_cine_data25.mat"


def cine_truth(size: int = 128, frames: int = 25, seed: int = 0) -> np.ndarray:
    """``[frames, size, size]`` complex64, peak magnitude 1: the cine cropped around the
    heart (rows 32..160, columns 14..142 of 192 x 156 at size 128), with a smooth phase."""
    from dainr.io.matlab import load_mat_dict

    a = load_mat_dict(CINE, ("data",))["data"].astype(np.float32)  # [192, 156, 25]
    a = np.transpose(a, (2, 0, 1))[:frames]
    r0, c0 = 96 - 64, 78 - 64
    a = a[:, r0 : r0 + 128, c0 : c0 + 128]
    if size != 128:
        t = torch.from_numpy(a)[:, None]
        a = torch.nn.functional.interpolate(t, size=(size, size), mode="area")[:, 0].numpy()
    a = a / a.max()
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size), indexing="ij")
    c = rng.normal(size=6)
    phase = 0.6 * (c[0] * x + c[1] * y + c[2] * x * y + c[3] * x**2 + c[4] * y**2) + c[5]
    return (a * np.exp(1j * phase)[None]).astype(np.complex64)


def real_cine(
    size: int = 128,
    frames: int = 25,
    spokes: int = 13,
    coils: int = 12,
    noise: float = 0.01,
    seed: int = 0,
) -> KSpaceData:
    """The real cine sampled at ``spokes`` per frame; ``/reference`` is the truth."""
    truth = cine_truth(size, frames, seed)
    maps = birdcage_maps(coils, (size, size), radius=1.5)
    attrs = {
        "phantom": "real-cine",
        "description": f"real SAX cine {size}^2 x {frames}, "
        f"{coils} birdcage coils, {spokes} spokes/frame, noise {noise}",
    }
    return acquire_series(truth, maps, spokes, 2.0, noise, seed, attrs=attrs)


def real_cine_extent(
    size: int = 128,
    factor: int = 2,
    frames: int = 25,
    spokes: int = 13,
    coils: int = 12,
    noise: float = 0.01,
    seed: int = 0,
) -> tuple[KSpaceData, np.ndarray]:
    """The real cine's :func:`extent_case`."""
    return extent_case(
        cine_truth(size, frames, seed), "real cine", factor, spokes, coils, noise, seed
    )


def perfusion_extent(
    factor: int = 2, spokes: int = 16, coils: int = 12, noise: float = 0.01, seed: int = 0
) -> tuple[KSpaceData, np.ndarray]:
    """The real-anatomy perfusion series' (128², 40 frames) :func:`extent_case`."""
    from dainr.simulate.realistic import perfusion_case

    truth = perfusion_case(spokes_per_frame=spokes, coils=coils, seed=seed).reference
    return extent_case(truth, "real perfusion", factor, spokes, coils, noise, seed)


def extent_case(
    truth: np.ndarray,
    name: str,
    factor: int = 2,
    spokes: int = 13,
    coils: int = 12,
    noise: float = 0.01,
    seed: int = 0,
) -> tuple[KSpaceData, np.ndarray]:
    """k-space of the ``truth`` series ``[frames, size, size]`` inside a ``size/factor``
    grid's extent, as data of that coarse grid (trajectory in its radians/pixel), and the
    fine truth.

    Coarse pixel ``q`` covers fine pixels ``factor*q .. factor*q + factor-1`` (its
    centre, ``factor*q + (factor-1)/2``, is where the coarse grid's NUFFT puts it), so
    the fine truth lies exactly on the grid that an r = ``factor`` render produces.
    The stored coil maps are the fine maps averaged over each coarse pixel.
    """
    from dainr.physics.operator import RadialOperator
    from dainr.physics.trajectory import golden_angle_trajectory

    truth = np.asarray(truth, dtype=np.complex64)
    frames, size = truth.shape[0], truth.shape[-1]
    n = size // factor
    maps = birdcage_maps(coils, (size, size), radius=1.5)
    R = 2 * n
    traj = golden_angle_trajectory(frames * spokes, R)  # radians per coarse pixel
    om = traj.reshape(frames, spokes * R, 2)
    fine = torch.from_numpy(om / factor)  # the same k in radians per fine pixel
    op = RadialOperator(fine, (size, size), maps)
    with torch.no_grad():
        y = op.forward(torch.from_numpy(truth)).numpy()  # [F, C, S*R]
    # The fine NUFFT puts fine pixel j at j - size/2; the coarse grid at factor*(q - n/2)
    # + (factor-1)/2 in fine units: shift the fine grid's origin to match.
    off = (factor - 1) / 2.0
    ramp = np.exp(1j * (fine[..., 0] + fine[..., 1]).numpy() * off)
    y = y * ramp[:, None, :]
    y = y.reshape(frames, coils, spokes, R).transpose(1, 0, 2, 3).reshape(coils, -1, R)
    y = add_noise(y.astype(np.complex64), noise, np.random.default_rng(seed))
    coarse_maps = maps.reshape(coils, n, factor, n, factor).mean((2, 4))
    coarse_truth = truth.reshape(frames, n, factor, n, factor).mean((2, 4))
    data = KSpaceData(
        kspace=y.astype(np.complex64),
        trajectory=traj,
        image_shape=(n, n),
        coil_maps=coarse_maps.astype(np.complex64),
        reference=coarse_truth.astype(np.complex64),
        attrs={
            "spokes_per_frame": spokes,
            "phantom": f"{name.replace(' ', '-')}-extent",
            "description": f"{name} {size}^2 truth, "
            f"k-space of a {n}^2 extent, {spokes} spokes/frame, {coils} coils",
        },
    )
    return data, truth
