"""HashINR: the 3-D hash grid, its gradient, the regularisers (quality, streaming, resume: test_methods_common)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from dainr.loop import drain, run_fit
from dainr.methods.hashinr import HashGrid3d, level_layout, sample_points

from .conftest import small_method

#: hashinr in its small test configuration, seeded
_method = partial(small_method, "hashinr")


def test_level_layout_follows_tiny_cuda_nn():
    lv = level_layout(16, 24, 16, 2.0)  # Feng et al.'s grid
    assert [v.resolution for v in lv[:5]] == [16, 32, 64, 128, 256]
    assert [v.hashed for v in lv[:6]] == [False] * 5 + [True]  # 256^3 = 2^24 still fits densely
    assert all(v.size == 2**24 for v in lv[4:])
    assert lv[1].offset == 16**3 and lv[2].offset == 16**3 + 32**3


def test_trilinear_interpolation_is_exact_for_linear_tables():
    """On a dense level, a table linear in the vertex coordinates interpolates linearly."""
    g = HashGrid3d(n_levels=1, n_features=2, log2_size=16, base=8, growth=2.0)
    lv = g.levels[0]
    assert not lv.hashed
    r = lv.resolution
    v = torch.arange(r**3)
    c0, c1, c2 = v % r, (v // r) % r, v // (r * r)
    with torch.no_grad():
        g.table[: r**3, 0] = (c0 + 2 * c1 + 3 * c2).float()
        g.table[: r**3, 1] = (5 * c2 - c0).float()
    # Away from the upper edge, where the half-cell offset puts the far corner one past the
    # grid and tiny-cuda-nn's indexing wraps it (as here).
    u = torch.rand(200, 3, generator=torch.Generator().manual_seed(0)) * 0.9
    out = g.interpolate(*g.corners(u))
    p = u * lv.scale + 0.5
    np.testing.assert_allclose(out[:, 0].detach(), (p[:, 0] + 2 * p[:, 1] + 3 * p[:, 2]), rtol=1e-5)
    np.testing.assert_allclose(out[:, 1].detach(), (5 * p[:, 2] - p[:, 0]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_features", [2, 3])
def test_table_gradient_matches_autograd(n_features):
    g = HashGrid3d(n_levels=4, n_features=n_features, log2_size=10, base=4, growth=2.0)
    assert any(lv.hashed for lv in g.levels)
    u = torch.rand(300, 3, generator=torch.Generator().manual_seed(1))
    rows, w = g.corners(u)
    assert int(rows.min()) >= 0 and int(rows.max()) < g.table.shape[0]
    np.testing.assert_allclose(w.sum(0).numpy(), 1.0, atol=1e-5)
    out = g.interpolate(rows, w)
    probe = torch.randn_like(out)
    (out * probe).sum().backward()
    table = g.table.detach().clone().requires_grad_(True)
    ref = (table[rows.long()] * w[..., None]).sum(0)  # [L, N, F]
    ref = ref.permute(1, 0, 2).reshape(out.shape)
    np.testing.assert_allclose(ref.detach().numpy(), out.detach().numpy(), rtol=1e-5, atol=1e-7)
    (ref * probe).sum().backward()
    np.testing.assert_allclose(g.table.grad.numpy(), table.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_sample_points_cover_frames_and_pixels():
    p = sample_points(3, (4, 5))
    assert p.shape == (60, 3)
    assert float(p.min()) > 0 and float(p.max()) < 1
    np.testing.assert_allclose(p[:20, 0].numpy(), 0.5 / 5)  # frame 0; time spaced like a pixel
    np.testing.assert_allclose(p[:5, 2].numpy(), (np.arange(5) + 0.5) / 5)


def test_regularisers_equal_the_hand_computed_terms(cardiac):
    """Loss = data term + tv_weight * TV / max|x| + lowrank_weight * ||X||_* / F (model.py)."""
    plain = _method(cardiac, steps=1)
    with torch.no_grad():
        x = plain.forward_frames() + 0.1  # the same frames for every loss below
    xn = x.numpy().astype(np.complex128)
    F = xn.shape[0]
    dt = np.diff(xn, axis=0)
    tv = (np.abs(dt.real).sum() + np.abs(dt.imag).sum()) / xn.size / np.abs(xn).max()
    nuclear = np.linalg.svd(xn.reshape(F, -1), compute_uv=False).sum() / F
    r = (plain.prep.op.forward(x) - plain.prep.kspace).numpy()
    ny, nx = plain.prep.image_shape
    data = 100.0 / (ny * nx) * np.mean(np.abs(r) ** 2)
    assert float(plain.loss(x)) == pytest.approx(data, rel=1e-5)
    # Weights that make each term as large as the data term, so that float32 resolves them
    # (the published 0.02 and 0.0002 give terms a million times smaller here).
    tv_w, lr_w = float(f"{data / tv:.3g}"), float(f"{data / nuclear:.3g}")
    for tv_weight, lowrank_weight, expected in [
        (tv_w, 0.0, data + tv_w * tv),
        (0.0, lr_w, data + lr_w * nuclear),
        (tv_w, lr_w, data + tv_w * tv + lr_w * nuclear),
    ]:
        m = _method(cardiac, steps=1, tv_weight=tv_weight, lowrank_weight=lowrank_weight)
        got = float(m.loss(x))
        assert got - data == pytest.approx(expected - data, rel=1e-4)
    loss = drain(run_fit(_method(cardiac, steps=3, tv_weight=0.02, lowrank_weight=0.0002)))
    assert len(loss.loss_history) == 3 and np.isfinite(loss.loss_history).all()
