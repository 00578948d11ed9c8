"""The two multilayer perceptrons of DA-INR: deformation Ψ_t and canonical Ψ_x."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as nnf


class MLP(nn.Module):
    """``n_layers`` linear layers, ReLU between them, none after the last.

    ``last_gain`` scales the default initialisation of the last layer: the deformation
    network uses a tiny value so that the fit starts from (almost) no deformation and
    the canonical space is learned first, as D-NeRF-style models need.
    """

    def __init__(
        self,
        in_dim: int,
        width: int,
        n_layers: int,
        out_dim: int,
        bias: bool = False,
        last_gain: float = 1.0,
    ):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"an MLP needs at least one layer, got {n_layers}")
        dims = [in_dim] + [width] * (n_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=bias) for a, b in zip(dims[:-1], dims[1:]))
        if last_gain != 1.0:
            with torch.no_grad():
                self.layers[-1].weight.mul_(last_gain)
                if bias:
                    self.layers[-1].bias.zero_()

    @property
    def in_dim(self) -> int:
        return self.layers[0].in_features

    def forward(self, h: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """``h[..., in_dim]``, or its parts in order (``[B, N, d_i]`` or ``[B, 1, d_i]``).

        Parts are the first layer's input without concatenating it: each part meets its
        own slice of the first weight, a part shared by all points of a frame
        (``[B, 1, d]``, e.g. the time encoding) is multiplied once and broadcast, and
        no gradient is formed for constant parts. The result equals the concatenated
        input's.
        """
        if isinstance(h, torch.Tensor):
            h = self.layers[0](h)
        else:
            h = self._first(h)
        for layer in self.layers[1:]:
            h = layer(torch.relu_(h))
        return h

    def _first(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        first = self.layers[0]
        dims = [p.shape[-1] for p in parts]
        if sum(dims) != first.in_features:
            raise ValueError(f"first layer takes {first.in_features} inputs, parts give {dims}")
        out = None
        start = 0
        for p, d in zip(parts, dims):
            y = nnf.linear(p, first.weight[:, start : start + d])
            out = y if out is None else out + y
            start += d
        if first.bias is not None:
            out = out + first.bias
        return out
