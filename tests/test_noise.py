"""The data's own noise level, and the regularisation that follows it."""

from __future__ import annotations

import json

import numpy as np
import pytest

import dainr
from dainr.physics.noise import estimate_noise
from dainr.physics.sampling import add_noise

from .conftest import make_phantom_data


@pytest.mark.parametrize("level", [0.003, 0.01, 0.05])
def test_the_estimate_finds_the_noise_added(level):
    clean = make_phantom_data(n=32, n_frames=6, n_coils=4, spokes_per_frame=13)
    noisy = add_noise(clean.kspace, level, np.random.default_rng(1))
    true_sigma = float(np.sqrt(np.mean(np.abs(noisy - clean.kspace) ** 2)))
    est = estimate_noise(noisy, clean.trajectory)
    assert est.method == "centre differences"
    assert est.sigma == pytest.approx(true_sigma, rel=0.1)
    assert est.relative == pytest.approx(level, rel=0.12)


def test_without_a_centre_sample_the_outer_samples_bound_it():
    clean = make_phantom_data(n=32, n_frames=6, n_coils=4, spokes_per_frame=13)
    noisy = add_noise(clean.kspace, 0.02, np.random.default_rng(1))
    true_sigma = float(np.sqrt(np.mean(np.abs(noisy - clean.kspace) ** 2)))
    shifted = clean.trajectory + np.float32(0.01)  # half-sample-like offset: no centre sample
    est = estimate_noise(noisy, shifted)
    assert est.method == "outer k-space" and true_sigma * 0.9 < est.sigma < true_sigma * 3


def test_a_noise_knee_raises_grasps_lambda_and_every_output_records_the_noise():
    from dainr.methods.grasp import GraspConfig, GraspMethod
    from dainr.prepare import prepare_series

    noisy = make_phantom_data(n=32, n_frames=6, n_coils=2, spokes_per_frame=13, noise=0.08)
    prep = prepare_series(noisy, device="cpu")
    ratio = prep.settings["noise"]["image_ratio"]
    assert ratio > 0.01  # this much noise is above the knee
    off = GraspMethod(prep, GraspConfig())  # the default ignores the noise
    on = GraspMethod(prep, GraspConfig(noise_knee=0.01))
    assert on.noise_factor == pytest.approx(ratio / 0.01) and off.noise_factor == 1.0
    assert on.lam == pytest.approx(off.lam * ratio / 0.01, rel=1e-6)
    quiet = prepare_series(make_phantom_data(noise=0.001), device="cpu")
    assert GraspMethod(quiet, GraspConfig(noise_knee=0.01)).noise_factor == 1.0  # below it
    r = dainr.reconstruct(noisy, "nufft", device="cpu")
    noise = json.loads(r.attrs["preparation"])["noise"]
    assert noise["method"] == "centre differences" and noise["relative"] == pytest.approx(
        0.08, rel=0.15
    )
