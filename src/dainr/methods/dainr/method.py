"""DA-INR as a :class:`dainr.loop.Method`: configuration, construction, one step, state."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import torch

from ...loop import Method
from ...prepare import PreparedSeries
from .features import extract_features, make_extractor
from .hashgrid import HashGrid, per_level_scale_for, resolve_backend
from .model import CANONICAL_INPUTS, FEATURE_SOURCES, DainrModel

log = logging.getLogger(__name__)

#: Points evaluated at once when rendering (2^16: 4 frames of 128 x 128, about 200 MB of
#: hash-encoding intermediates).
RENDER_POINTS = 1 << 16


@dataclass(frozen=True)
class DainrConfig:
    """DA-INR settings. "paper" is the MICCAI text (§2.1, §3.4); "released" is the
    authors' code (github 9B8DY6/DA_INR: solver.py, option.py, basicnet_hash_dnerf.py)."""

    steps: int = 1000  #: optimisation steps; released max_steps 1001 (issue: 1000)
    lr: float = 1e-3  #: released: AdamW, lr 1e-3 (no schedule: its StepLR step 2000 > steps)
    #: learning rate of the hash table; None = lr (released: one lr for every parameter;
    #: Instant-NGP trains its tables at 1e-2, measured +0.9-1.3 dB: benchmarks/README.md)
    hash_lr: float | None = None
    weight_decay: float = 0.01  #: torch's AdamW default, which the released code used unchanged
    optimizer: str = "adamw"  #: adamw (released) or adam (released code's --adam switch)
    frames_per_step: int = 1  #: released batch_size 1: one random frame per step
    loss: str = "l1"  #: eq. (1): l1 = mean |A x - y| (complex); l1-ri = |Re| + |Im| (released)
    deform_width: int = 64  #: paper §3.4: 64 hidden units (released code: 128)
    deform_layers: int = 5  #: paper §3.4 and released code: 5 layers
    canon_width: int = 64  #: paper §3.4 and released code: 64 hidden units
    canon_layers: int = 5  #: paper §3.4: 5 layers (released: 2 + 3 linear layers)
    bias: bool = False  #: released code: every linear layer without bias (paper silent)
    freq_xy: int = 10  #: paper §2.1: I = 10 frequencies for x and y
    freq_t: int = 6  #: paper §2.1: I = 6 frequencies for t
    hash_levels: int = 16  #: paper §3.4: L = 16
    hash_log2_size: int = 19  #: paper §3.4: T = 2^19 entries per level
    hash_features: int = 2  #: paper §3.4: F = 2 features per level
    hash_base_resolution: int = 16  #: paper §3.4: N_min = 16
    hash_per_level_scale: float = 2.0  #: paper §3.4: b = 2
    #: resolution of the finest level, overriding b: 2048 as the released code's
    #: desired_resolution (b = 128^(1/15) ~ 1.38). None keeps the paper's b = 2, whose
    #: finest level (16 * 2^15) is far below a pixel: measured worse on both phantoms and
    #: slower (benchmarks/README.md, "DA-INR feature source")
    hash_finest_resolution: int | None = 2048
    hash_backend: str = "auto"  #: auto (tiny-cuda-nn on CUDA when it imports), torch, tcnn
    #: the MLPs' matrix products: fp32 (paper, released code), bf16 (bfloat16 autocast:
    #: same scores on both phantoms, about 3x faster products where the hardware has
    #: native bf16) or auto (bf16 on such hardware, else fp32). The config stored with a
    #: result says which ran.
    mlp_precision: str = "auto"
    #: paper: [ϕ(x'), f']; released: [ϕ(x'), γ(x, y), γ(t), f']
    canonical_input: str = "paper"
    #: frame: features of frame t (paper, reconstruction); neighbours: of t-1 and t+1
    #: (released code); off: none. frame is the one source that kept the DCE phantom's
    #: ROI curves (off and neighbours are 1.3-3.5 dB better on the cardiac phantom):
    #: benchmarks/README.md, "DA-INR feature source"
    features: str = "frame"
    feature_channels: int = 64  #: MDSR's n_feats = 64 (released make_mdsr)
    feature_weights: str | None = None  #: MDSR state dict file; None = seeded random (released)
    feature_seed: int = 0  #: seed of the random extractor (released: whatever the run's seed was)

    def __post_init__(self) -> None:
        checks = {
            "features": (self.features, FEATURE_SOURCES),
            "canonical_input": (self.canonical_input, CANONICAL_INPUTS),
            "loss": (self.loss, ("l1", "l1-ri")),
            "optimizer": (self.optimizer, ("adamw", "adam")),
            "hash_backend": (self.hash_backend, ("auto", "torch", "tcnn")),
            "mlp_precision": (self.mlp_precision, ("auto", "fp32", "bf16")),
        }
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(
                    f"DainrConfig.{name} must be one of {', '.join(allowed)}, got {value!r}"
                )
        for name in ("steps", "frames_per_step", "deform_layers", "canon_layers", "hash_levels"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"DainrConfig.{name} must be at least 1, got {getattr(self, name)}"
                )

    @property
    def growth(self) -> float:
        """The hash grid's per-level scale b actually used."""
        if self.hash_finest_resolution is None:
            return float(self.hash_per_level_scale)
        return per_level_scale_for(
            self.hash_base_resolution, self.hash_finest_resolution, self.hash_levels
        )


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices natively (not by emulation)."""
    if device.type == "cuda":
        # is_bf16_supported() also says yes where bf16 is emulated (V100, T4: compute
        # capability 7.x), which is slower than fp32; tensor cores do bf16 from 8.0 (Ampere).
        if not torch.cuda.is_available():
            return False
        major, _ = torch.cuda.get_device_capability(device)
        return major >= 8
    if device.type != "cpu":
        return False
    try:  # oneDNN's own check: AVX512-BF16 or AMX
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_config(cfg: DainrConfig, device: torch.device) -> DainrConfig:
    """``cfg`` with its ``auto`` choices made for ``device`` (what a result records)."""
    if "auto" not in (cfg.mlp_precision, cfg.hash_backend):
        return cfg
    precision = cfg.mlp_precision
    if precision == "auto":
        precision = "bf16" if native_bf16(device) else "fp32"
    backend = resolve_backend(cfg.hash_backend, device)
    log.info("DA-INR on %s: MLPs in %s, hash grid %s", device, precision, backend)
    return dataclasses.replace(cfg, mlp_precision=precision, hash_backend=backend)


def build_model(prep: PreparedSeries, cfg: DainrConfig) -> DainrModel:
    """Features (once per series) and the networks, on the series' device."""
    dev = prep.device
    feats = None
    if cfg.features != "off":
        t0 = time.perf_counter()
        ext = make_extractor(cfg.feature_channels, cfg.feature_seed, cfg.feature_weights).to(dev)
        feats = extract_features(ext, prep.gridding)
        log.info(
            "features %s of %d frames in %.1f s",
            tuple(feats.shape[1:]),
            feats.shape[0],
            time.perf_counter() - t0,
        )
    cfg = resolve_config(cfg, dev)
    grid = HashGrid(
        cfg.hash_levels,
        cfg.hash_features,
        cfg.hash_log2_size,
        cfg.hash_base_resolution,
        cfg.growth,
        cfg.hash_backend,
    )
    model = DainrModel(
        prep.image_shape,
        prep.n_frames,
        feats,
        feature_source=cfg.features,
        canonical_input=cfg.canonical_input,
        freq_xy=cfg.freq_xy,
        freq_t=cfg.freq_t,
        deform_width=cfg.deform_width,
        deform_layers=cfg.deform_layers,
        canon_width=cfg.canon_width,
        canon_layers=cfg.canon_layers,
        bias=cfg.bias,
        hash_grid=grid,
        mlp_bf16=cfg.mlp_precision == "bf16",
    )
    return model.to(dev)


