"""Frozen image features of per-frame images (paper §2.1: an MDSR head).

The paper computes them from each frame's gridding (NuFFT) image; by default this
project computes them from GRASP's frames (``DainrConfig.feature_input``).

The released code builds MDSR (Lim et al. 2017) and keeps only its head: a 3x3
convolution from 3 channels to 64, then the scale-specific pre-processing of two
residual blocks with 5x5 convolutions; it never loads pretrained weights, so its
features come from a seeded random initialisation. That is the default here too;
a pretrained MDSR state dict (same parameter names) can be loaded instead.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import nn

from ...errors import InputError

log = logging.getLogger(__name__)


class ResBlock(nn.Module):
    """conv - ReLU - conv, plus the input (EDSR/MDSR's residual block without scaling)."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        pad = kernel_size // 2
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size, padding=pad),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size, padding=pad),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x


class FeatureExtractor(nn.Module):
    """MDSR's head: 3-channel image -> ``channels`` feature maps of the same size.

    Parameter names match MDSR's (``head.0.*``, ``pre_process.0.{0,1}.body.{0,2}.*``)
    so that a pretrained MDSR checkpoint loads directly.
    """

    def __init__(self, channels: int = 64):
        super().__init__()
        self.channels = channels
        self.head = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1))
        self.pre_process = nn.ModuleList(
            [nn.Sequential(ResBlock(channels, 5), ResBlock(channels, 5))]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pre_process[0](self.head(x))


def make_extractor(
    channels: int = 64, seed: int = 0, weights: str | os.PathLike | None = None
) -> FeatureExtractor:
    """A frozen extractor: seeded random weights, or ``weights`` (an MDSR state dict file).

    The random initialisation uses its own generator state, so the fit's seed and the
    features' seed are independent.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = FeatureExtractor(channels)
    if weights is not None:
        _load_weights(net, Path(weights))
    net.requires_grad_(False)
    return net.eval()


def _load_weights(net: FeatureExtractor, path: Path) -> None:
    if not path.exists():
        raise InputError(path, None, "no such feature-extractor weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(
            path, None, f"not a readable PyTorch state dict ({e.__class__.__name__})"
        ) from None
    for key in ("state_dict", "model", "net_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise InputError(path, None, "expected a state dict (parameter name -> tensor)")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise InputError(path, missing[0], f"missing MDSR parameter(s) {', '.join(missing[:4])}")
    for k, v in own.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise InputError(
                path, k, f"expected shape {tuple(v.shape)}, found {tuple(state[k].shape)}"
            )
    net.load_state_dict({k: state[k] for k in own})
    log.info("feature extractor: loaded %s", path)


def normalise_input(images: torch.Tensor) -> torch.Tensor:
    """Frames ``[F, ny, nx]`` complex -> ``[F, 3, ny, nx]`` in ``[-1, 1]``.

    As the released code: magnitudes min-max normalised over the whole series, mapped
    to ``[-1, 1]`` and repeated into MDSR's three colour channels.
    """
    m = images.abs().to(torch.float32)
    lo, hi = m.min(), m.max()
    m = (m - lo) / (hi - lo) if hi > lo else torch.zeros_like(m)
    return (2.0 * m - 1.0)[:, None].expand(-1, 3, -1, -1)


@torch.no_grad()
def extract_features(
    extractor: FeatureExtractor, images: torch.Tensor, chunk: int = 4
) -> torch.Tensor:
    """Features ``[F, C, ny, nx]`` of every frame of ``images``, a few frames at a time."""
    x = normalise_input(images)
    out = [extractor(x[i : i + chunk].contiguous()) for i in range(0, x.shape[0], chunk)]
    return torch.cat(out)


def complex_channels(images: torch.Tensor) -> torch.Tensor:
    """Frames ``[F, ny, nx]`` complex -> ``[F, 2, ny, nx]``: their real and imaginary parts
    over the series' peak magnitude (what the magnitude-only MDSR features lose: the
    phase and the exact values)."""
    peak = images.abs().max()
    x = images / peak if peak > 0 else images
    return torch.view_as_real(x.to(torch.complex64)).permute(0, 3, 1, 2).contiguous()
