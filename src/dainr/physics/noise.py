"""The measurement noise of radial k-space, estimated from the data themselves.

Every spoke of a radial acquisition passes through the k-space centre. Two consecutive
spokes, milliseconds apart, see nearly the same object there, so the difference of
their centre samples is noise: for complex Gaussian noise of variance ``sigma^2`` the
difference has ``|d|^2`` exponentially distributed with mean ``2 sigma^2``, and the
median of ``|d|^2`` over all coils and spoke pairs, divided by ``2 ln 2``, estimates
``sigma^2`` robustly (a few pairs across a frame boundary or a jump do not move a
median). Without a sample at the centre (an odd readout), the outer tenth of every
spoke, where an image's spectrum has faded, gives an upper bound instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NoiseEstimate:
    sigma: float  #: standard deviation of the complex noise of one sample (|n|^2 mean)
    relative: float  #: ``sigma`` over the root-mean-square of the samples
    method: str  #: "centre differences" or "outer k-space"

    def as_dict(self) -> dict:
        return {"sigma": self.sigma, "relative": self.relative, "method": self.method}


def estimate_noise(kspace: np.ndarray, trajectory: np.ndarray) -> NoiseEstimate:
    """``kspace [C, S, R]`` in acquisition order, ``trajectory [S, R, 2]`` (rad/pixel)."""
    k = np.asarray(kspace)
    radius = np.sqrt((np.asarray(trajectory, dtype=np.float64) ** 2).sum(-1))  # [S, R]
    rms = float(np.sqrt(np.mean(np.abs(k) ** 2)))
    centre = radius.argmin(-1)
    on_centre = radius[np.arange(len(radius)), centre] < 1e-6
    if k.shape[1] > 1 and on_centre.all():
        dc = k[:, np.arange(k.shape[1]), centre]  # [C, S]
        d2 = np.abs(np.diff(dc, axis=1)) ** 2
        sigma, method = float(np.sqrt(np.median(d2) / (2 * np.log(2)))), "centre differences"
    else:
        outer = radius >= 0.9 * radius.max()
        sigma, method = float(np.sqrt(np.mean(np.abs(k[:, outer]) ** 2))), "outer k-space"
    return NoiseEstimate(sigma, sigma / rms if rms > 0 else 0.0, method)


__all__ = ["NoiseEstimate", "estimate_noise"]
