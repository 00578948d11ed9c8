"""Multiresolution hash encoding: layout, hand-computed values, gradients, tiny-cuda-nn."""

import math

import pytest
import torch

from dainr.methods.dainr.hashgrid import PRIME_Y, HashGrid, level_layout, per_level_scale_for


def _tiny_grid() -> HashGrid:
    # Level 0: s = 2*3^0 - 1 = 1, 2 vertices/axis, 4 <= 32 -> dense, 8 rows (multiple of 8).
    # Level 1: s = 2*3^1 - 1 = 5, 6 vertices/axis, 36 > 32 -> hashed, 32 rows at offset 8.
    g = HashGrid(n_levels=2, n_features=2, log2_size=5, base_resolution=2, per_level_scale=3.0)
    with torch.no_grad():
        r = torch.arange(g.n_rows, dtype=torch.float32)
        g.table.copy_(torch.stack((r, -r), dim=1))  # feature 0 = row number, feature 1 = minus it
    return g


def test_layout_of_tiny_grid():
    g = _tiny_grid()
    lv = g.levels
    assert [(v.scale, v.resolution, v.size, v.offset, v.hashed) for v in lv] == [
        (1.0, 2, 8, 0, False),
        (5.0, 6, 32, 8, True),
    ]
    assert g.n_rows == 40 and g.out_dim == 4


def test_values_on_hand_computed_points():
    g = _tiny_grid()
    # u = ((x+1)/2, (y+1)/2) = (0.25, 0.6)
    # level 0: pos = u*1 + 0.5 = (0.75, 1.1): cell (0, 1), w = (0.75, 0.1)
    #   rows x + 2y: (0,1)->2, (1,1)->3, (0,2)->4, (1,2)->5
    #   2*.25*.9 + 3*.75*.9 + 4*.25*.1 + 5*.75*.1 = 2.95
    # level 1: pos = u*5 + 0.5 = (1.75, 3.5): cell (1, 3), w = (0.75, 0.5)
    #   hash = x XOR (y * 2654435761 mod 2^32), mod 32; 2654435761 = 17 mod 32
    #   y=3: 51 -> 19; y=4: 68 -> 4. (1,3): 1^19 = 18, (2,3): 2^19 = 17, (1,4): 5, (2,4): 6
    #   rows + 8: 26, 25, 13, 14 -> 26*.125 + 25*.375 + 13*.125 + 14*.375 = 19.5
    # second point u = (1, 0): level 0 pos (1.5, 0.5), cell (1, 0), w = (.5, .5);
    #   the vertex past the last column wraps into the next row: rows 1, 2, 3, 4 -> 2.5
    #   level 1 pos (5.5, 0.5), cell (5, 0), w = (.5, .5): y=0 -> 0, y=1 -> 17
    #   rows 5, 6, 5^17 = 20, 6^17 = 23 (+8) -> (13 + 14 + 28 + 31) / 4 = 21.5
    xy = torch.tensor([[-0.5, 0.2], [1.0, -1.0]])
    out = g(xy)
    expected = torch.tensor([[2.95, -2.95, 19.5, -19.5], [2.5, -2.5, 21.5, -21.5]])
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-6)


def _reference_rows(grid: HashGrid, xy: torch.Tensor) -> torch.Tensor:
    """Rows by the textbook formula in Python integers (no masking tricks)."""
    out = torch.empty(4, grid.n_levels, xy.shape[0], dtype=torch.int64)
    for n, (x, y) in enumerate(xy.tolist()):
        u = (min(max((x + 1) / 2, 0.0), 1.0), min(max((y + 1) / 2, 0.0), 1.0))
        for li, lv in enumerate(grid.levels):
            px = (
                torch.tensor(u[0], dtype=torch.float32)
                * torch.tensor(lv.scale, dtype=torch.float32)
                + 0.5
            )
            py = (
                torch.tensor(u[1], dtype=torch.float32)
                * torch.tensor(lv.scale, dtype=torch.float32)
                + 0.5
            )
            gx, gy = int(math.floor(px)), int(math.floor(py))
            for c, (dx, dy) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1))):
                ix, iy = gx + dx, gy + dy
                if lv.hashed:
                    idx = (ix ^ ((iy * PRIME_Y) % 2**32)) % lv.size
                else:
                    idx = (ix + iy * lv.resolution) % lv.size
                out[c, li, n] = lv.offset + idx
    return out


@pytest.mark.parametrize("b,finest", [(2.0, None), (None, 2048)])
def test_rows_match_textbook_formula(b, finest):
    scale = b if finest is None else per_level_scale_for(16, finest, 16)
    grid = HashGrid(per_level_scale=scale, log2_size=12)
    gen = torch.Generator().manual_seed(1)
    xy = torch.rand(64, 2, generator=gen) * 2.2 - 1.1  # a few beyond the field of view
    rows, w = grid.corners(xy)
    assert torch.equal(rows.long(), _reference_rows(grid, xy))
    torch.testing.assert_close(w.sum(0), torch.ones(grid.n_levels, 64))


