"""TD-DIP: helix latents, decoder shapes, bad options (quality, streaming, resume: test_methods_common)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from dainr.methods.tddip import helix
from dainr.simulate import SimulationConfig, simulate_phantom

from .conftest import small_method

#: tddip in its small test configuration, seeded
_method = partial(small_method, "tddip")


def test_helix_is_a_circle_plus_a_line():
    z = helix(9, 2.0)
    assert z.shape == (9, 3)
    np.testing.assert_allclose((z[:, 0] ** 2 + z[:, 1] ** 2).numpy(), 1.0, atol=1e-6)
    np.testing.assert_allclose(z[:, 2].numpy(), np.linspace(0, 1, 9), atol=1e-7)
    # Two turns: half-way through the series the angle is 2 pi.
    np.testing.assert_allclose(z[4, :2].numpy(), [1.0, 0.0], atol=1e-6)


def test_decoder_fills_a_non_multiple_image_size():
    data = simulate_phantom(
        "cardiac", SimulationConfig(size=40, frames=3, coils=2, spokes_per_frame=8)
    )
    m = _method(data, up_factor=8)
    assert m.latent_shape == (5, 5)
    x = m.current_frames()
    assert x.shape == (3, 40, 40) and x.is_complex()


def test_bad_options_are_refused(cardiac):
    with pytest.raises(ValueError, match="up_factor=12: must be a power of two"):
        _method(cardiac, up_factor=12)
    with pytest.raises(ValueError, match=r"frames_per_step=7: must be in 1\.\.6"):
        _method(cardiac, frames_per_step=7)
