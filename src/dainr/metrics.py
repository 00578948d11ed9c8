"""Scores of a reconstructed series against a reference, ROI curves, time and memory.

All image scores work on magnitudes. Two families, because they disagree:

* the paper's: each frame min-max normalised to [0, 1], PSNR/SSIM with data range 1
  (sensitive to a few outlier pixels);
* robust: the reconstruction least-squares scaled to the reference, PSNR against the
  reference's peak; and motion scores, because on a cine a static time-average
  already scores high framewise.
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import psutil
from scipy.ndimage import gaussian_filter

if TYPE_CHECKING:
    import torch


def _minmax(a: np.ndarray) -> np.ndarray:
    lo, hi = a.min(), a.max()
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def psnr(x: np.ndarray, ref: np.ndarray, data_range: float) -> float:
    mse = float(np.mean((x - ref) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(data_range**2 / mse)


#: scikit-image's Gaussian SSIM window: sigma 1.5 truncated at 3.5 sigma (an 11 x 11 window)
SSIM_TRUNCATE = 3.5


def ssim(x: np.ndarray, ref: np.ndarray, data_range: float = 1.0, sigma: float = 1.5) -> float:
    """Gaussian-window SSIM (Wang et al. 2004, K1 = 0.01, K2 = 0.03).

    Equal (to rounding) to ``skimage.metrics.structural_similarity(x, ref,
    gaussian_weights=True, sigma=sigma, use_sample_covariance=False,
    data_range=data_range)``, the setting of the papers we compare with; the test suite
    checks the parity. Kept here so that scoring needs no scikit-image at run time.
    """
    x = x.astype(np.float64)
    ref = ref.astype(np.float64)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    f = lambda a: gaussian_filter(a, sigma, truncate=SSIM_TRUNCATE, mode="reflect")  # noqa: E731
    mx, my = f(x), f(ref)
    # population (not sample) covariances: use_sample_covariance=False
    vx = f(x * x) - mx * mx
    vy = f(ref * ref) - my * my
    cxy = f(x * ref) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    # the mean leaves out the border where the window hangs over the image, as scikit-image
    # does: half the window, (win - 1) // 2 with win = 2 * int(truncate * sigma + 0.5) + 1
    pad = int(SSIM_TRUNCATE * sigma + 0.5)
    return float(s[pad:-pad, pad:-pad].mean())


def paper_scores(recon: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Framewise (PSNR, SSIM) with each frame min-max normalised, data range 1."""
    p, s = [], []
    for x, r in zip(np.abs(recon), np.abs(ref)):
        xn, rn = _minmax(x), _minmax(r)
        p.append(psnr(xn, rn, 1.0))
        s.append(ssim(xn, rn, 1.0))
    return np.asarray(p), np.asarray(s)


def ls_scale(recon: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``recon`` times the scalar that best fits it to ``ref`` in least squares (magnitudes)."""
    x, r = np.abs(recon).astype(np.float64), np.abs(ref).astype(np.float64)
    denom = float((x * x).sum())
    return x * (float((x * r).sum()) / denom if denom > 0 else 0.0)


def robust_psnr(recon: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Framewise PSNR of the LS-scaled series against the reference's peak."""
    x, r = ls_scale(recon, ref), np.abs(ref).astype(np.float64)
    peak = float(r.max())
    return np.asarray([psnr(a, b, peak) for a, b in zip(x, r)])


def motion_mask(ref: np.ndarray, top: float = 0.10) -> np.ndarray:
    """Pixels in the top ``top`` fraction of the reference's temporal standard deviation."""
    sd = np.abs(ref).std(axis=0)
    return sd >= np.quantile(sd, 1.0 - top)


def motion_psnr(recon: np.ndarray, ref: np.ndarray, top: float = 0.10) -> float:
    """PSNR inside the moving region (LS-scaled, reference peak)."""
    m = motion_mask(ref, top)
    x, r = ls_scale(recon, ref), np.abs(ref).astype(np.float64)
    return float(psnr(x[:, m], r[:, m], float(r.max())))


def temporal_nrmse(recon: np.ndarray, ref: np.ndarray) -> float:
    """NRMSE of the deviations from each series' own temporal mean (1.0 for a static series)."""
    x, r = ls_scale(recon, ref), np.abs(ref).astype(np.float64)
    dx, dr = x - x.mean(0), r - r.mean(0)
    n = float(np.sqrt((dr**2).sum()))
    return float(np.sqrt(((dx - dr) ** 2).sum())) / n if n > 0 else float("nan")


@dataclass
class Scores:
    psnr_mean: float
    psnr_std: float
    ssim_mean: float
    ssim_std: float
    robust_psnr_mean: float
    robust_psnr_std: float
    motion_psnr: float
    temporal_nrmse: float
    n_frames: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def score_series(recon: np.ndarray, ref: np.ndarray) -> Scores:
    """Every score of :mod:`dainr.metrics` for one series; shapes must agree."""
    if recon.shape != ref.shape:
        raise ValueError(f"reconstruction {recon.shape} and reference {ref.shape} differ in shape")
    p, s = paper_scores(recon, ref)
    rp = robust_psnr(recon, ref)
    return Scores(
        float(p.mean()),
        float(p.std()),
        float(s.mean()),
        float(s.std()),
        float(rp.mean()),
        float(rp.std()),
        motion_psnr(recon, ref),
        temporal_nrmse(recon, ref),
        int(recon.shape[0]),
    )


def roi_curve(series: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean magnitude inside ``mask[ny, nx]`` for every frame of ``series[F, ny, nx]``."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return np.full(series.shape[0], np.nan)
    return np.abs(series)[:, m].mean(axis=1)


class PeakMemory:
    """Peak memory of a block: the CUDA allocator's peak on a GPU, else process RSS.

    RSS is sampled by a background thread every 20 ms (no portable per-block peak exists).
    """

    def __init__(self, device: torch.device | str = "cpu", interval: float = 0.02):
        import torch  # here, so that scoring a file (dainr eval) does not pay for torch

        self.device = torch.device(device)
        self.interval = interval
        self.peak = 0

    def __enter__(self) -> PeakMemory:
        import torch

        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        self._proc = psutil.Process(os.getpid())
        self._stop = threading.Event()
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def peak_so_far(self) -> int:
        import torch

        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        return max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc) -> None:
        import torch

        if self.device.type == "cuda":
            self.peak = int(torch.cuda.max_memory_allocated(self.device))
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self._proc.memory_info().rss)
