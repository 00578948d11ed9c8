"""NeRF's frequency (positional) encoding of coordinates (paper §2.1, Mildenhall et al. 2020)."""

from __future__ import annotations

import math

import torch
from torch import nn


def frequency_encoding(p: torch.Tensor, n_freqs: int, include_input: bool = True) -> torch.Tensor:
    """``p[..., D]`` -> ``[p, sin(2^0 pi p), cos(2^0 pi p), ..., sin(2^(I-1) pi p), cos(...)]``.

    Output width ``D * (include_input + 2 I)``. Frequencies are ``2^i * pi`` for
    ``i = 0 .. I-1`` as the paper's gamma writes them. The raw coordinate is kept in
    front, as the released code's encoder does (that is what makes its widths 42 and 13).
    """
    parts = [p] if include_input else []
    if n_freqs > 0:
        freqs = (2.0 ** torch.arange(n_freqs, dtype=p.dtype, device=p.device)) * math.pi
        arg = p[..., None, :] * freqs[:, None]  # [..., I, D]
        sc = torch.stack((torch.sin(arg), torch.cos(arg)), dim=-2)  # [..., I, 2, D]
        parts.append(sc.flatten(-3))
    return torch.cat(parts, dim=-1)


class FrequencyEncoding(nn.Module):
    """:func:`frequency_encoding` as a module that knows its output width."""

    def __init__(self, in_dim: int, n_freqs: int, include_input: bool = True):
        super().__init__()
        self.in_dim = in_dim
        self.n_freqs = n_freqs
        self.include_input = include_input

    @property
    def out_dim(self) -> int:
        return self.in_dim * (int(self.include_input) + 2 * self.n_freqs)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return frequency_encoding(p, self.n_freqs, self.include_input)
