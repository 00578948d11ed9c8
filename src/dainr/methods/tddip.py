"""TD-DIP (Yoo et al., IEEE TMI 2021): a time-dependent deep image prior.

Each frame ``t`` has a fixed point on a helix, ``(cos theta_t, sin theta_t, z_t)``: the
circle carries the cardiac phase, the line the position in the acquisition. A mapping
MLP turns that point into a small latent image, and a convolutional decoder (nearest
upsampling, 3x3 convolutions, batch normalisation, ReLU) grows it to the image size
with two output channels (real, imaginary). The weights are fitted, one random frame per
step, by the L2 distance between the NUFFT of the decoded frame and its measured
samples; nothing else regularises: the architecture is the prior.

Published defaults are those of the authors' release (``option.py``, ``models/basicnet.py``
and ``solver.py`` of github.com/jaejun-yoo/TDDIP).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..prepare import PreparedSeries
from .learned import LearnedMethod, random_frames

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TddipConfig:
    """Defaults of the TD-DIP release (option.py ``make_template`` for ``basicnet``)."""

    #: option.py ``--max_steps 10000``
    steps: int = 10000
    #: option.py ``--lr 1e-3`` (Adam)
    lr: float = 1e-3
    #: option.py ``--step_size 2000``: StepLR period in steps
    lr_step: int = 2000
    #: option.py ``--gamma 0.5``: StepLR factor
    lr_gamma: float = 0.5
    #: option.py ``--batch_size 1``: frames per step
    frames_per_step: int = 1
    #: turns of the helix over the series; option.py's ``num_cycle = 13`` is the number of
    #: heartbeats in the authors' own series, so a binned cine (one cycle) takes 1
    n_cycles: float = 1.0
    #: option.py ``ndf = 128``: channels of every decoder convolution
    channels: int = 128
    #: option.py ``up_factor = 16``: the latent image is the image size / 16 (4 upsamplings)
    up_factor: int = 16
    #: option.py ``Nr = 1``: extra conv-BN-ReLU blocks after each resolution's first
    convs_per_level: int = 1
    #: basicnet.py MappingNet: hidden width 512
    mapping_width: int = 512
    #: option.py ``depth = 0``: extra 512-wide hidden layers of the mapping MLP
    mapping_depth: int = 0


def helix(n_frames: int, n_cycles: float) -> torch.Tensor:
    """``[F, 3]``: cos and sin of ``linspace(0, 2 pi n_cycles, F)``, and ``linspace(0, 1, F)``."""
    theta = np.linspace(0.0, 2 * np.pi * n_cycles, n_frames)
    z = np.linspace(0.0, 1.0, n_frames)
    return torch.from_numpy(np.stack([np.cos(theta), np.sin(theta), z], axis=1)).float()


class MappingNet(nn.Sequential):
    """Helix point -> the decoder's latent image (flattened)."""

    def __init__(self, out_dim: int, width: int, depth: int):
        layers: list[nn.Module] = [nn.Linear(3, width), nn.ReLU()]
        for _ in range(depth):
            layers += [nn.Linear(width, width), nn.ReLU()]
        layers.append(nn.Linear(width, out_dim))
        super().__init__(*layers)


def _block(cin: int, cout: int) -> list[nn.Module]:
    # The release uses no convolution bias and BatchNorm in training mode throughout
    # (never .eval()): statistics of the frames in hand, which track_running_stats=False keeps.
    return [
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout, track_running_stats=False),
        nn.ReLU(inplace=True),
    ]


class Decoder(nn.Sequential):
    """Latent ``[B, 1, h, w]`` -> ``[B, 2, h * 2^n_ups, w * 2^n_ups]``."""

    def __init__(self, channels: int, n_ups: int, convs_per_level: int):
        layers = _block(1, channels)
        for _ in range(convs_per_level):
            layers += _block(channels, channels)
        for _ in range(n_ups):
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            layers += _block(channels, channels)
            for _ in range(convs_per_level):
                layers += _block(channels, channels)
        layers.append(nn.Conv2d(channels, 2, 3, padding=1, bias=False))
        super().__init__(*layers)


class TddipMethod(LearnedMethod):
    name = "tddip"
    networks = ("mapping", "decoder")

    def __init__(self, prep: PreparedSeries, config: TddipConfig):
        super().__init__(prep, config)
        c = config
        n_ups = int(round(math.log2(c.up_factor)))
        if c.up_factor < 1 or 2**n_ups != c.up_factor:
            raise ValueError(f"TD-DIP up_factor={c.up_factor}: must be a power of two")
        if not 1 <= c.frames_per_step <= prep.n_frames:
            raise ValueError(
                f"TD-DIP frames_per_step={c.frames_per_step}: must be in 1..{prep.n_frames}"
            )
        ny, nx = prep.image_shape
        # Latent grid big enough for the image; the decoded frame is centre-cropped.
        self.latent_shape = (math.ceil(ny / c.up_factor), math.ceil(nx / c.up_factor))
        dev = prep.device
        self.latents = helix(prep.n_frames, c.n_cycles).to(dev)
        self.mapping = MappingNet(
            self.latent_shape[0] * self.latent_shape[1], c.mapping_width, c.mapping_depth
        ).to(dev)
        self.decoder = Decoder(c.channels, n_ups, c.convs_per_level).to(dev)
        params = list(self.mapping.parameters()) + list(self.decoder.parameters())
        self.use_optimizer(torch.optim.Adam(params, lr=c.lr), c.lr_step, c.lr_gamma)
        log.info(
            "TD-DIP: %d parameters, latent %s", sum(p.numel() for p in params), self.latent_shape
        )

    def frames_of(self, idx: torch.Tensor) -> torch.Tensor:
        """The decoded frames ``idx`` as complex ``[B, ny, nx]`` (batch statistics of ``idx``)."""
        z = self.mapping(self.latents[idx]).reshape(len(idx), 1, *self.latent_shape)
        out = self.decoder(z)
        ny, nx = self.prep.image_shape
        oy, ox = (out.shape[-2] - ny) // 2, (out.shape[-1] - nx) // 2
        out = out[..., oy : oy + ny, ox : ox + nx]
        return torch.complex(out[:, 0], out[:, 1])

    def training_loss(self, step: int) -> torch.Tensor:
        idx = random_frames(self.prep.n_frames, self.config.frames_per_step, self.prep.device)
        y = self.prep.op.forward(self.frames_of(idx), frames=idx)
        # solver.py: MSE of real and imaginary parts times img_size^2 with a GRASP-normalised
        # NUFFT (1/sqrt(ny nx)), which is the mean |A x - y|^2 of the unscaled operator.
        return (self.prep.train_residual(y, idx).abs() ** 2).mean()

    def current_frames(self) -> torch.Tensor:
        F, k = self.prep.n_frames, self.config.frames_per_step
        dev = self.prep.device
        with torch.no_grad():
            # Frames decoded in groups of the training batch size, so that the batch
            # statistics match the ones each frame was fitted with.
            parts = [
                self.frames_of(torch.arange(s, min(s + k, F), device=dev)) for s in range(0, F, k)
            ]
        return torch.cat(parts)


METHOD = TddipMethod
CONFIG = TddipConfig
