"""Phantoms, coil maps and retrospective golden-angle sampling; the shipped samples.

* :func:`cardiac_phantom`, :func:`dce_phantom` — deterministic image series;
* :func:`birdcage_maps`, :func:`loop_array_maps` — coil sensitivities (idealised ring;
  a Biot-Savart loop array with smooth perturbations);
* :mod:`dainr.simulate.realistic` — real anatomy: :func:`cine_case` (the real cine) and
  :func:`perfusion_case` (first-pass perfusion on it), ``dainr simulate cine-real``;
* :func:`simulate_phantom`, :func:`simulate_images` — a contract :class:`KSpaceData`;
* :func:`sample_path` — the DCE sample shipped in ``dainr.resources``;
  :func:`cardiac_sample` — a small cardiac file made on the fly.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from ..data import KSpaceData
from .acquire import acquire_series
from .coils import birdcage_maps, loop_array_maps
from .experiment import (
    PHANTOMS,
    SimulationConfig,
    load_image_series,
    simulate_images,
    simulate_phantom,
)
from .phantoms import ContrastKinetics, DcePhantom, cardiac_phantom, dce_phantom, lv_volume_fraction
from .realistic import cine_case, perfusion_case

#: File name of the shipped DCE sample inside ``dainr.resources``.
SAMPLE_NAME = "dce_sample.h5"
#: How the shipped sample is made (``python -m dainr.simulate.make_sample`` rebuilds it):
#: the paper's 34 spokes per frame, 16 frames, 8 coils, 96 x 96 to stay a few MB.
SAMPLE_CONFIG = SimulationConfig(
    size=96, frames=16, coils=8, spokes_per_frame=34, noise=0.01, seed=0
)


def sample_path() -> Path:
    """Path of the shipped DCE-like sample (a contract ``.h5`` with ``/reference`` and ``/roi``)."""
    p = Path(str(files("dainr.resources") / SAMPLE_NAME))
    if not p.is_file():
        raise FileNotFoundError(
            f"{p}: the shipped sample is missing; rebuild it with python -m dainr.simulate.make_sample"
        )
    return p


def cardiac_sample(
    n: int = 96,
    n_frames: int = 16,
    coils: int = 8,
    spokes_per_frame: int = 13,
    noise: float = 0.01,
    seed: int = 0,
) -> KSpaceData:
    """A small cardiac cine file made on the fly (about a second on a laptop CPU)."""
    cfg = SimulationConfig(
        size=n,
        frames=n_frames,
        coils=coils,
        spokes_per_frame=spokes_per_frame,
        noise=noise,
        seed=seed,
    )
    data = simulate_phantom("cardiac", cfg)
    data.source = "cardiac sample (simulated)"
    return data


__all__ = [
    "PHANTOMS",
    "SAMPLE_CONFIG",
    "SAMPLE_NAME",
    "ContrastKinetics",
    "DcePhantom",
    "SimulationConfig",
    "acquire_series",
    "birdcage_maps",
    "cardiac_phantom",
    "cardiac_sample",
    "cine_case",
    "dce_phantom",
    "load_image_series",
    "loop_array_maps",
    "lv_volume_fraction",
    "perfusion_case",
    "sample_path",
    "simulate_images",
    "simulate_phantom",
]
