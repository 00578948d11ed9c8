"""Tiny phantoms and operators shared by the tests (kept small: the suite must stay fast)."""

from __future__ import annotations

import numpy as np
import pytest

from dainr.data import KSpaceData
from dainr.simulate import SimulationConfig, simulate_phantom
from dainr.simulate.acquire import acquire_series

#: A tiny DA-INR (2^12-row table, 16-wide networks, 8 feature channels): the loop, render
#: and fault tests do not depend on the network's size, only on its being DA-INR.
TINY_DAINR = dict(hash_log2_size=12, deform_width=16, canon_width=16, feature_channels=8)

#: small but real configurations of the learned and iterative methods, for the 32 x 32 tests
SMALL = {
    "dainr": TINY_DAINR,
    "tddip": dict(channels=32),  # published: 128 channels
    "hashinr": dict(
        hash_log2_size=14, mlp_width=64, mlp_hidden_layers=2
    ),  # published: 2^24, 5 x 128
    "grasp": dict(),
}


def small_method(name: str, data: KSpaceData, **overrides):
    """``name`` in its small configuration (plus ``overrides``), networks seeded with 0.

    On the CPU: tests compare runs to 1e-5 or exactly, which CUDA's atomic scatters (the
    hash tables' gradients) do not promise.
    """
    from dainr.api import make_method
    from dainr.checkpoint import seed_everything

    seed_everything(0)  # the networks are initialised when the method is built
    return make_method(data, name, device="cpu", **(SMALL[name] | overrides))


def moving_disc_series(n: int = 32, n_frames: int = 6) -> np.ndarray:
    """A static body with fine bars and a small disc whose radius beats over the frames."""
    yy, xx = np.mgrid[:n, :n] - n // 2
    body = ((yy / (0.42 * n)) ** 2 + (xx / (0.36 * n)) ** 2 < 1).astype(np.float32) * 0.5
    bars = ((np.abs(xx + n // 5) < n // 10) & (np.abs(yy) < n // 6) & (yy % 3 == 0)) * 0.4
    frames = []
    for f in range(n_frames):
        r = n * (0.10 + 0.05 * np.sin(2 * np.pi * f / n_frames))
        disc = (yy**2 + (xx - n // 8) ** 2) < r**2
        frames.append(body + bars + disc * 0.8)
    phase = np.exp(1j * 0.4 * xx / n)
    return (np.stack(frames) * phase).astype(np.complex64)


def gaussian_coils(n_coils: int, n: int) -> np.ndarray:
    """Smooth coil maps around the field of view, RSS-normalised."""
    yy, xx = np.mgrid[:n, :n] - n // 2
    maps = []
    for c in range(n_coils):
        a = 2 * np.pi * c / n_coils
        cy, cx = 0.6 * n * np.sin(a), 0.6 * n * np.cos(a)
        mag = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (0.6 * n) ** 2))
        maps.append(mag * np.exp(1j * (a + 0.02 * (xx + yy))))
    maps = np.stack(maps)
    return (maps / np.sqrt((np.abs(maps) ** 2).sum(0))).astype(np.complex64)


def make_phantom_data(
    n=32, n_frames=6, n_coils=4, spokes_per_frame=13, noise=0.0, seed=0
) -> KSpaceData:
    frames = moving_disc_series(n, n_frames)
    return acquire_series(
        frames, gaussian_coils(n_coils, n), spokes_per_frame, noise_level=noise, seed=seed
    )


@pytest.fixture
def tiny_data() -> KSpaceData:
    """32 x 32, 6 frames, 4 coils, 13 spokes per frame, with reference and maps."""
    return make_phantom_data()


@pytest.fixture
def tiny_file(tmp_path, tiny_data):
    from dainr.io import write_kspace_h5

    p = tmp_path / "tiny.h5"
    write_kspace_h5(p, tiny_data)
    return p


@pytest.fixture(scope="session")
def cardiac() -> KSpaceData:
    """32 x 32 beating heart, 6 frames, 4 coils, 13 spokes per frame, 1 % noise.

    Shared read-only: methods prepare their own tensors from it and never write to it.
    """
    return simulate_phantom(
        "cardiac", SimulationConfig(size=32, frames=6, coils=4, spokes_per_frame=13)
    )