def test_default_layout_paper_and_released():
    paper = level_layout(16, 19, 16, 2.0)
    assert [lv.resolution for lv in paper[:3]] == [16, 32, 64]
    assert sum(not lv.hashed for lv in paper) == 6  # 513^2 <= 2^19 < 1025^2
    b = per_level_scale_for(16, 2048, 16)
    assert b == pytest.approx(128 ** (1 / 15))
    released = level_layout(16, 19, 16, b)
    assert released[-1].resolution == 2048
    assert all(lv.size <= 2**19 for lv in released)


def test_init_range_and_gradients_match_autograd_reference():
    torch.manual_seed(0)
    grid = HashGrid(n_levels=4, log2_size=8, base_resolution=4, per_level_scale=2.0)
    assert grid.table.abs().max() <= 1e-4
    with torch.no_grad():
        grid.table.normal_()
    xy = (torch.rand(50, 2) * 2 - 1).requires_grad_()
    out = grid(xy)
    w_out = torch.randn_like(out)
    (out * w_out).sum().backward()
    g_table, g_xy = grid.table.grad.clone(), xy.grad.clone()

    # reference: gather with autograd's own embedding, same rows and weights
    table = grid.table.detach().clone().requires_grad_()
    xy2 = xy.detach().clone().requires_grad_()
    rows, weights = grid.corners(xy2)
    vals = torch.nn.functional.embedding(rows.long(), table)  # [4, L, N, F]
    ref = (vals * weights[..., None]).sum(0).permute(1, 0, 2).reshape(50, -1)
    torch.testing.assert_close(out, ref)
    (ref * w_out).sum().backward()
    torch.testing.assert_close(g_table, table.grad)
    torch.testing.assert_close(g_xy, xy2.grad)


def test_table_gradient_accumulates_in_place():
    grid = HashGrid(n_levels=2, log2_size=6, base_resolution=4)
    xy = torch.rand(10, 2) * 2 - 1
    grid(xy).sum().backward()
    buf = grid.table.grad
    first = buf.clone()
    grid(xy).sum().backward()
    assert grid.table.grad is buf  # the same buffer, no fresh allocation
    torch.testing.assert_close(buf, 2 * first)


@pytest.mark.cuda
def test_tcnn_matches_pure_pytorch():
    """Values, input gradients (how the deformation network learns) and table gradients
    of tiny-cuda-nn and the pure-PyTorch grid on the same table. The released growth
    factor (128^(1/15)) puts every level but the first at a non-integer scale, so no
    level's positions land on exact integers where rounding could go either way."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    pytest.importorskip("tinycudann")
    b = per_level_scale_for(16, 2048, 16)
    kw = dict(n_levels=16, n_features=2, log2_size=15, base_resolution=16, per_level_scale=b)
    ref = HashGrid(**kw).cuda()
    fast = HashGrid(**kw, backend="tcnn").cuda()
    assert sum(lv.scale != int(lv.scale) for lv in ref.levels) == 15
    with torch.no_grad():
        ref.table.normal_()
        fast.table.copy_(ref.table)
    gen = torch.Generator(device="cuda").manual_seed(0)
    xy = torch.rand(4096, 2, device="cuda", generator=gen) * 2 - 1
    w_out = torch.randn(4096, ref.out_dim, device="cuda", generator=gen)
    outs, grads = [], []
    for grid in (ref, fast):
        x = xy.clone().requires_grad_()
        out = grid(x)
        (out * w_out).sum().backward()
        outs.append(out.detach())
        grads.append((x.grad, grid.table.grad.clone()))
    torch.testing.assert_close(outs[1], outs[0], atol=2e-3, rtol=2e-3)
    for g_fast, g_ref in zip(grads[1], grads[0]):
        # relative in norm: a point within rounding of a cell edge may take either side
        assert (g_fast - g_ref).norm() / g_ref.norm() < 1e-3


def test_row_wise_path_matches_packed_path():
    torch.manual_seed(0)
    grid = HashGrid(n_levels=3, log2_size=8, base_resolution=4)
    with torch.no_grad():
        grid.table.normal_()
    xy = (torch.rand(40, 2) * 2 - 1).requires_grad_()
    out = grid(xy)
    out.square().sum().backward()
    g_table, g_xy = grid.table.grad.clone(), xy.grad.clone()
    # float64 takes the row-wise path (complex packing is for float32 on a CPU)
    grid64 = HashGrid(n_levels=3, log2_size=8, base_resolution=4).double()
    with torch.no_grad():
        grid64.table.copy_(grid.table)
    xy64 = xy.detach().double().requires_grad_()
    out64 = grid64(xy64)
    out64.square().sum().backward()
    torch.testing.assert_close(out64.float(), out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grid64.table.grad.float(), g_table, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(xy64.grad.float(), g_xy, atol=1e-3, rtol=1e-4)


def test_nan_points_give_nan_features_not_an_index_error():
    """A diverged deformation must surface as a NaN loss the loop reports."""
    grid = HashGrid(n_levels=3, log2_size=6, base_resolution=4)
    xy = torch.tensor([[0.1, 0.2], [float("nan"), 0.3]])
    out = grid(xy)
    assert torch.isfinite(out[0]).all() and torch.isnan(out[1]).all()
