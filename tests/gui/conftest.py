"""Fixtures of the napari plugin's tests: tiny k-space layers and a docked widget."""

from __future__ import annotations

import numpy as np
import pytest

#: a fit in a test never needs more than this (the tiny data fit in seconds)
FIT_TIMEOUT_MS = 120_000


@pytest.fixture
def fast_dainr() -> dict:
    """DA-INR settings that keep a step at a few milliseconds on 32 x 32 (not for quality)."""
    return {"hash_log2_size": 12, "hash_levels": 4, "deform_width": 16, "canon_width": 16}


def set_advanced(widget, values: dict) -> None:
    """Type ``values`` into the advanced form, as a user would."""
    for name, value in values.items():
        getattr(widget.config_form, name).value = value


def image_of(viewer, name: str):
    return next(x for x in viewer.layers if x.name == name)


@pytest.fixture
def known_series() -> np.ndarray:
    """[5, 32, 32]: each frame a different ramp, so every ROI mean is distinct and checkable."""
    f, y, x = np.mgrid[:5, :32, :32].astype(np.float32)
    return (1.0 + f) * (1.0 + 0.1 * y + 0.03 * x)
