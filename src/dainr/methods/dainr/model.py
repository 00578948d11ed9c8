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

from ...render import RENDER_COORDS
from ...resample import cubic_upsample, fourier_upsample, replace_band
from .config import DainrConfig
from .encoding import FrequencyEncoding
from .hashgrid import HashGrid
from .networks import MLP


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
    """The networks of one fit, shaped by a :class:`~dainr.methods.dainr.DainrConfig`.

    ``hash_grid`` replaces the grid the config describes (tests pass tiny ones);
    ``cfg.hash_backend`` must be resolved (``torch`` or ``tcnn``) when none is given.
    """

    def __init__(
        self,
        image_shape: tuple[int, int],
        n_frames: int,
        features: torch.Tensor | None,
        cfg: DainrConfig,
        hash_grid: HashGrid | None = None,
    ):
        super().__init__()
        if cfg.features != "off" and features is None:
            raise ValueError(f"features={cfg.features!r} needs the feature maps")
        self.ny, self.nx = int(image_shape[0]), int(image_shape[1])
        self.n_frames = int(n_frames)
        self.feature_source = cfg.features
        self.mlp_bf16 = cfg.mlp_precision == "bf16"
        self.canonical_input = cfg.canonical_input
        self.enc_xy = FrequencyEncoding(2, cfg.freq_xy)
        self.enc_t = FrequencyEncoding(1, cfg.freq_t)
        if hash_grid is None:
            hash_grid = HashGrid(
                cfg.hash_levels,
                cfg.hash_features,
                cfg.hash_log2_size,
                cfg.hash_base_resolution,
                cfg.growth,
                cfg.hash_backend,
            )
        self.hash = hash_grid
        d_xy, d_t = self.enc_xy.out_dim, self.enc_t.out_dim
        self.deform = MLP(
            d_xy + d_t, cfg.deform_width, cfg.deform_layers, 2, cfg.bias, last_gain=cfg.deform_gain
        )
        n_feat = 0
        if cfg.features != "off":
            n_feat = features.shape[1] * (2 if cfg.features == "neighbours" else 1)
        extra = {"paper": 0, "released": d_xy + d_t, "time": d_t}[cfg.canonical_input]
        self.canon = MLP(
            self.hash.out_dim + n_feat + extra, cfg.canon_width, cfg.canon_layers, 2, cfg.bias
        )
        coords = pixel_centres(self.ny, self.nx)
        self.register_buffer("coords", coords, persistent=False)
        self.register_buffer("gamma_xy", self.enc_xy(coords), persistent=False)
        #: weight of each hash level's features (the coarse-to-fine schedule sets it)
        self.register_buffer("level_weights", torch.ones(self.hash.n_levels), persistent=False)
        # Features are recomputed from the data at construction, never stored in checkpoints.
        if features is not None and cfg.features != "off":
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

    def frames(self, frame_idx: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        """The complex images ``[B, ny, nx]`` of integer frames (the training path).

        ``shift`` (x, y) in the ``[-1, 1]`` units: the images sampled at the pixel
        centres plus ``shift`` (sub-pixel jitter; the data must be shifted to match).
        """
        times = frame_idx.to(torch.float32)
        if shift is None:
            return self.render(times)
        return self._at_points(times, self.coords + shift.to(self.coords), self.ny, self.nx)

    def render(
        self, times: torch.Tensor, upscale: float = 1.0, coords: str = "nearest"
    ) -> torch.Tensor:
        """Complex images ``[B, H, W]`` at any times, on a grid ``upscale`` times finer.

        ``coords="nearest"`` (paper §2.1): deformed coordinates are computed on the
        image grid and upsampled by nearest neighbour, features bilinearly.
        ``coords="continuous"``: the deformation is evaluated at the finer grid's own
        pixel centres (the representation read as a continuous function; trained as
        one only with ``DainrConfig.jitter``). ``coords="fourier"``: the images on the
        image grid, upsampled by zero-padding their spectra
        (:func:`dainr.resample.fourier_upsample`): the band the data measured, nothing
        invented beyond it. ``coords="band+continuous"``: that band, and beyond it the
        ``continuous`` render's detail (:func:`dainr.resample.replace_band`);
        ``coords="band+cubic"``: that band, and beyond it what bicubic interpolation of
        the images extrapolates.
        """
        if coords not in RENDER_COORDS:
            raise ValueError(f"coords must be one of {', '.join(RENDER_COORDS)}, got {coords!r}")
        times = torch.as_tensor(times, dtype=torch.float32, device=self.coords.device).reshape(-1)
        B = times.shape[0]
        H, W = self.ny, self.nx
        if upscale != 1.0:
            H, W = int(round(self.ny * upscale)), int(round(self.nx * upscale))
        if (H, W) == (self.ny, self.nx):
            return self._canonical(
                times,
                self.coords + self.deformation(times),
                self.gamma_xy,
                self.frame_features(times),
                H,
                W,
            )
        if coords == "continuous":
            return self._at_points(times, pixel_centres(H, W, self.coords.device), H, W)
        if coords == "fourier":
            return fourier_upsample(self.render(times), H, W)
        if coords == "band+continuous":
            fine = self._at_points(times, pixel_centres(H, W, self.coords.device), H, W)
            return replace_band(fine, self.render(times))
        if coords == "band+cubic":
            coarse = self.render(times)
            return replace_band(cubic_upsample(coarse, H, W), coarse)
        feats = self.frame_features(times)
        pts = self._upsample(self.coords + self.deformation(times), H, W, "nearest")
        gxy = None
        if self.canonical_input == "released":  # the released code upsamples γ(x) alike
            gxy = self._upsample(self.gamma_xy.expand(B, -1, -1), H, W, "nearest")
        if feats is not None:
            feats = self._upsample(feats, H, W, "bilinear")
        return self._canonical(times, pts, gxy, feats, H, W)

    def _at_points(self, times: torch.Tensor, xy: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """Images at the points ``xy[H*W, 2]`` (deformation and features evaluated there)."""
        gxy = self.enc_xy(xy)
        pts = xy + self.deformation(times, gxy)
        feats = self.frame_features(times)
        if feats is not None:
            feats = self._sample(feats, xy)
        return self._canonical(times, pts, gxy, feats, H, W)

    def _canonical(
        self,
        times: torch.Tensor,
        pts: torch.Tensor,
        gxy: torch.Tensor | None,
        feats: torch.Tensor | None,
        H: int,
        W: int,
    ) -> torch.Tensor:
        """Ψ_x at the canonical points ``pts[B, M, 2]`` -> complex ``[B, H, W]``."""
        B, M = pts.shape[:2]
        h = self.hash(pts.reshape(B * M, 2)).reshape(B, M, -1)
        if not bool((self.level_weights == 1).all()):
            h = h * self.level_weights.repeat_interleave(self.hash.n_features)
        parts = [h]
        if self.canonical_input != "paper":
            gt = self.enc_t(self.t_norm(times)[:, None])[:, None, :]
            parts += [gxy, gt] if self.canonical_input == "released" else [gt]
        if feats is not None:
            parts.append(feats)
        with self._mlp_precision():
            out = self.canon(parts)  # [B, M, 2]
        return torch.view_as_complex(out.float().contiguous()).reshape(B, H, W)

    def _sample(self, v: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
        """``v[B, N, C]`` on the image grid, bilinearly at the points ``xy[M, 2]`` ->
        ``[B, M, C]`` (edge values outside, as bilinear upsampling has)."""
        B, _, C = v.shape
        img = v.transpose(1, 2).reshape(B, C, self.ny, self.nx)
        grid = xy.reshape(1, 1, -1, 2).expand(B, -1, -1, -1)
        out = nnf.grid_sample(
            img, grid, mode="bilinear", padding_mode="border", align_corners=False
        )
        return out[:, :, 0].transpose(1, 2)

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
