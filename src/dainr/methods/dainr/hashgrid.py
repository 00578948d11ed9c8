"""Multiresolution hash encoding of 2-D points (Müller et al. 2022, Instant-NGP).

The grid follows tiny-cuda-nn's conventions exactly, so that the pure-PyTorch
version here and tiny-cuda-nn's CUDA kernels compute the same function of the same
parameter table:

* level ``l`` has scale ``s_l = N_min * b^l - 1`` and ``ceil(s_l) + 1`` vertices per
  axis; a point ``u`` in the unit square sits at ``u * s_l + 0.5`` on that level's grid
  (the half-cell offset staggers the levels, Instant-NGP appendix A);
* a level whose vertices fit in ``T`` entries is stored densely (row-major, x fastest),
  otherwise vertices are hashed with ``x * 1 XOR y * 2654435761`` (uint32) mod ``T``;
* each level holds ``min(next multiple of 8 of vertices, T)`` rows of ``F`` features,
  levels one after the other in one table, initialised uniformly in ``±1e-4``;
* features are bilinearly interpolated from the four surrounding vertices; the output
  is the levels' features concatenated, level-major.

Inputs here are in ``[-1, 1]`` (the image's coordinates) and are mapped to the unit
square; points outside it (a deformation pushing past the field of view) are clamped
to its edge, where tiny-cuda-nn would wrap around.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import nn

log = logging.getLogger(__name__)

PRIME_Y = 2654435761  #: Instant-NGP's second hashing prime (the first is 1)
_U32 = 0xFFFFFFFF
INIT_RANGE = 1e-4  #: Instant-NGP initialises the table uniformly in ±1e-4


@dataclass(frozen=True)
class LevelLayout:
    scale: float  #: s_l: grid positions are u * scale + 0.5
    resolution: int  #: vertices per axis
    size: int  #: rows this level holds in the table
    offset: int  #: its first row
    hashed: bool


def per_level_scale_for(base_resolution: int, finest_resolution: int, n_levels: int) -> float:
    """Growth factor ``b`` that makes the finest level ``finest_resolution`` (Instant-NGP eq. 3)."""
    if n_levels < 2:
        return 1.0
    return math.exp((math.log(finest_resolution) - math.log(base_resolution)) / (n_levels - 1))


def level_layout(
    n_levels: int, log2_size: int, base_resolution: int, per_level_scale: float, dim: int = 2
) -> list[LevelLayout]:
    """Scales, sizes and offsets of every level of a ``dim``-D grid, computed in float32
    as tiny-cuda-nn does (HashINR's 3-D grid uses the same layout)."""
    t = 1 << log2_size
    log2_b = torch.tensor(math.log2(per_level_scale), dtype=torch.float32)
    out, offset = [], 0
    for lev in range(n_levels):
        s = float(torch.exp2(lev * log2_b) * base_resolution - 1.0)
        res = int(math.ceil(s)) + 1
        dense = min(res**dim, 2**62)
        size = min(-(-dense // 8) * 8, t)
        out.append(LevelLayout(s, res, size, offset, size < res**dim))
        offset += size
    return out


def tcnn_available() -> bool:
    try:
        import tinycudann  # noqa: F401
    except Exception:  # ImportError, or a build that fails to load its CUDA library
        return False
    return True


class HashGrid(nn.Module):
    """``xy[N, 2]`` in ``[-1, 1]`` -> ``[N, n_levels * n_features]``.

    ``backend``: ``torch`` (always works, any device), ``tcnn`` (tiny-cuda-nn, CUDA
    only) or ``auto`` (tcnn when it imports and the grid lives on a CUDA device).
    """

    def __init__(
        self,
        n_levels: int = 16,
        n_features: int = 2,
        log2_size: int = 19,
        base_resolution: int = 16,
        per_level_scale: float = 2.0,
        backend: str = "torch",
    ):
        super().__init__()
        if backend not in ("torch", "tcnn"):
            raise ValueError(f"hash grid backend must be torch or tcnn, got {backend!r}")
        self.n_levels = n_levels
        self.n_features = n_features
        self.log2_size = log2_size
        self.base_resolution = base_resolution
        self.per_level_scale = per_level_scale
        self.levels = level_layout(n_levels, log2_size, base_resolution, per_level_scale)
        self.n_rows = self.levels[-1].offset + self.levels[-1].size
        self.backend = backend
        # One parameter in one layout whatever the backend: checkpoints and optimiser
        # states move between CPU (torch) and GPU (tcnn) runs, and the initial table comes
        # from torch's generator, so the run's seed sets it on either backend.
        self.table = nn.Parameter(init_table(self.n_rows, n_features))
        self._tcnn = _make_tcnn(self) if backend == "tcnn" else None
        f32 = torch.float32
        self.register_buffer(
            "_scale", torch.tensor([lv.scale for lv in self.levels], dtype=f32), persistent=False
        )
        self.register_buffer(
            "_res", torch.tensor([lv.resolution for lv in self.levels]), persistent=False
        )
        self.register_buffer(
            "_size", torch.tensor([lv.size for lv in self.levels]), persistent=False
        )
        self.register_buffer(
            "_offset", torch.tensor([lv.offset for lv in self.levels]), persistent=False
        )
        self._n_dense = sum(not lv.hashed for lv in self.levels)
        # int32 halves the memory traffic of the index arithmetic; the hashed product
        # y * prime and the rows must then fit in it (they do for T = 2^19 at 2048²).
        prime = PRIME_Y & ((1 << log2_size) - 1)
        biggest = max((self.levels[-1].resolution + 2) * prime, 2 * self.n_rows)
        self._index_dtype = torch.int32 if biggest < 2**31 else torch.int64
        if any(lv.hashed for lv in self.levels[: self._n_dense]):
            raise AssertionError("dense levels must come first (resolution grows with the level)")
        corner = [[0, 1, lv.resolution, lv.resolution + 1] for lv in self.levels]
        self.register_buffer(
            "_dense_corner", torch.tensor(corner).t().contiguous(), persistent=False
        )

    @property
    def out_dim(self) -> int:
        return self.n_levels * self.n_features

    def extra_repr(self) -> str:
        n_hashed = sum(lv.hashed for lv in self.levels)
        return (
            f"levels={self.n_levels}, features={self.n_features}, T=2^{self.log2_size}, "
            f"N_min={self.base_resolution}, b={self.per_level_scale:.4f}, "
            f"finest={self.levels[-1].resolution}, hashed_levels={n_hashed}, rows={self.n_rows}, "
            f"backend={self.backend}"
        )

    def _cells(self, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each point's fractional position in its cell ``[2, L, N]`` (x, y; float32, with
        autograd through ``xy``) and the cell's lower corner ``[2, L, N]`` (integers)."""
        u = _unit(xy).clamp(0.0, 1.0)
        pos = u.t()[:, None, :] * self._scale[None, :, None] + 0.5  # [2, L, N]
        # A diverged fit's NaN positions get cell 0 (NaN is no index), and keep NaN
        # weights, so the output is NaN and the loop reports the divergence.
        g = torch.floor(pos.detach()).nan_to_num_(0.0)
        return pos - g, g.to(self._index_dtype)  # d w / d pos = 1

    def _rows(self, x0: torch.Tensor, y0: torch.Tensor) -> torch.Tensor:
        """Table rows ``[4, L, N]`` of the cells whose lower corners are ``(x0, y0)``."""
        nd = self._n_dense
        dt = x0.dtype
        # Written in place into one tensor: stacking the corners and concatenating the
        # dense and hashed levels copied the whole index array twice per step.
        rows = torch.empty((4, *x0.shape), dtype=dt, device=x0.device)
        if nd > 0:
            dense = rows[:, :nd]
            base = x0[:nd] + y0[:nd] * self._res[:nd, None].to(dt)
            torch.add(base[None], self._dense_corner[:, :nd, None].to(dt), out=dense)
            # The vertex one past the last column wraps into the next row (tiny-cuda-nn's
            # dense indexing does the same): one subtraction is a full modulo here.
            size = self._size[None, :nd, None].to(dt)
            dense.sub_(size * (dense >= size))
        if nd < self.n_levels:
            # Sizes of hashed levels are T = 2^k, so "mod T" keeps the low k bits, and the
            # low bits of y * prime depend only on the low bits of y and of the prime.
            mask = (1 << self.log2_size) - 1
            prime = PRIME_Y & mask
            xs, ys = x0[nd:], y0[nd:]
            hx0, hx1 = xs & mask, (xs + 1) & mask
            hy0 = (ys * prime) & mask
            hy1 = (hy0 + prime) & mask
            for k, (hx, hy) in enumerate(((hx0, hy0), (hx1, hy0), (hx0, hy1), (hx1, hy1))):
                torch.bitwise_xor(hx, hy, out=rows[k, nd:])
        rows.add_(self._offset[None, :, None].to(dt))
        return rows

    def corners(self, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Table rows ``[4, L, N]`` (int32) and bilinear weights ``[4, L, N]`` of every point.

        Corners are ordered (x0, y0), (x1, y0), (x0, y1), (x1, y1). The weights carry the
        gradient with respect to ``xy``; the rows are integers. (The forward pass fuses
        the same arithmetic in :class:`_Encode`; this is its readable reference.)
        """
        w, gi = self._cells(xy)
        rows = self._rows(gi[0], gi[1])
        wx, wy = w[0], w[1]
        vx, vy = 1 - wx, 1 - wy
        weights = torch.stack((vx * vy, wx * vy, vx * wy, wx * wy))  # [4, L, N]
        return rows.to(torch.int32), weights

    def forward(self, xy: torch.Tensor) -> torch.Tensor:
        if self._tcnn is not None:
            u = _unit(xy).clamp(0.0, 1.0)
            # tiny-cuda-nn's module reads its parameters from ``.params``: hand it this
            # grid's table, flattened (a view: gradients flow back into ``table``).
            self._tcnn.params = self.table.reshape(-1)
            return self._tcnn(u.contiguous()).to(torch.float32)
        out = _Encode.apply(self.table, xy, self)  # [L, N, F]
        return out.permute(1, 0, 2).reshape(xy.shape[0], self.out_dim)

    def table_values(self) -> torch.Tensor:
        """The parameter table ``[rows, F]`` (the same layout on every backend)."""
        return self.table.detach()


def _unit(xy: torch.Tensor) -> torch.Tensor:
    """Image coordinates in ``[-1, 1]`` -> the grid's unit square (float32, unclamped)."""
    return (xy.to(torch.float32) + 1.0) * 0.5


class _Encode(torch.autograd.Function):
    """``out[l, n] = bilinear interpolation of the table rows around xy[n] on level l``,
    with the position arithmetic, gather and both gradients fused by hand.

    Autograd through :meth:`HashGrid.corners` keeps a dozen ``[4, L, N]`` temporaries
    and walks them back; here the forward is three lerps of the gathered corners, and
    the backward forms the four corners' table gradients and the position gradient
    directly (at 128² x 16 levels, fwd + bwd 37-38 -> 27-32 ms on a 2-core CPU).

    On a CPU, with two float32 features per level (the paper's F = 2), a row is handled
    as one complex64 number: gather and scatter-add become 1-D. The table's gradient is
    accumulated in place into ``table.grad`` (allocated once, then zeroed in place by
    ``zero_grad(set_to_none=False)``) and not returned to autograd: a fresh zero-filled
    gradient of the whole table every step costs more than the rest of the encoding
    (page faults of a multi-megabyte allocation), and autograd would then add it into
    ``.grad`` in yet another pass.
    """

    @staticmethod
    def forward(ctx, table: torch.Tensor, xy: torch.Tensor, grid: HashGrid) -> torch.Tensor:
        n_feat = table.shape[1]
        with torch.no_grad():
            w, gi = grid._cells(xy)
            rows = grid._rows(gi[0], gi[1])
            flat = rows.reshape(-1)
            packed = n_feat == 2 and table.dtype == torch.float32 and table.device.type == "cpu"
            if packed:
                vals = table.view(torch.complex64).view(-1).index_select(0, flat)
                vals = torch.view_as_real(vals).view(*rows.shape, 2)
            else:
                vals = table.index_select(0, flat).view(*rows.shape, n_feat)  # [4, L, N, F]
            # weights repeated per feature: lerp with a same-shape weight runs several
            # times faster than with a broadcast one
            w = w.to(table.dtype)[..., None].expand(*w.shape, n_feat).contiguous()
            a = torch.lerp(vals[0], vals[1], w[0])
            b = torch.lerp(vals[2], vals[3], w[0])
            out = torch.lerp(a, b, w[1])  # [L, N, F]
        ctx.packed = packed
        ctx.grid = grid
        ctx.table = table
        ctx.save_for_backward(rows, w, vals, xy)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        rows, w, vals, xy = ctx.saved_tensors
        table, grid = ctx.table, ctx.grid
        wx, wy = w[0], w[1]
        grad = grad.to(vals.dtype)
        if table.requires_grad:
            if table.grad is None:
                table.grad = torch.zeros_like(table)
            # the four corners' shares (g0 - c1, c1, g1 - c3, c3), g1 = grad * wy the two
            # upper corners', g0 = grad - g1 the lower, c = g * wx: formed in one buffer
            contrib = torch.empty((4, *grad.shape), dtype=grad.dtype, device=grad.device)
            g0, c1, g1, c3 = contrib.unbind(0)
            torch.mul(grad, wy, out=g1)
            torch.sub(grad, g1, out=g0)
            torch.mul(g0, wx, out=c1)
            torch.mul(g1, wx, out=c3)
            g0.sub_(c1)
            g1.sub_(c3)
            flat = rows.reshape(-1)
            if ctx.packed:
                contrib = torch.view_as_complex(contrib.view(-1, 2))
                table.grad.view(torch.complex64).view(-1).index_add_(0, flat, contrib)
            else:
                table.grad.index_add_(0, flat, contrib.view(flat.shape[0], -1))
        g_xy = None
        if ctx.needs_input_grad[1]:
            d_wx = torch.lerp(vals[1] - vals[0], vals[3] - vals[2], wy)
            d_wy = torch.lerp(vals[2], vals[3], wx) - torch.lerp(vals[0], vals[1], wx)
            g_w = torch.stack(((d_wx * grad).sum(-1), (d_wy * grad).sum(-1)))  # [2, L, N]
            # d w / d xy = scale / 2 inside the field of view; clamped points get none
            g_u = (g_w * grid._scale[None, :, None].to(g_w.dtype)).sum(1).t() * 0.5  # [N, 2]
            u = _unit(xy.detach())
            inside = (u >= 0.0) & (u <= 1.0)
            g_xy = (g_u * inside).to(xy.dtype)
        return None, g_xy, None


def init_table(n_rows: int, n_features: int) -> torch.Tensor:
    """Instant-NGP's initial table, uniform in ±1e-4, drawn from torch's default generator
    (seeded by the run's ``--seed``) for both backends. tiny-cuda-nn would draw its own
    with a fixed seed (1337) and ignore the run's."""
    return torch.empty(n_rows, n_features).uniform_(-INIT_RANGE, INIT_RANGE)


def _make_tcnn(grid: HashGrid) -> nn.Module:
    """tiny-cuda-nn's HashGrid with the grid's layout, its own parameter removed: the
    grid hands it ``grid.table`` at every forward (see :meth:`HashGrid.forward`)."""
    import tinycudann as tcnn

    cfg = {
        "otype": "HashGrid",
        "n_levels": grid.n_levels,
        "n_features_per_level": grid.n_features,
        "log2_hashmap_size": grid.log2_size,
        "base_resolution": grid.base_resolution,
        "per_level_scale": grid.per_level_scale,
    }
    try:
        enc = tcnn.Encoding(n_input_dims=2, encoding_config=cfg, dtype=torch.float32)
    except TypeError:  # older bindings choose the precision themselves
        enc = tcnn.Encoding(n_input_dims=2, encoding_config=cfg)
    if enc.params.numel() != grid.n_rows * grid.n_features:
        raise RuntimeError(
            f"tiny-cuda-nn laid out {enc.params.numel()} parameters where "
            f"{grid.n_rows * grid.n_features} were expected; use hash_backend='torch'"
        )
    # Its own parameter would be a second copy of the table in state dicts, optimisers
    # and memory; dropping it makes ``params`` a plain attribute the grid sets.
    del enc._parameters["params"]
    enc.params = grid.table.detach().reshape(-1)
    return enc


def resolve_backend(requested: str, device: torch.device) -> str:
    """``auto`` -> ``tcnn`` on CUDA when it imports, else ``torch``; explicit choices checked."""
    if requested == "auto":
        return "tcnn" if device.type == "cuda" and tcnn_available() else "torch"
    if requested == "tcnn":
        if device.type != "cuda":
            raise ValueError("hash_backend='tcnn' needs a CUDA device; use 'torch' or 'auto'")
        if not tcnn_available():
            raise ValueError(
                "hash_backend='tcnn' but tinycudann does not import; use 'torch' or 'auto'"
            )
    elif requested != "torch":
        raise ValueError(f"hash_backend must be auto, torch or tcnn, got {requested!r}")
    return requested
