"""The DA-INR model: deformation Ψ_t, hash encoding ϕ, frozen features f, canonical Ψ_x.

For a frame at time t, every pixel centre x of the image grid is moved into the
canonical space, ``x' = x + Ψ_t(γ(x), γ(t))``, and the canonical network reads
``Ψ_x([ϕ(x'), f'])`` (paper) or ``Ψ_x([ϕ(x'), γ(x), γ(t), f'])`` (released code) as
the complex value there. Coordinates are pixel centres in ``[-1, 1]`` (x along
columns, y along rows); t runs over ``linspace(0, 1, n_frames)``. Times passed in
are in frame units (``2.5`` is halfway between frames 2 and 3).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as nnf

from .encoding import FrequencyEncoding
from .hashgrid import HashGrid
from .networks import MLP

#: Scale of the deformation network's last layer at initialisation: the fit starts
#: from (almost) no deformation, so the shared canonical image forms first.
DEFORM_LAST_GAIN = 1e-3

FEATURE_SOURCES = ("frame", "neighbours", "off")
CANONICAL_INPUTS = ("paper", "released")


def pixel_centres(ny: int, nx: int, device=None) -> torch.Tensor:
    """``[ny*nx, 2]`` (x, y) pixel centres in ``[-1, 1]``, row-major like the image."""
    ys = (torch.arange(ny, dtype=torch.float32, device=device) + 0.5) * (2.0 / ny) - 1.0
    xs = (torch.arange(nx, dtype=torch.float32, device=device) + 0.5) * (2.0 / nx) - 1.0
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), dim=-1).reshape(-1, 2)


def neighbour_frames(
    times: torch.Tensor, n_frames: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The two frames around each time and the weight of the second, ``(a, b, w)``.

    A time between frames i and i+1 has neighbours (i, i+1) and ``w = t - i``; a time
    on frame i has (i, i) and ``w = 0``.
    """
    t = times.clamp(0, n_frames - 1)
    a = torch.floor(t).long().clamp(max=n_frames - 1)
    w = t - a
    b = torch.where(w > 0, (a + 1).clamp(max=n_frames - 1), a)
    return a, b, w


