"""DA-INR as a :class:`dainr.loop.Method`: configuration, construction, one step, state."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch.nn import functional as nnf

from ...loop import Method
from ...prepare import PreparedSeries
from .features import complex_channels, extract_features, make_extractor
from .hashgrid import per_level_scale_for, resolve_backend
from .model import CANONICAL_INPUTS, FEATURE_INPUTS, FEATURE_SOURCES, DainrModel

log = logging.getLogger(__name__)

#: Points evaluated at once when rendering (2^16: 4 frames of 128 x 128, about 200 MB of
#: hash-encoding intermediates).
RENDER_POINTS = 1 << 16


@dataclass(frozen=True)
class DainrConfig:
    """DA-INR settings. "paper" is the MICCAI text (§2.1, §3.4); "released" is the
    authors' code (github 9B8DY6/DA_INR: solver.py, option.py, basicnet_hash_dnerf.py)."""

    #: optimisation steps; None (default): ``steps_per_frame`` per frame of the series,
    #: at least ``min_steps``. One random frame is fitted per step, so a fixed count
    #: gives long series few visits per frame (850 steps: 34 at 25 frames, 18 at 48).
    steps: int | None = None
    #: steps per frame when ``steps`` is None. 34 is 850 steps at 25 frames, which keeps
    #: a 128² x 25-frame fit near the 90 s budget on a 2-core CPU; there 1000 steps gained
    #: at most 0.05 dB (real cine 5 / 13 / 21 spokes, seeds 0 | 1: 34.75 | 34.77, 37.89 |
    #: 37.95, 39.35 | 39.49 dB; GRASP 33.89, 37.50, 39.16). On the 40-frame perfusion case
    #: 34 per frame (1360 steps) scored 44.24 | 43.93 dB against 43.47 | 43.09 at a fixed
    #: 850 (GRASP 41.01): benchmarks/README.md, "Session 6"
    steps_per_frame: float = 34.0
    #: the fewest steps ``steps=None`` gives: series shorter than 25 frames keep the
    #: count measured on the 25-frame cases (fewer were not measured)
    min_steps: int = 850
    lr: float = 1e-3  #: released: AdamW, lr 1e-3 (no schedule: its StepLR step 2000 > steps)
    #: learning rate of the hash table (None = lr, as the released code: one lr for every
    #: parameter). Instant-NGP trains its tables at 1e-2. At 128², 1000 steps, 2% held
    #: out, seed 0 (benchmarks/README.md, "DA-INR defaults, session 3"): +0.9 dB on the
    #: real cine at 13 spokes (33.39 -> 34.31; seed 1 +0.8 at step 950), +0.84 dB on the
    #: bundled DCE sample (38.86 -> 39.70), neutral on the real-anatomy perfusion case
    #: (39.78 -> 39.76). (At 64² it had cost the real cine 0.6 dB: the finer the matrix,
    #: the more the table lags behind the MLPs at one shared lr.)
    hash_lr: float | None = 0.01
    weight_decay: float = 0.01  #: torch's AdamW default, which the released code used unchanged
    optimizer: str = "adamw"  #: adamw (released) or adam (released code's --adam switch)
    #: learning-rate schedule over ``steps``: constant (paper, released) or cosine (from lr
    #: down to ``lr * lr_final``). Cosine measured 0.5 and 1.5 dB worse robust PSNR on the
    #: real cine (64², 7 spokes, seeds 0/1, held-out stopping on): 1000 steps are not
    #: converged, a decaying lr only slows them (benchmarks/README.md, "DA-INR on real anatomy")
    lr_schedule: str = "constant"
    lr_final: float = 0.05  #: cosine schedule: the last step's lr as a fraction of lr
    frames_per_step: int = 1  #: released batch_size 1: one random frame per step
    #: decay of an exponential moving average of the weights, which every rendered frame,
    #: held-out evaluation and result uses (0 = the last step's weights, as the paper).
    #: One random frame per step leaves each frame's quality depending on how recently
    #: it was visited; the average evens that out. Measured: see benchmarks/README.md,
    #: "DA-INR weight averaging"
    ema: float = 0.97
    #: eq. (1): l1 = mean |A x - y| (complex); l1-ri = |Re| + |Im| (released); l2 = mean |.|^2
    loss: str = "l1"
    #: weight of a temporal total variation, mean |x_t+1 - x_t|, on the frames of a step
    #: (then a run of ``frames_per_step`` consecutive frames, at least 2); 0 = none (paper)
    temporal_tv: float = 0.0
    #: train on images sampled at the pixel centres plus one random sub-pixel shift per
    #: step, the data given the matching phase ramp: the representation is then fitted
    #: between pixel centres too, so an r > 1 ``continuous`` render is data-driven.
    #: Measured on the real cine's r = 2 protocol (seed 0, 1000 steps): the r = 1 fit
    #: loses 2.3 dB and its r = 2 render (27.2 dB) stays below bicubic upsampling of the
    #: default fit (28.6 dB): off by default (benchmarks/README.md)
    jitter: bool = False
    #: coarse-to-fine: the hash levels are switched on one after another over this
    #: fraction of the steps (0 = all levels from the start, paper). 0.5 measured 1.1 dB
    #: worse on the real cine (64², seeds 0/1): benchmarks/README.md
    coarse_to_fine: float = 0.0
    #: scale of the deformation network's last layer at initialisation: a small value
    #: starts the fit from (almost) no deformation, so the shared canonical image forms first
    deform_gain: float = 1e-3
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
    #: benchmarks/README.md, "DA-INR feature source". Real anatomy (64²): off +0.9 dB on
    #: the real cine (seeds 0/1) but 1.3 dB and ROI fidelity lost on the real-anatomy
    #: perfusion case: frame kept ("DA-INR on real anatomy")
    features: str = "frame"
    #: the images the frozen features are computed from: ``gridding`` (paper: each frame's
    #: NuFFT) or ``grasp`` (GRASP's temporal-TV reconstruction of the training spokes,
    #: ``prior_iterations`` primal-dual iterations at GRASP's default lambda). The paper's
    #: features of a 13-spoke frame are mostly streaks; from GRASP's frames they carry the
    #: anatomy and the contrast change that a deformation cannot give. Measured at 128²,
    #: all spokes, ESPIRiT maps, seed 0, prior features alone (benchmarks/README.md,
    #: "DA-INR on a GRASP prior"): real cine 5 / 13 / 21 spokes 32.54 / 34.62 / 35.71 ->
    #: 34.80 / 37.76 / 38.95 dB (GRASP alone 33.89 / 37.50 / 39.16), perfusion 16 spokes
    #: 40.38 -> 43.59 dB (GRASP 41.01), bundled DCE sample 39.70 -> 42.52 (GRASP 38.37)
    feature_input: str = "grasp"
    #: GRASP iterations of the ``feature_input="grasp"`` prior. 100, not GRASP's own 60:
    #: seeds 0 | 1, real cine 5 / 13 / 21 spokes 35.04 | 35.04, 38.15 | 38.19, 39.42 |
    #: 39.57 dB against 34.75 | 34.77, 37.89 | 37.95, 39.35 | 39.49 at 60 (motion PSNR
    #: +0.2 to +0.5 dB), perfusion 44.01 | 44.21 against 44.24 | 43.93; about 8 s more on
    #: a 2-core CPU (benchmarks/README.md, "Session 6"). 30 cost the real cine 1.1 dB.
    prior_iterations: int = 100
    #: the feature images' own complex values (real and imaginary parts over their peak
    #: magnitude) appended to the features as two more channels, times this gain; 0 = none
    #: (paper). The magnitude-only MDSR features lose the prior's phase and exact values.
    #: With the GRASP prior, seed 0 (gain 3 puts the two channels near the features'
    #: spread): real cine 5 / 13 / 21 spokes 34.80 / 37.76 / 38.95 dB -> 34.76 / 37.91 /
    #: 39.37 (gain 1: 34.83 / 37.86 / 39.28), perfusion 43.59 -> 43.64; the bundled DCE
    #: sample 42.52 -> 42.08 (its 34 spokes leave the prior little to add)
    feature_values: float = 3.0
    feature_channels: int = 64  #: MDSR's n_feats = 64 (released make_mdsr)
    feature_weights: str | None = None  #: MDSR state dict file; None = seeded random (released)
    feature_seed: int = 0  #: seed of the random extractor (released: whatever the run's seed was)

    def __post_init__(self) -> None:
        checks = {
            "features": (self.features, FEATURE_SOURCES),
            "canonical_input": (self.canonical_input, CANONICAL_INPUTS),
            "feature_input": (self.feature_input, FEATURE_INPUTS),
            "loss": (self.loss, ("l1", "l1-ri", "l2")),
            "lr_schedule": (self.lr_schedule, ("constant", "cosine")),
            "optimizer": (self.optimizer, ("adamw", "adam")),
            "hash_backend": (self.hash_backend, ("auto", "torch", "tcnn")),
            "mlp_precision": (self.mlp_precision, ("auto", "fp32", "bf16")),
        }
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(
                    f"DainrConfig.{name} must be one of {', '.join(allowed)}, got {value!r}"
                )
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"DainrConfig.steps must be at least 1 (or None), got {self.steps}")
        if self.steps_per_frame <= 0:
            raise ValueError(f"DainrConfig.steps_per_frame must be > 0, got {self.steps_per_frame}")
        for name in (
            "min_steps",
            "frames_per_step",
            "deform_layers",
            "canon_layers",
            "hash_levels",
            "prior_iterations",
        ):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"DainrConfig.{name} must be at least 1, got {getattr(self, name)}"
                )

        if not 0 <= self.ema < 1:
            raise ValueError(f"DainrConfig.ema must be in [0, 1), got {self.ema}")
        if self.feature_values < 0:
            raise ValueError(f"DainrConfig.feature_values must be >= 0, got {self.feature_values}")
        if self.temporal_tv < 0 or not 0 <= self.coarse_to_fine <= 1 or self.lr_final <= 0:
            raise ValueError(
                "DainrConfig: temporal_tv must be >= 0, coarse_to_fine in [0, 1] and "
                f"lr_final > 0; got {self.temporal_tv}, {self.coarse_to_fine}, {self.lr_final}"
            )
        if self.temporal_tv > 0 and self.frames_per_step < 2:
            raise ValueError(
                "DainrConfig.temporal_tv needs frames_per_step >= 2 (consecutive frames)"
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


def default_steps(cfg: DainrConfig, n_frames: int) -> int:
    """The steps of a fit of ``n_frames`` frames: ``cfg.steps``, or when that is None
    ``steps_per_frame`` per frame and at least ``min_steps``."""
    if cfg.steps is not None:
        return int(cfg.steps)
    return max(int(cfg.min_steps), math.ceil(cfg.steps_per_frame * n_frames))


def resolve_config(
    cfg: DainrConfig, device: torch.device, n_frames: int | None = None
) -> DainrConfig:
    """``cfg`` with its ``auto`` choices made for ``device`` and, given the series' frame
    count, its step count (what a result records)."""
    if cfg.steps is None and n_frames is not None:
        cfg = dataclasses.replace(cfg, steps=default_steps(cfg, n_frames))
    if "auto" not in (cfg.mlp_precision, cfg.hash_backend):
        return cfg
    precision = cfg.mlp_precision
    if precision == "auto":
        precision = "bf16" if native_bf16(device) else "fp32"
    backend = resolve_backend(cfg.hash_backend, device)
    log.info("DA-INR on %s: MLPs in %s, hash grid %s", device, precision, backend)
    return dataclasses.replace(cfg, mlp_precision=precision, hash_backend=backend)


def feature_images(prep: PreparedSeries, cfg: DainrConfig) -> torch.Tensor:
    """The complex frames ``[F, ny, nx]`` the frozen features are computed from."""
    if cfg.feature_input == "grasp":
        return grasp_prior(prep, cfg.prior_iterations)
    # All spokes, held-out ones included: gridding is a fixed linear function of the data,
    # never fitted; from the training spokes alone, one of 34 spokes held out of every
    # fourth frame cost 1.5 dB on the bundled DCE sample (seed 0), with all spokes
    # nothing (benchmarks/README.md, "Held-out spokes and ensembles").
    return prep.gridding if prep.gridding_all is None else prep.gridding_all


#: The GRASP priors of this process's latest fits, by the content they were computed
#: from: ensemble members (and refits of the same data) share one prior instead of
#: spending the same ~15 s each. Small (one complex series each).
_PRIOR_CACHE: OrderedDict[str, torch.Tensor] = OrderedDict()
_PRIOR_CACHE_SIZE = 2


def _prior_key(prep: PreparedSeries, iterations: int) -> str:
    """A digest of everything the prior depends on: the training samples (held-out ones
    are zero there and in the weights), the weights, trajectory, maps and the solver."""
    h = hashlib.blake2b(digest_size=16)
    for t in (prep.kspace, prep.dcf, prep.op.omega, prep.op.maps):
        a = t.detach().cpu().contiguous()
        h.update(repr((a.dtype, tuple(a.shape))).encode())
        h.update(a.numpy().data)
    backend = prep.op.backend
    solver = (iterations, type(backend).__name__, getattr(backend, "eps", None), str(prep.device))
    h.update(repr(solver).encode())
    return h.hexdigest()


@torch.no_grad()
def grasp_prior(prep: PreparedSeries, iterations: int) -> torch.Tensor:
    """GRASP's frames of the training spokes, at its default lambda rule.

    Training spokes only: GRASP is fitted to the data, so the features would otherwise
    carry the held-out spokes into the model that the held-out loss judges. The same
    data give the same prior: it is computed once per process (see ``_PRIOR_CACHE``).
    """
    from ..grasp import GraspConfig, GraspMethod

    key = _prior_key(prep, iterations)
    if key in _PRIOR_CACHE:
        _PRIOR_CACHE.move_to_end(key)
        log.info("GRASP prior of these data computed before: reused")
        return _PRIOR_CACHE[key].clone()
    grasp = GraspMethod(prep, GraspConfig(solver="pdhg", pdhg_iterations=iterations))
    for s in range(grasp.total_steps):
        grasp.step(s)
    frames = grasp.current_frames()
    grasp.release()
    _PRIOR_CACHE[key] = frames.clone()
    while len(_PRIOR_CACHE) > _PRIOR_CACHE_SIZE:
        _PRIOR_CACHE.popitem(last=False)
    return frames


def build_model(prep: PreparedSeries, cfg: DainrConfig) -> DainrModel:
    """Features (once per series) and the networks, on the series' device."""
    dev = prep.device
    feats = None
    if cfg.features != "off":
        t0 = time.perf_counter()
        ext = make_extractor(cfg.feature_channels, cfg.feature_seed, cfg.feature_weights).to(dev)
        images = feature_images(prep, cfg)
        feats = extract_features(ext, images)
        if cfg.feature_values > 0:
            feats = torch.cat((feats, cfg.feature_values * complex_channels(images)), dim=1)
        log.info(
            "features %s of %d frames from %s images in %.1f s",
            tuple(feats.shape[1:]),
            feats.shape[0],
            cfg.feature_input,
            time.perf_counter() - t0,
        )
    cfg = resolve_config(cfg, dev)
    model = DainrModel(prep.image_shape, prep.n_frames, feats, cfg)
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


def lr_factor(cfg: DainrConfig, step: int) -> float:
    """The schedule's multiplier of the learning rates at ``step`` (0-based)."""
    if cfg.lr_schedule == "constant":
        return 1.0
    p = min(max(step / max(cfg.steps - 1, 1), 0.0), 1.0)
    return cfg.lr_final + (1.0 - cfg.lr_final) * 0.5 * (1.0 + math.cos(math.pi * p))


def level_weights(cfg: DainrConfig, step: int) -> torch.Tensor:
    """Weights of the hash levels at ``step`` under the coarse-to-fine schedule.

    A quarter of the levels from the start; the others fade in one after another
    (a half-cosine each) until ``coarse_to_fine * steps``, then all are 1.
    """
    L = cfg.hash_levels
    if cfg.coarse_to_fine <= 0:
        return torch.ones(L)
    p = min(step / (cfg.coarse_to_fine * cfg.steps), 1.0)
    alpha = L * (0.25 + 0.75 * p)
    x = (alpha - torch.arange(L, dtype=torch.float32)).clamp(0, 1)
    return 0.5 * (1 - torch.cos(math.pi * x))


def shifted_maps(maps: torch.Tensor, shift_px: torch.Tensor) -> torch.Tensor:
    """Coil maps ``[C, ny, nx]`` read ``shift_px = (d_y, d_x)`` pixels off their grid
    (bilinear, edge values outside): the coil images of a shifted image are the
    shifted image times these."""
    C, ny, nx = maps.shape
    ys = torch.arange(ny, device=maps.device, dtype=torch.float32) + shift_px[0]
    xs = torch.arange(nx, device=maps.device, dtype=torch.float32) + shift_px[1]
    gy, gx = torch.meshgrid((2 * ys + 1) / ny - 1, (2 * xs + 1) / nx - 1, indexing="ij")
    grid = torch.stack((gx, gy), -1)[None]
    ri = torch.view_as_real(maps).permute(0, 3, 1, 2).reshape(1, 2 * C, ny, nx)
    out = nnf.grid_sample(ri, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return torch.view_as_complex(out.reshape(C, 2, ny, nx).permute(0, 2, 3, 1).contiguous())


def shift_phase(omega: torch.Tensor, shift_px: torch.Tensor) -> torch.Tensor:
    """``exp(i (ω_y d_y + ω_x d_x))`` of a trajectory ``omega[..., 2]`` (y, x; radians
    per pixel): the samples of an image read ``shift_px = (d_y, d_x)`` pixels off its
    grid, ``g(p) = f(p + d)``, are those of ``f`` times this ramp (shift theorem in the
    k-space contract's ``exp(-i ω·p)`` convention)."""
    arg = omega[..., 0] * shift_px[0] + omega[..., 1] * shift_px[1]
    return torch.polar(torch.ones_like(arg), arg)


class DainrMethod(Method):
    name = "dainr"
    stateful = ("model", "optimizer")

    def __init__(self, prep: PreparedSeries, config: DainrConfig):
        super().__init__(prep, resolve_config(config, prep.device, prep.n_frames))
        self.model = build_model(prep, self.config)
        self.optimizer = make_optimizer(self.model, self.config)
        self._base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self._k = min(self.config.frames_per_step, prep.n_frames)
        if self.config.coarse_to_fine > 0:
            self.model.level_weights.copy_(level_weights(self.config, 0))
        self._params = list(self.model.parameters())
        self._ema = [p.detach().clone() for p in self._params] if self.config.ema else None
        self._ema_steps = 0

    @property
    def total_steps(self) -> int:
        return self.config.steps

    def _pick_frames(self) -> torch.Tensor:
        n = self.prep.n_frames
        if self._k == 1:
            return torch.randint(n, (1,))
        if self.config.temporal_tv > 0:  # a run of consecutive frames for the TV term
            return torch.randint(n - self._k + 1, (1,)) + torch.arange(self._k)
        return torch.randperm(n)[: self._k]

    def data_loss(
        self, images: torch.Tensor, frames: torch.Tensor, shift_px: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Eq. (1) on the frames of a step: L1 over all coils and samples.

        ``shift_px`` (y, x): the images were sampled that many pixels off the grid, so
        the data are compared after the matching phase ramp (:func:`shift_phase`).
        """
        idx = frames.to(self.prep.device)
        op = self.prep.op
        if shift_px is None:
            d = self.prep.train_residual(op.forward(images, frames=frames), idx)
        else:  # the coil maps are read at the same shifted points as the image
            maps = shifted_maps(op.maps, shift_px)
            y = op.backend.forward(images[:, None] * maps[None], op.omega[idx])
            ramp = shift_phase(op.omega[idx], shift_px)[:, None]
            d = self.prep.train_residual(y * ramp.conj(), idx) * ramp
        if self.config.loss == "l1-ri":
            return d.real.abs().mean() + d.imag.abs().mean()
        if self.config.loss == "l2":
            return (d.real.square() + d.imag.square()).mean()
        return d.abs().mean()

    def step(self, step: int) -> float:
        cfg = self.config
        self.model.train()
        if cfg.lr_schedule != "constant":
            f = lr_factor(cfg, step)
            for g, base in zip(self.optimizer.param_groups, self._base_lrs):
                g["lr"] = base * f
        if cfg.coarse_to_fine > 0:
            self.model.level_weights.copy_(level_weights(cfg, step))
        frames = self._pick_frames().to(self.prep.device)
        shift_px = None
        if cfg.jitter:  # one uniform sub-pixel offset per step, within half a pixel
            shift_px = torch.rand(2, device=self.prep.device) - 0.5  # (y, x) pixels
            ny, nx = self.prep.image_shape
            norm = shift_px.flip(0) * torch.tensor([2.0 / nx, 2.0 / ny], device=shift_px.device)
            images = self.model.frames(frames, shift=norm)
        else:
            images = self.model.frames(frames)
        loss = self.data_loss(images, frames, shift_px)
        if cfg.temporal_tv > 0:
            loss = loss + cfg.temporal_tv * (images[1:] - images[:-1]).abs().mean()
        # Keep gradient buffers: the hash table accumulates into its own in place.
        self.optimizer.zero_grad(set_to_none=False)
        loss.backward()
        self.optimizer.step()
        if self._ema is not None:
            self._ema_steps += 1
            # a short warm-up: the first steps' weights are far from any later ones
            decay = min(cfg.ema, self._ema_steps / (self._ema_steps + 9))
            with torch.no_grad():
                torch._foreach_lerp_(self._ema, [p.detach() for p in self._params], 1 - decay)
        return float(loss.detach())

    @contextlib.contextmanager
    def averaged_weights(self):
        """Inside, the model holds the averaged weights that every render uses; outside, the
        training weights (a swap of storages, no copy)."""
        if self._ema is None:
            yield
            return
        for p, e in zip(self._params, self._ema):
            p.data, e.data = e.data, p.data
        try:
            yield
        finally:
            for p, e in zip(self._params, self._ema):
                p.data, e.data = e.data, p.data

    def result_state(self) -> dict:
        with self.averaged_weights():
            return super().result_state()

    def _restart_average(self) -> None:
        """The average := the current weights (what renders after loading a state)."""
        if self._ema is not None:
            with torch.no_grad():
                torch._foreach_copy_(self._ema, [p.detach() for p in self._params])

    def load_result_state(self, state: dict) -> None:
        super().load_result_state(state)
        self._restart_average()

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self._ema is not None:
            state["ema"] = {"weights": [e.clone() for e in self._ema], "steps": self._ema_steps}
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self._ema is None:
            return
        if "ema" not in state:  # a checkpoint from before weight averaging
            self._restart_average()
            return
        with torch.no_grad():
            torch._foreach_copy_(
                self._ema, [w.to(e.device) for w, e in zip(state["ema"]["weights"], self._ema)]
            )
        self._ema_steps = int(state["ema"]["steps"])

    @property
    def render_coords(self) -> str:
        """How :func:`dainr.render.render` reads this fit at r > 1 by default: at the fine
        grid's own points when it was trained off the pixel centres (``jitter``), else
        ``band+cubic``: the r = 1 frames' spectrum inside the acquisition grid's band (what
        the data measured, kept exactly), and beyond it what bicubic interpolation of the
        frames extrapolates. On the r = 2 protocols (k-space of a 64² extent, 128² truth,
        seeds 0/1) that beat bicubic upsampling by 0.29 dB on the real cine and 0.16 dB on
        the perfusion series. The network's own detail beyond the band
        (``band+continuous``) gave +0.24 and -0.11 dB, the paper's ``nearest`` -1.2 and
        -1.3 dB (benchmarks/README.md, "Session 5")."""
        return "continuous" if self.config.jitter else "band+cubic"

    def current_frames(self) -> torch.Tensor:
        times = torch.arange(self.prep.n_frames, dtype=torch.float32, device=self.prep.device)
        return self.render_frames(times)

    def frames_at(self, frames: torch.Tensor) -> torch.Tensor:
        return self.render_frames(frames.to(torch.float32))

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
        with self.averaged_weights():
            out = [
                self.model.render(times[i : i + chunk], upscale=upscale, coords=coords)
                for i in range(0, len(times), chunk)
            ]
        return torch.cat(out)

    def release(self) -> None:
        self.optimizer.state.clear()
        if self._ema is not None:  # keep rendering what the fit returned, without the copy
            with torch.no_grad():
                torch._foreach_copy_([p.data for p in self._params], self._ema)
            self._ema = None
