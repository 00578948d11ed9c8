"""DA-INR as a learned method: its GRASP prior and features, the networks, one step, state.

Building a :class:`DainrMethod` is quick; the GRASP prior its features come from is a
preparation stage (:meth:`DainrMethod.stages`) that the fit loop runs with progress,
stop and out-of-memory guard, then the networks are built.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Generator, Iterator

import torch
from torch.nn import functional as nnf

from ...prepare import PreparedSeries
from ..learned import LearnedMethod
from .config import DainrConfig, default_steps
from .features import complex_channels, extract_features, make_extractor
from .hashgrid import resolve_backend
from .model import DainrModel

log = logging.getLogger(__name__)

#: Points evaluated at once when rendering (2^16: 4 frames of 128 x 128, about 200 MB of
#: hash-encoding intermediates).
RENDER_POINTS = 1 << 16


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


#: what a preparation stage yields after each unit: (stage name, units done, units in all)
StageUnit = tuple[str, int, int]


def feature_images(
    prep: PreparedSeries, cfg: DainrConfig
) -> Generator[StageUnit, None, torch.Tensor]:
    """The complex frames ``[F, ny, nx]`` the frozen features are computed from: a
    stage (yields the prior's iterations), whose return value is the frames."""
    if cfg.feature_input == "grasp":
        return (yield from grasp_prior_stage(prep, cfg.prior_iterations))
    # All spokes, held-out ones included: gridding is a fixed linear function of the data,
    # never fitted; from the training spokes alone, one spoke held out of every fourth
    # frame cost 1.5 dB on the bundled DCE phantom (benchmarks/README.md, "Held-out
    # spokes and ensembles").
    return prep.gridding if prep.gridding_all is None else prep.gridding_all


#: The GRASP priors of this process's latest fits, by the content they were computed
#: from: ensemble members (and refits of the same data) share one prior instead of
#: computing the same one each. Small (one complex series each).
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


def grasp_prior_stage(
    prep: PreparedSeries, iterations: int
) -> Generator[StageUnit, None, torch.Tensor]:
    """GRASP's frames of the training spokes at its default lambda rule, one primal-dual
    iteration per yielded ``("prior", done, iterations)``; returns the frames.

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
    # (GRASP's primal-dual steps run without gradients themselves: no grad mode is held
    # across the yields, where the consumer runs)
    grasp = GraspMethod(prep, GraspConfig(solver="pdhg", pdhg_iterations=iterations))
    n = grasp.total_steps
    for s in range(n):
        grasp.step(s)
        yield ("prior", s + 1, n)
    frames = grasp.current_frames().detach()
    grasp.release()
    _PRIOR_CACHE[key] = frames.clone()
    while len(_PRIOR_CACHE) > _PRIOR_CACHE_SIZE:
        _PRIOR_CACHE.popitem(last=False)
    return frames


def grasp_prior(prep: PreparedSeries, iterations: int) -> torch.Tensor:
    """:func:`grasp_prior_stage` run to its end, without reports."""
    return _finish(grasp_prior_stage(prep, iterations))


def _finish(stage: Generator[StageUnit, None, torch.Tensor]) -> torch.Tensor:
    """A stage's return value, its reports discarded."""
    while True:
        try:
            next(stage)
        except StopIteration as end:
            return end.value


def build_model(prep: PreparedSeries, cfg: DainrConfig) -> Generator[StageUnit, None, DainrModel]:
    """Features (once per series) and the networks, on the series' device: a stage whose
    return value is the model."""
    dev = prep.device
    feats = None
    if cfg.features != "off":
        images = yield from feature_images(prep, cfg)
        t0 = time.perf_counter()
        ext = make_extractor(cfg.feature_channels, cfg.feature_seed, cfg.feature_weights).to(dev)
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


class DainrMethod(LearnedMethod):
    name = "dainr"
    networks = ("model",)
    keep_grad_buffers = True  # the hash table accumulates into its own gradient in place

    def __init__(self, prep: PreparedSeries, config: DainrConfig):
        super().__init__(prep, resolve_config(config, prep.device, prep.n_frames))
        self.model: DainrModel | None = None
        self._k = min(self.config.frames_per_step, prep.n_frames)
        self._params: list[torch.nn.Parameter] = []
        self._ema: list[torch.Tensor] | None = None
        self._ema_steps = 0

    @property
    def ready(self) -> bool:
        return self.model is not None

    def stages(self) -> Iterator[StageUnit]:
        """The GRASP prior (``("prior", i, n)`` per iteration), then the features and the
        networks; afterwards the method is :attr:`ready`."""
        model = yield from build_model(self.prep, self.config)
        self._use_model(model)

    def _use_model(self, model: DainrModel) -> None:
        self.model = model
        self.use_optimizer(make_optimizer(model, self.config))
        self._base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        if self.config.coarse_to_fine > 0:
            self.model.level_weights.copy_(level_weights(self.config, 0))
        self._params = list(model.parameters())
        self._ema = [p.detach().clone() for p in self._params] if self.config.ema else None
        self._ema_steps = 0

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

    def training_loss(self, step: int) -> torch.Tensor:
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
        return loss

    def after_update(self) -> None:
        if self._ema is None:
            return
        self._ema_steps += 1
        # a short warm-up: the first steps' weights are far from any later ones
        decay = min(self.config.ema, self._ema_steps / (self._ema_steps + 9))
        with torch.no_grad():
            torch._foreach_lerp_(self._ema, [p.detach() for p in self._params], 1 - decay)

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
        self.prepare()
        with self.averaged_weights():
            return super().result_state()

    def _restart_average(self) -> None:
        """The average := the current weights (what renders after loading a state)."""
        if self._ema is not None:
            with torch.no_grad():
                torch._foreach_copy_(self._ema, [p.detach() for p in self._params])

    def load_result_state(self, state: dict) -> None:
        self.prepare()
        super().load_result_state(state)
        self._restart_average()

    def state_dict(self) -> dict:
        self.prepare()
        state = super().state_dict()
        if self._ema is not None:
            state["ema"] = {"weights": [e.clone() for e in self._ema], "steps": self._ema_steps}
        return state

    def load_state_dict(self, state: dict) -> None:
        self.prepare()
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
        seeds 0/1) that beat bicubic upsampling by 0.29 dB on the cine simulated from real
        images and 0.16 dB on the perfusion series. The network's own detail beyond the band
        (``band+continuous``) gave +0.24 and -0.11 dB, the paper's ``nearest`` -1.2 and
        -1.3 dB (benchmarks/README.md, "r > 1 renders")."""
        return "continuous" if self.config.jitter else "band+cubic"

    def current_frames(self) -> torch.Tensor:
        times = torch.arange(self.prep.n_frames, dtype=torch.float32, device=self.prep.device)
        return self.render_frames(times)

    def frames_at(self, frames: torch.Tensor) -> torch.Tensor:
        return self.render_frames(frames.to(torch.float32))

    def render_frames(
        self, times: torch.Tensor, upscale: float = 1.0, coords: str = "nearest"
    ) -> torch.Tensor:
        """Complex images at any times (frame units) and scale, for :mod:`dainr.render`.

        Evaluated a few frames at a time so that the hash encoding's per-point
        intermediates stay near ``RENDER_POINTS`` points.
        """
        self.prepare()
        self.model.eval()
        ny, nx = self.prep.image_shape
        per_frame = max(1, int(round(ny * upscale)) * int(round(nx * upscale)))
        chunk = max(1, RENDER_POINTS // per_frame)
        times = torch.as_tensor(times, dtype=torch.float32, device=self.prep.device).reshape(-1)
        with torch.no_grad(), self.averaged_weights():
            out = [
                self.model.render(times[i : i + chunk], upscale=upscale, coords=coords)
                for i in range(0, len(times), chunk)
            ]
        return torch.cat(out)

    def release(self) -> None:
        if self.model is None:  # stopped before the networks were built
            return
        super().release()
        if self._ema is not None:  # keep rendering what the fit returned, without the copy
            with torch.no_grad():
                torch._foreach_copy_([p.data for p in self._params], self._ema)
            self._ema = None
