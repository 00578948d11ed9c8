"""napari sample data: the bundled DCE-like sample and a cardiac-like cine, as k-space layers.

Each opens as a gridding preview that carries its k-space, so "DA-INR reconstruction"
can fit it right away.
"""

from __future__ import annotations

from typing import Any

from ._layers import preview_layer

LayerData = tuple[Any, dict[str, Any], str]


def dce_sample() -> list[LayerData]:
    """The simulated DCE-like abdominal sample shipped with the package."""
    from dainr.io import load_kspace
    from dainr.simulate import sample_path

    path = sample_path()
    return [preview_layer(load_kspace(path), "DCE sample", source=path)]


def cardiac_sample() -> list[LayerData]:
    """A cardiac-like cine phantom, retrospectively sampled on golden-angle spokes."""
    from dainr.simulate import cardiac_sample as make_cardiac

    return [preview_layer(make_cardiac(), "cardiac phantom")]
