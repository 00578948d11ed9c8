"""HashINR: the spatiotemporal hash-grid INR of Feng J. et al. (2023), as the DA-INR paper ran it.

A multiresolution hash grid (Müller et al. 2022) over the three coordinates (t, y, x)
feeds a bias-free ReLU MLP whose two outputs are the real and imaginary parts of the
image at that point. Every step renders all frames, takes their NUFFT and minimises the
L2 distance to the measured samples. Feng et al. added a temporal TV and a low-rank
(nuclear norm) penalty; the DA-INR paper found them unstable to tune and ran the
method without them, which is the default here (their published weights are options).

Defaults are those of the authors' release (github AMRI-Lab/INR_for_DynamicMRI,
``main.py`` and ``model.py``), which used tiny-cuda-nn; the 3-D grid here is pure
PyTorch with tiny-cuda-nn's layout (level scales, dense-then-hashed levels, hashing
primes), since the project's 2-D grid (:mod:`dainr.methods.dainr.hashgrid`) is 2-D only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from ..prepare import PreparedSeries
from .dainr.hashgrid import LevelLayout
from .dainr.hashgrid import level_layout as _level_layout
from .learned import LearnedMethod

log = logging.getLogger(__name__)

#: Instant-NGP / tiny-cuda-nn hashing primes for dimensions 0, 1, 2.
PRIMES = (1, 2654435761, 805459861)
#: tiny-cuda-nn initialises the table uniformly in ±1e-4.
INIT_RANGE = 1e-4
#: model.py's RelL2Loss with rel=False: ``((dRe)^2 + (dIm)^2) * 100``, averaged.
DC_SCALE = 100.0
#: Corner rows and weights of the fixed sampling grid are cached below this size.
CORNER_CACHE_BYTES = 1 << 30


@dataclass(frozen=True)
class HashInrConfig:
    """Defaults of Feng et al.'s release (main.py arguments and ``params``), regularisers off."""

    #: main.py ``--epochs 1600``; one epoch is one step over all frames
    steps: int = 1600
    #: main.py ``lr = 1e-3`` (Adam, both parameter groups)
    lr: float = 1e-3
    #: model.py: Adam weight_decay 1e-6 on the MLP (0 on the hash table)
    mlp_weight_decay: float = 1e-6
    #: model.py: StepLR(step_size=epochs // 2, gamma=0.5)
    lr_gamma: float = 0.5
    #: main.py ``n_levels = 16``
    hash_levels: int = 16
    #: main.py ``n_features_per_level = 2``
    hash_features: int = 2
    #: main.py ``--log2_hashmap_size 24`` (2^24 rows per level: ~1.6 GB of float32 table)
    hash_log2_size: int = 24
    #: main.py ``base_resolution = 16``
    hash_base_resolution: int = 16
    #: main.py ``--per_level_scale 2.0``
    hash_per_level_scale: float = 2.0
    #: main.py ``--neuron 128``
    mlp_width: int = 128
    #: main.py ``--layers 5`` (tiny-cuda-nn FullyFusedMLP hidden layers, no biases)
    mlp_hidden_layers: int = 5
    #: temporal TV weight; 0 as the DA-INR paper ran it (Feng et al.'s default ``--tv_weight 0.02``)
    tv_weight: float = 0.0
    #: low-rank (nuclear norm) weight; 0 as the DA-INR paper (Feng et al.: ``--lr_weight 0.0002``)
    lowrank_weight: float = 0.0


def level_layout(n_levels: int, log2_size: int, base: int, growth: float) -> list[LevelLayout]:
    """tiny-cuda-nn's per-level scale, resolution and storage of a 3-D grid."""
    return _level_layout(n_levels, log2_size, base, growth, dim=3)