def make_optimizer(model: DainrModel, cfg: DainrConfig) -> torch.optim.Optimizer:
    table = {id(p) for p in model.hash.parameters()}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in table]
    grid = [p for p in model.hash.parameters() if p.requires_grad]
    groups = [{"params": rest}, {"params": grid, "lr": cfg.hash_lr or cfg.lr}]
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    kw = {"lr": cfg.lr, "weight_decay": cfg.weight_decay if cfg.optimizer == "adamw" else 0.0}
    try:
        # The fused kernel reads and writes each of the hash table's millions of entries
        # once per step (5x faster on a CPU than the per-operation "foreach" kernels).
        return cls(groups, fused=True, **kw)
    except (RuntimeError, TypeError):  # a device or dtype without fused kernels
        return cls(groups, **kw)


class DainrMethod(Method):
    name = "dainr"
    stateful = ("model", "optimizer")

    def __init__(self, prep: PreparedSeries, config: DainrConfig):
        super().__init__(prep, resolve_config(config, prep.device))
        self.model = build_model(prep, self.config)
        self.optimizer = make_optimizer(self.model, self.config)
        self._k = min(self.config.frames_per_step, prep.n_frames)

    @property
    def total_steps(self) -> int:
        return self.config.steps

    def _pick_frames(self) -> torch.Tensor:
        n = self.prep.n_frames
        if self._k == 1:
            return torch.randint(n, (1,))
        return torch.randperm(n)[: self._k]

    def data_loss(self, images: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Eq. (1) on the frames of a step: L1 over all coils and samples."""
        y = self.prep.op.forward(images, frames=frames)
        d = y - self.prep.kspace[frames.to(self.prep.device)]
        if self.config.loss == "l1-ri":
            return d.real.abs().mean() + d.imag.abs().mean()
        return d.abs().mean()

    def step(self, step: int) -> float:
        self.model.train()
        frames = self._pick_frames().to(self.prep.device)
        images = self.model.frames(frames)
        loss = self.data_loss(images, frames)
        # Keep gradient buffers: the hash table accumulates into its own in place.
        self.optimizer.zero_grad(set_to_none=False)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def current_frames(self) -> torch.Tensor:
        times = torch.arange(self.prep.n_frames, dtype=torch.float32, device=self.prep.device)
        return self.render_frames(times)

    @torch.no_grad()
    def render_frames(
        self, times: torch.Tensor, upscale: float = 1.0, coords: str = "nearest"
    ) -> torch.Tensor:
        """Complex images at any times (frame units) and scale, for :mod:`dainr.render`.

        Evaluated a few frames at a time so that the hash encoding's per-point
        intermediates stay near ``RENDER_POINTS`` points.
        """
        self.model.eval()
        ny, nx = self.prep.image_shape
        per_frame = max(1, int(round(ny * upscale)) * int(round(nx * upscale)))
        chunk = max(1, RENDER_POINTS // per_frame)
        times = torch.as_tensor(times, dtype=torch.float32, device=self.prep.device).reshape(-1)
        out = [
            self.model.render(times[i : i + chunk], upscale=upscale, coords=coords)
            for i in range(0, len(times), chunk)
        ]
        return torch.cat(out)

    def release(self) -> None:
        self.optimizer.state.clear()
