"""DA-INR's settings and their vocabularies.

"paper" is the MICCAI text (§2.1, §3.4); "released" is the authors' code (github
9B8DY6/DA_INR: solver.py, option.py, basicnet_hash_dnerf.py). What each default was
measured against is in benchmarks/README.md, "DA-INR settings"; switches measured worse
and left off are listed there under "Findings: tried and dropped" and in
:attr:`DainrConfig.RESEARCH_FIELDS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from .hashgrid import per_level_scale_for

#: features of frame t (paper), of t-1 and t+1 (released code), or none
FEATURE_SOURCES = ("frame", "neighbours", "off")
#: the images the features are computed from (DainrConfig.feature_input)
FEATURE_INPUTS = ("grasp", "gridding")
#: paper [ϕ(x'), f']; released [ϕ(x'), γ(x), γ(t), f']; time [ϕ(x'), γ(t), f'] (a
#: canonical image that may change with t)
CANONICAL_INPUTS = ("paper", "released", "time")


@dataclass(frozen=True)
class DainrConfig:
    """DA-INR settings (see the module's docstring for "paper" and "released")."""

    #: Switches kept to reproduce the paper, the released code and the ablations; each
    #: was measured worse than the default on the development cases, so the dock's
    #: form leaves them out (``--set`` and the API still take them).
    RESEARCH_FIELDS: ClassVar[tuple[str, ...]] = (
        "lr_schedule",
        "lr_final",
        "coarse_to_fine",
        "jitter",
        "temporal_tv",
        "canonical_input",
        "hash_per_level_scale",
        "optimizer",
        "loss",
    )

    #: optimisation steps; None: ``steps_per_frame`` per frame of the series, at least
    #: ``min_steps``. One random frame is fitted per step, so a fixed count would give
    #: long series few visits per frame.
    steps: int | None = None
    #: steps per frame when ``steps`` is None (850 steps at 25 frames)
    steps_per_frame: float = 34.0
    #: the fewest steps ``steps=None`` gives (shorter series were not measured)
    min_steps: int = 850
    lr: float = 1e-3  #: released: AdamW, lr 1e-3
    #: learning rate of the hash table (None = ``lr``, one rate for every parameter as
    #: the released code); Instant-NGP trains its tables at 1e-2
    hash_lr: float | None = 0.01
    weight_decay: float = 0.01  #: torch's AdamW default, as the released code
    optimizer: str = "adamw"  #: adamw (released) or adam (the released code's --adam)
    #: learning-rate schedule over ``steps``: constant (paper, released) or cosine (from
    #: ``lr`` down to ``lr * lr_final``)
    lr_schedule: str = "constant"
    lr_final: float = 0.05  #: cosine schedule: the last step's lr as a fraction of lr
    frames_per_step: int = 1  #: released batch_size 1: one random frame per step
    #: decay of an exponential moving average of the weights that every rendered frame,
    #: held-out evaluation and result uses (0 = the last step's weights, as the paper):
    #: with one random frame per step, it evens out how recently each frame was visited
    ema: float = 0.97
    #: eq. (1): l1 = mean |A x - y| (complex); l1-ri = |Re| + |Im| (released); l2 = mean |.|^2
    loss: str = "l1"
    #: weight of a temporal total variation, mean |x_t+1 - x_t|, on the frames of a step
    #: (then a run of ``frames_per_step`` consecutive frames, at least 2); 0 = none (paper)
    temporal_tv: float = 0.0
    #: train on images sampled at the pixel centres plus one random sub-pixel shift per
    #: step (the data given the matching phase ramp), so that an r > 1 ``continuous``
    #: render is fitted between pixel centres too
    jitter: bool = False
    #: coarse-to-fine: the hash levels are switched on one after another over this
    #: fraction of the steps (0 = all levels from the start, paper)
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
    hash_per_level_scale: float = 2.0  #: paper §3.4: b = 2 (when the finest is None)
    #: resolution of the finest level, which sets b: 2048 as the released code's
    #: desired_resolution (b = 128^(1/15) ~ 1.38); None keeps the paper's b = 2, whose
    #: finest level (16 * 2^15) is far below a pixel
    hash_finest_resolution: int | None = 2048
    hash_backend: str = "auto"  #: auto (tiny-cuda-nn on CUDA when it imports), torch, tcnn
    #: the MLPs' matrix products: fp32 (paper, released code), bf16 (bfloat16 autocast)
    #: or auto (bf16 where the hardware multiplies it natively, else fp32); the config
    #: stored with a result says which ran
    mlp_precision: str = "auto"
    #: what the canonical network reads (CANONICAL_INPUTS)
    canonical_input: str = "paper"
    #: whose features a time gets (FEATURE_SOURCES); frame is the paper's
    features: str = "frame"
    #: the images the frozen features are computed from: ``gridding`` (paper: each
    #: frame's NuFFT, mostly streaks at 13 spokes) or ``grasp`` (GRASP's temporal-TV
    #: reconstruction of the training spokes, ``prior_iterations`` primal-dual
    #: iterations at GRASP's default lambda), which carries the anatomy and the contrast
    #: change that a deformation cannot give
    feature_input: str = "grasp"
    #: primal-dual iterations of the ``feature_input="grasp"`` prior (GRASP's own
    #: default is 60: too few for the prior's minimum)
    prior_iterations: int = 100
    #: the feature images' own complex values (real and imaginary parts over their peak
    #: magnitude) appended as two more feature channels, times this gain (0 = none,
    #: paper): the magnitude-only features lose the prior's phase and exact values
    feature_values: float = 3.0
    feature_channels: int = 64  #: MDSR's n_feats = 64 (released make_mdsr)
    feature_weights: str | None = None  #: MDSR state dict file; None = seeded random (released)
    feature_seed: int = 0  #: seed of the random extractor (released: the run's seed)

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


def default_steps(cfg: DainrConfig, n_frames: int) -> int:
    """The steps of a fit of ``n_frames`` frames: ``cfg.steps``, or when that is None
    ``steps_per_frame`` per frame and at least ``min_steps``."""
    if cfg.steps is not None:
        return int(cfg.steps)
    return max(int(cfg.min_steps), math.ceil(cfg.steps_per_frame * n_frames))


__all__ = ["CANONICAL_INPUTS", "FEATURE_INPUTS", "FEATURE_SOURCES", "DainrConfig", "default_steps"]