class HashGrid3d(nn.Module):
    """``u[N, 3]`` in ``[0, 1]^3`` -> features ``[N, L * F]`` by trilinear interpolation."""

    def __init__(self, n_levels: int, n_features: int, log2_size: int, base: int, growth: float):
        super().__init__()
        self.n_levels, self.n_features, self.log2_size = n_levels, n_features, log2_size
        self.levels = level_layout(n_levels, log2_size, base, growth)
        n_rows = self.levels[-1].offset + self.levels[-1].size
        self.table = nn.Parameter(torch.empty(n_rows, n_features).uniform_(-INIT_RANGE, INIT_RANGE))

    @property
    def out_dim(self) -> int:
        return self.n_levels * self.n_features

    def corners(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``[8, L, N]`` (int32) and trilinear weights ``[8, L, N]`` of every point."""
        dev = u.device
        scale = torch.tensor([lv.scale for lv in self.levels], device=dev)
        pos = u.t().float()[:, None, :] * scale[None, :, None] + 0.5  # [3, L, N]
        g = torch.floor(pos)
        frac = pos - g
        gi = g.to(torch.int64)
        res = torch.tensor([lv.resolution for lv in self.levels], device=dev)[:, None]
        size = torch.tensor([lv.size for lv in self.levels], device=dev)[:, None]
        offset = torch.tensor([lv.offset for lv in self.levels], device=dev)[:, None]
        hashed = torch.tensor([lv.hashed for lv in self.levels], device=dev)[:, None]
        mask = (1 << self.log2_size) - 1
        rows, weights = [], []
        for c in range(8):
            bits = [(c >> d) & 1 for d in range(3)]
            v = [gi[d] + bits[d] for d in range(3)]
            dense = torch.remainder(v[0] + v[1] * res + v[2] * res * res, size)
            h = ((v[0] * PRIMES[0]) ^ (v[1] * PRIMES[1]) ^ (v[2] * PRIMES[2])) & mask
            rows.append((torch.where(hashed, h, dense) + offset).to(torch.int32))
            w = torch.ones_like(frac[0])
            for d in range(3):
                w = w * (frac[d] if bits[d] else 1 - frac[d])
            weights.append(w)
        return torch.stack(rows), torch.stack(weights)

    def interpolate(self, rows: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        out = _Trilinear.apply(self.table, rows, weights)  # [L, N, F]
        return out.permute(1, 0, 2).reshape(rows.shape[-1], self.out_dim)


class _Trilinear(torch.autograd.Function):
    """``out[l, n] = sum_c w[c, l, n] table[rows[c, l, n]]``; the table's gradient in place.

    The table is large (tens of millions of rows by default) and each step touches a
    fraction of it: accumulating into ``table.grad`` in place (zeroed in place by the
    optimiser) avoids allocating and filling a whole-table gradient every step. Two
    features per row are handled as one complex64, making gather and scatter 1-D.
    """

    @staticmethod
    def forward(
        ctx, table: torch.Tensor, rows: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        flat = rows.reshape(-1)
        if table.shape[1] == 2:
            vals = (
                table.detach().view(torch.complex64).view(-1).index_select(0, flat).view(rows.shape)
            )
            out = torch.view_as_real((vals * weights).sum(dim=0))
        else:
            vals = table.detach().index_select(0, flat).view(*rows.shape, table.shape[1])
            out = (vals * weights[..., None]).sum(dim=0)
        ctx.save_for_backward(rows, weights)
        ctx.table = table
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        rows, weights = ctx.saved_tensors
        table = ctx.table
        if table.grad is None:
            table.grad = torch.zeros_like(table)
        flat = rows.reshape(-1)
        if table.shape[1] == 2:
            contrib = weights * torch.view_as_complex(grad.contiguous())[None]
            table.grad.view(torch.complex64).view(-1).index_add_(0, flat, contrib.reshape(-1))
        else:
            contrib = weights[..., None] * grad[None]
            table.grad.index_add_(0, flat, contrib.reshape(-1, table.shape[1]))
        return None, None, None


def make_mlp(n_in: int, width: int, hidden_layers: int) -> nn.Sequential:
    """tiny-cuda-nn FullyFusedMLP: ReLU hidden layers, linear output, no biases, Xavier init."""
    dims = [n_in] + [width] * hidden_layers + [2]
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        lin = nn.Linear(dims[i], dims[i + 1], bias=False)
        nn.init.xavier_uniform_(lin.weight)
        layers.append(lin)
        if i < len(dims) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def sample_points(n_frames: int, image_shape: tuple[int, int]) -> torch.Tensor:
    """``[F * ny * nx, 3]`` coordinates (t, y, x) in [0, 1], frame-major.

    model.py ``build_pos``: pixel centres ``(i + 0.5) / N``, and time sampled like a pixel,
    ``(f + 0.5) / N``; N is the larger of the image side and the frame count here, so that
    long series stay inside the unit cube.
    """
    ny, nx = image_shape
    n = max(ny, nx, n_frames)
    t = (torch.arange(n_frames) + 0.5) / n
    y = (torch.arange(ny) + 0.5) / ny
    x = (torch.arange(nx) + 0.5) / nx
    tt, yy, xx = torch.meshgrid(t, y, x, indexing="ij")
    return torch.stack((tt, yy, xx), dim=-1).reshape(-1, 3)


class HashInrMethod(LearnedMethod):
    name = "hashinr"
    networks = ("grid", "mlp")
    keep_grad_buffers = True  # the table's gradient is accumulated in place, zeroed per step

    def __init__(self, prep: PreparedSeries, config: HashInrConfig):
        super().__init__(prep, config)
        c = config
        if c.steps < 1 or c.hash_levels < 1 or c.mlp_hidden_layers < 1:
            raise ValueError("HashINR needs steps, hash_levels and mlp_hidden_layers >= 1")
        if c.tv_weight < 0 or c.lowrank_weight < 0:
            raise ValueError("HashINR tv_weight and lowrank_weight must be >= 0")
        dev = prep.device
        self.grid = HashGrid3d(
            c.hash_levels, c.hash_features, c.hash_log2_size, c.hash_base_resolution,
            c.hash_per_level_scale,
        ).to(dev)  # fmt: skip
        self.mlp = make_mlp(self.grid.out_dim, c.mlp_width, c.mlp_hidden_layers).to(dev)
        adam = torch.optim.Adam(
            [
                {"params": self.mlp.parameters(), "weight_decay": c.mlp_weight_decay},
                {"params": [self.grid.table], "weight_decay": 0.0},
            ],
            lr=c.lr,
            fused=True,  # one pass over the (large) table per step instead of several
        )
        self.use_optimizer(adam, lr_step=max(1, c.steps // 2), lr_gamma=c.lr_gamma)
        self.points = sample_points(prep.n_frames, prep.image_shape).to(dev)
        n = self.points.shape[0]
        self._chunk = 1 << 16
        cache_bytes = 8 * c.hash_levels * n * 8
        self._corners = None
        if cache_bytes <= CORNER_CACHE_BYTES:
            parts = [self.grid.corners(p) for p in self.points.split(self._chunk)]
            self._corners = (
                torch.cat([r for r, _ in parts], -1),
                torch.cat([w for _, w in parts], -1),
            )
        ny, nx = prep.image_shape
        self._dc_norm = DC_SCALE / (ny * nx)  # release's NUFFT was divided by the image side
        log.info(
            "HashINR: table %d x %d, %d points per step, corners %s",
            self.grid.table.shape[0], self.grid.table.shape[1], n,
            "cached" if self._corners is not None else "per step",
        )  # fmt: skip

    def forward_frames(self) -> torch.Tensor:
        """All frames ``[F, ny, nx]`` from the network, with gradients (one step's forward)."""
        if self._corners is not None:
            enc = self.grid.interpolate(*self._corners)
        else:
            parts = self.points.split(self._chunk)
            enc = torch.cat([self.grid.interpolate(*self.grid.corners(p)) for p in parts])
        out = self.mlp(enc)
        x = torch.complex(out[:, 0], out[:, 1])
        return x.reshape(self.prep.n_frames, *self.prep.image_shape)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        d = self.prep.train_residual(self.prep.op.forward(x))
        loss = self._dc_norm * (d.abs() ** 2).mean()
        if c.tv_weight:
            # model.py: L1 of the temporal differences of real and imaginary parts, per
            # element, relative to the current peak magnitude.
            dt = x[1:] - x[:-1]
            tv = (dt.real.abs().sum() + dt.imag.abs().sum()) / x.numel()
            loss = loss + c.tv_weight * tv / x.detach().abs().max().clamp_min(1e-12)
        if c.lowrank_weight:
            nuc = torch.linalg.matrix_norm(x.reshape(x.shape[0], -1), ord="nuc")
            loss = loss + c.lowrank_weight * nuc / x.shape[0]
        return loss

    def training_loss(self, step: int) -> torch.Tensor:
        return self.loss(self.forward_frames())

    def current_frames(self) -> torch.Tensor:
        with torch.no_grad():
            return self.forward_frames()

    def release(self) -> None:
        super().release()
        self._corners = None
        self.grid.table.grad = None


METHOD = HashInrMethod
CONFIG = HashInrConfig