def feature_frames(times: torch.Tensor, n_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames whose features the released code gives a time: t-1 and t+1 on a frame
    (the one existing neighbour twice at either end), the two neighbours between frames."""
    a, b, w = neighbour_frames(times, n_frames)
    on = w == 0
    lo = torch.where(a - 1 >= 0, a - 1, a + 1).clamp(0, n_frames - 1)
    hi = torch.where(a + 1 < n_frames, a + 1, a - 1).clamp(0, n_frames - 1)
    return torch.where(on, lo, a), torch.where(on, hi, b)


class DainrModel(nn.Module):
    def __init__(
        self,
        image_shape: tuple[int, int],
        n_frames: int,
        features: torch.Tensor | None,
        *,
        feature_source: str = "frame",
        canonical_input: str = "paper",
        freq_xy: int = 10,
        freq_t: int = 6,
        deform_width: int = 64,
        deform_layers: int = 5,
        canon_width: int = 64,
        canon_layers: int = 5,
        bias: bool = False,
        hash_grid: HashGrid | None = None,
        mlp_bf16: bool = False,
    ):
        super().__init__()
        if feature_source not in FEATURE_SOURCES:
            raise ValueError(f"features must be one of {FEATURE_SOURCES}, got {feature_source!r}")
        if canonical_input not in CANONICAL_INPUTS:
            raise ValueError(
                f"canonical_input must be one of {CANONICAL_INPUTS}, got {canonical_input!r}"
            )
        if feature_source != "off" and features is None:
            raise ValueError(f"features={feature_source!r} needs the feature maps")
        self.ny, self.nx = int(image_shape[0]), int(image_shape[1])
        self.n_frames = int(n_frames)
        self.feature_source = feature_source
        self.mlp_bf16 = mlp_bf16
        self.canonical_input = canonical_input
        self.enc_xy = FrequencyEncoding(2, freq_xy)
        self.enc_t = FrequencyEncoding(1, freq_t)
        self.hash = hash_grid if hash_grid is not None else HashGrid()
        d_xy, d_t = self.enc_xy.out_dim, self.enc_t.out_dim
        self.deform = MLP(
            d_xy + d_t, deform_width, deform_layers, 2, bias, last_gain=DEFORM_LAST_GAIN
        )
        n_feat = 0
        if feature_source != "off":
            n_feat = features.shape[1] * (2 if feature_source == "neighbours" else 1)
        canon_in = self.hash.out_dim + n_feat + (d_xy + d_t if canonical_input == "released" else 0)
        self.canon = MLP(canon_in, canon_width, canon_layers, 2, bias)
        coords = pixel_centres(self.ny, self.nx)
        self.register_buffer("coords", coords, persistent=False)
        self.register_buffer("gamma_xy", self.enc_xy(coords), persistent=False)
        # Features are recomputed from the data at construction, never stored in checkpoints.
        if features is not None and feature_source != "off":
            f = features.to(torch.float32).flatten(2).transpose(1, 2).contiguous()  # [F, N, C]
            self.register_buffer("features", f, persistent=False)
        else:
            self.features = None

    @property
    def n_pixels(self) -> int:
        return self.ny * self.nx

    def t_norm(self, times: torch.Tensor) -> torch.Tensor:
        if self.n_frames < 2:
            return torch.zeros_like(times, dtype=torch.float32)
        return times.to(torch.float32) / (self.n_frames - 1)

    def frame_features(self, times: torch.Tensor) -> torch.Tensor | None:
        """Features ``[B, N, C']`` for each time (see :func:`feature_frames`), or None."""
        if self.features is None:
            return None
        if self.feature_source == "neighbours":
            a, b = feature_frames(times, self.n_frames)
            return torch.cat((self.features[a], self.features[b]), dim=-1)
        a, b, w = neighbour_frames(times, self.n_frames)
        if bool((w == 0).all()):
            return self.features[a]
        w = w.to(torch.float32)[:, None, None]
        return (1 - w) * self.features[a] + w * self.features[b]

    def deformation(
        self, times: torch.Tensor, gamma_xy: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``Δ[B, N, 2]`` at the grid points whose encoding is ``gamma_xy`` (the image grid)."""
        gxy = self.gamma_xy if gamma_xy is None else gamma_xy
        gt = self.enc_t(self.t_norm(times)[:, None])  # [B, Dt]
        with self._mlp_precision():
            d = self.deform([gxy, gt[:, None, :]]).float()
        return d.expand(gt.shape[0], gxy.shape[0], 2)

    def frames(self, frame_idx: torch.Tensor) -> torch.Tensor:
        """The complex images ``[B, ny, nx]`` of integer frames (the training path)."""
        return self.render(frame_idx.to(torch.float32))

    def render(
        self, times: torch.Tensor, upscale: float = 1.0, coords: str = "nearest"
    ) -> torch.Tensor:
        """Complex images ``[B, H, W]`` at any times, on a grid ``upscale`` times finer.

        ``coords="nearest"`` (paper §2.1): deformed coordinates are computed on the
        image grid and upsampled by nearest neighbour, features bilinearly.
        ``coords="continuous"``: the deformation is evaluated at the finer grid's own
        pixel centres (the representation read as a continuous function).
        """
        if coords not in ("nearest", "continuous"):
            raise ValueError(f"coords must be nearest or continuous, got {coords!r}")
        times = torch.as_tensor(times, dtype=torch.float32, device=self.coords.device).reshape(-1)
        B = times.shape[0]
        H, W = self.ny, self.nx
        if upscale != 1.0:
            H, W = int(round(self.ny * upscale)), int(round(self.nx * upscale))
        feats = self.frame_features(times)
        if (H, W) == (self.ny, self.nx):
            gxy = self.gamma_xy
            pts = self.coords + self.deformation(times)  # [B, N, 2]
        elif coords == "continuous":
            hr = pixel_centres(H, W, self.coords.device)
            gxy = self.enc_xy(hr)
            pts = hr + self.deformation(times, gxy)
            if feats is not None:
                feats = self._upsample(feats, H, W, "bilinear")
        else:
            pts = self._upsample(self.coords + self.deformation(times), H, W, "nearest")
            gxy = None
            if self.canonical_input == "released":  # the released code upsamples γ(x) alike
                gxy = self._upsample(self.gamma_xy.expand(B, -1, -1), H, W, "nearest")
            if feats is not None:
                feats = self._upsample(feats, H, W, "bilinear")
        M = pts.shape[1]
        parts = [self.hash(pts.reshape(B * M, 2)).reshape(B, M, -1)]
        if self.canonical_input == "released":
            gt = self.enc_t(self.t_norm(times)[:, None])
            parts += [gxy, gt[:, None, :]]
        if feats is not None:
            parts.append(feats)
        with self._mlp_precision():
            out = self.canon(parts)  # [B, M, 2]
        return torch.view_as_complex(out.float().contiguous()).reshape(B, H, W)

    def _mlp_precision(self):
        """bf16 autocast of the MLPs' matrix products when asked for; a no-op otherwise."""
        dev = self.coords.device.type
        return torch.autocast(dev, dtype=torch.bfloat16, enabled=self.mlp_bf16)

    def _upsample(self, v: torch.Tensor, H: int, W: int, mode: str) -> torch.Tensor:
        """``v[B, N, C]`` on the image grid -> ``[B, H*W, C]`` on an ``H x W`` grid."""
        B, _, C = v.shape
        img = v.transpose(1, 2).reshape(B, C, self.ny, self.nx)
        kw = {"align_corners": False} if mode == "bilinear" else {}
        # nearest-exact picks the pixel whose area holds the new centre (legacy
        # "nearest" is off by half a pixel for non-integer factors).
        mode = "nearest-exact" if mode == "nearest" else mode
        up = nnf.interpolate(img, size=(H, W), mode=mode, **kw)
        return up.reshape(B, C, H * W).transpose(1, 2)
