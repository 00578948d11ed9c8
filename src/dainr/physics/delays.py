"""Radial gradient delays: estimation by radial intersections (RING) and correction.

Model (Rosenzweig, Holme, Uecker, "Simple auto-calibrated gradient delay estimation
from few spokes using Radial Intersections (RING)", MRM 2018): a spoke whose readout
runs along the unit direction ``n = (n_x, n_y)`` is sampled not on its nominal line
but shifted by ``S n`` with the symmetric

    S = [[s_x,  s_xy],
         [s_xy, s_y ]]

in units of readout samples (one sample is the spacing ``dk`` of the spoke's samples,
``2 pi / n_readout`` radians per pixel for this project's trajectories). A positive
``s_x`` moves a spoke read out along +x further along +x, so its centre sample lands at
``-s_x`` samples. The delay tuple everywhere is ``(s_x, s_y, s_xy)`` in samples.

Estimation: two spokes at different angles cross at one k-space point, where all
coils' samples of both must agree. The crossing is found on the measured samples
(band-limited interpolation along each readout); its offset from the nominal crossing
(the centre of both) is linear in ``S``, so the pairs of a series give an
over-determined linear system for ``(s_x, s_y, s_xy)``. Pairs are spokes close in
acquisition order (a dynamic object changes little between them) whose lines cross at
a clear angle.
"""

from __future__ import annotations

import numpy as np

#: half-width in samples of the windowed-sinc interpolation along a readout
_HALF_WIDTH = 8
#: Kaiser window shape: the readout is oversampled, so a short window keeps the error
#: well below the 0.01-sample precision the crossing needs
_KAISER_BETA = 6.0
#: crossing offsets searched on the coarse grid, in samples either side of the centre
_SEARCH = 4.0
_GRID_STEP = 0.25
_GRID_POINTS = int(round(2 * _SEARCH / _GRID_STEP)) + 1


def _geometry(trajectory: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per spoke: unit readout direction ``[S, 2]`` as (y, x), sample spacing ``dk`` and
    the (fractional) index of the sample at the k-space centre."""
    t = np.asarray(trajectory, dtype=np.float64)
    if t.ndim != 3 or t.shape[-1] != 2 or t.shape[1] < 8:
        raise ValueError(f"trajectory: expected [spokes, readout >= 8, 2] (ky, kx), got {t.shape}")
    R = t.shape[1]
    # interior samples: the first may have been wrapped from +pi to -pi
    i1, i2 = R // 4, (3 * R) // 4
    v = t[:, i2] - t[:, i1]
    length = np.hypot(v[:, 0], v[:, 1])
    if np.any(length <= 0):
        raise ValueError("trajectory: expected radial spokes, found a spoke of zero length")
    dk = length / (i2 - i1)
    n = v / length[:, None]
    centre = i1 - (t[:, i1] * n).sum(-1) / dk
    return n, dk, centre


def _delay_matrix(delays) -> np.ndarray:
    """``S`` in (y, x) order, so that it acts on directions stored as (y, x)."""
    d = tuple(float(x) for x in delays)
    if len(d) == 2:
        d = (*d, 0.0)
    if len(d) != 3 or not np.all(np.isfinite(d)):
        raise ValueError(f"delays: expected finite (s_x, s_y[, s_xy]) in samples, got {delays}")
    sx, sy, sxy = d
    return np.array([[sy, sxy], [sxy, sx]])


def apply_delays(trajectory: np.ndarray, delays) -> np.ndarray:
    """The positions the samples were actually taken at: every spoke moved by ``dk S n``.

    ``delays`` is ``(s_x, s_y[, s_xy])`` in samples; the result is float32, wrapped into
    ``[-pi, pi)`` like the nominal trajectory (the NUFFT is 2 pi-periodic).
    """
    S = _delay_matrix(delays)
    n, dk, _ = _geometry(trajectory)
    shift = dk[:, None] * (n @ S.T)  # [S, 2] (y, x); S is symmetric
    out = np.asarray(trajectory, dtype=np.float64) + shift[:, None, :]
    out = np.mod(out + np.pi, 2 * np.pi) - np.pi
    return out.astype(np.float32)


def _kernel(u: np.ndarray) -> np.ndarray:
    """Kaiser-windowed sinc at offsets ``u`` (samples), zero beyond the half-width."""
    inside = np.abs(u) < _HALF_WIDTH
    arg = np.sqrt(np.clip(1.0 - (u / _HALF_WIDTH) ** 2, 0.0, None))
    return np.where(inside, np.sinc(u) * np.i0(_KAISER_BETA * arg) / np.i0(_KAISER_BETA), 0.0)


def _interpolate(spokes: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``spokes[P, C, R]`` at fractional sample indices ``pos[P, G]`` -> ``[P, G, C]``."""
    P, C, R = spokes.shape
    base = np.floor(pos).astype(np.int64)
    taps = np.arange(-_HALF_WIDTH + 1, _HALF_WIDTH + 1)
    idx = base[..., None] + taps  # [P, G, T]
    w = _kernel(pos[..., None] - idx)
    w = np.where((idx >= 0) & (idx < R), w, 0.0)
    idx = np.clip(idx, 0, R - 1)
    vals = np.take_along_axis(spokes[:, :, None, :], idx[:, None], axis=3)  # [P, C, G, T]
    return np.einsum("pcgt,pgt->pgc", vals, w)


def _pairs(n: np.ndarray, window: int, max_cos: float, max_pairs: int) -> np.ndarray:
    """Spoke pairs ``[P, 2]`` at most ``window`` apart whose lines cross at a clear angle."""
    S = n.shape[0]
    out = []
    for lag in range(1, min(window, S - 1) + 1):
        a = np.arange(S - lag)
        b = a + lag
        cos = np.abs((n[a] * n[b]).sum(-1))
        keep = cos <= max_cos
        out.append(np.stack([a[keep], b[keep]], axis=1))
    pairs = np.concatenate(out) if out else np.zeros((0, 2), np.int64)
    if len(pairs) > max_pairs:
        pairs = pairs[np.linspace(0, len(pairs) - 1, max_pairs).round().astype(np.int64)]
    return pairs


def _segments(
    kspace: np.ndarray, spokes: np.ndarray, around: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The samples of ``spokes`` near the fractional indices ``around``: ``[n, C, L]``
    complex128 (zero beyond the readout) and ``around`` within each segment. Crossings
    lie within the search range of ``around``, so nothing further out is ever
    interpolated (and a large scan's k-space is never copied whole)."""
    half = int(np.ceil(_SEARCH + _GRID_STEP)) + _HALF_WIDTH + 1
    R = kspace.shape[2]
    start = np.round(around).astype(np.int64) - half
    idx = start[:, None] + np.arange(2 * half + 1)  # [n, L]
    inside = (idx >= 0) & (idx < R)
    seg = kspace[:, spokes[:, None], np.clip(idx, 0, R - 1)]  # [C, n, L]
    seg = np.where(inside[None], seg, 0).astype(np.complex128).transpose(1, 0, 2)
    return seg, around - start


def _crossings(
    ka: np.ndarray, kb: np.ndarray, ca: np.ndarray, cb: np.ndarray, iterations: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (samples from ``ca``, ``cb``) where the pairs' samples agree best.

    A coarse grid search finds the basin (the centre's peak dominates, so the nearest
    minimum is the crossing), Gauss-Newton on the interpolated samples refines it.
    """
    grid = np.linspace(-_SEARCH, _SEARCH, _GRID_POINTS)
    A = _interpolate(ka, ca[:, None] + grid)  # [P, G, C]
    B = _interpolate(kb, cb[:, None] + grid)
    cost = (
        (np.abs(A) ** 2).sum(-1)[:, :, None]
        + (np.abs(B) ** 2).sum(-1)[:, None, :]
        - 2 * np.einsum("pic,pjc->pij", A, B.conj()).real
    )
    best = cost.reshape(len(cost), -1).argmin(1)
    ta, tb = grid[best // len(grid)], grid[best % len(grid)]
    h = 1e-3
    for _ in range(iterations):
        va = _interpolate(ka, np.stack([ca + ta - h, ca + ta, ca + ta + h], 1))
        vb = _interpolate(kb, np.stack([cb + tb - h, cb + tb, cb + tb + h], 1))
        r = va[:, 1] - vb[:, 1]  # [P, C]
        J = np.stack([(va[:, 2] - va[:, 0]) / (2 * h), -(vb[:, 2] - vb[:, 0]) / (2 * h)], -1)
        H = np.einsum("pci,pcj->pij", J.conj(), J).real
        g = np.einsum("pci,pc->pi", J.conj(), r).real
        # a flat cost (a pair of silent spokes) must stay put rather than fail the solve
        H = H + (1e-9 * np.trace(H, axis1=1, axis2=2) + 1e-300)[:, None, None] * np.eye(2)
        step = -np.linalg.solve(H, g[..., None])[..., 0]
        step = np.clip(step, -_GRID_STEP, _GRID_STEP)
        ta, tb = ta + step[:, 0], tb + step[:, 1]
    return ta, tb


def _predicted(S: np.ndarray, na: np.ndarray, nb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crossing offsets ``t_a``, ``t_b`` that ``S`` ((y, x) order) implies for each pair."""
    M = np.stack([na, -nb], axis=-1)  # [P, 2, 2]: columns multiply t_a, t_b
    rhs = (nb - na) @ S.T
    t = np.linalg.solve(M, rhs[..., None])[..., 0]
    return t[:, 0], t[:, 1]


def _solve(na: np.ndarray, nb: np.ndarray, ta: np.ndarray, tb: np.ndarray) -> np.ndarray:
    """Least-squares ``(s_x, s_y, s_xy)`` from the crossings, then again without the pairs
    whose residual is far above the rest (e.g. where the object moved between them)."""
    d = nb - na
    dy, dx = d[:, 0], d[:, 1]
    zero = np.zeros_like(dx)
    # the y rows, then the x rows, of S (n_b - n_a) = t_a n_a - t_b n_b
    M = np.concatenate([np.stack([zero, dy, dx], 1), np.stack([dx, zero, dy], 1)])
    rhs = ta[:, None] * na - tb[:, None] * nb
    y = np.concatenate([rhs[:, 0], rhs[:, 1]])
    sol = np.linalg.lstsq(M, y, rcond=None)[0]
    res = np.abs(M @ sol - y)
    per_pair = np.maximum(res[: len(ta)], res[len(ta) :])
    good = per_pair <= 3 * np.median(per_pair) + 1e-6
    if good.sum() >= 3:
        keep = np.concatenate([good, good])
        sol = np.linalg.lstsq(M[keep], y[keep], rcond=None)[0]
    return sol


def estimate_delays(
    kspace: np.ndarray,
    trajectory: np.ndarray,
    *,
    window: int = 8,
    max_pairs: int = 3000,
) -> tuple[float, float, float]:
    """RING estimate ``(s_x, s_y, s_xy)`` in samples from ``kspace [C, S, R]`` (all coils)
    and its nominal ``trajectory [S, R, 2]`` (ky, kx).

    Every spoke is paired with those up to ``window`` later in acquisition order whose
    lines cross at more than ~45 degrees (golden-angle series give many angles);
    ``max_pairs`` evenly spaced pairs at most. With ``n_a``, ``n_b`` the pair's
    directions and ``t_a``, ``t_b`` the measured crossing offsets along each (samples),
    the shifted lines meet where ``S (n_b - n_a) = t_a n_a - t_b n_b``: two equations
    per pair, solved by least squares. Crossings are searched within 4 samples of the
    nominal ones; when many fall at that edge (delays of several samples) the search is
    repeated around the crossings the estimate predicts (measured on a phantom: exact to
    1e-3 samples up to 5 samples of delay, lost at 8).
    """
    k = np.asarray(kspace)
    t = np.asarray(trajectory)
    if k.ndim != 3 or t.shape[:2] != k.shape[1:]:
        raise ValueError(
            f"kspace {k.shape} and trajectory {t.shape}: expected [coils, spokes, readout] "
            "and [spokes, readout, 2]"
        )
    if not np.any(k):
        raise ValueError("kspace: all samples are zero; expected measured data to estimate delays")
    n, _, centre = _geometry(t)
    pairs = _pairs(n, window, max_cos=0.7, max_pairs=max_pairs)
    if len(pairs) < 3:
        raise ValueError(
            f"kspace: {k.shape[1]} spokes give {len(pairs)} crossing pairs; "
            "expected at least 3 (more spokes at varied angles)"
        )
    a, b = pairs[:, 0], pairs[:, 1]
    na, nb = n[a], n[b]
    ta, tb = np.zeros(len(pairs)), np.zeros(len(pairs))
    # chunks bound the interpolation's [pairs, coils, grid, taps] temporaries (~64 MB)
    chunk = max(1, 4_000_000 // (k.shape[0] * _GRID_POINTS * 2 * _HALF_WIDTH))
    limit = k.shape[2] / 4  # a crossing further out is no longer near the centre's signal
    for _ in range(4):
        ta0, tb0 = np.clip(ta, -limit, limit), np.clip(tb, -limit, limit)
        for lo in range(0, len(pairs), chunk):
            sl = slice(lo, lo + chunk)
            ka, ca = _segments(k, a[sl], centre[a[sl]] + ta0[sl])
            kb, cb = _segments(k, b[sl], centre[b[sl]] + tb0[sl])
            da, db = _crossings(ka, kb, ca, cb)
            ta[sl], tb[sl] = ta0[sl] + da, tb0[sl] + db
        sol = _solve(na, nb, ta, tb)
        edge = np.maximum(np.abs(ta - ta0), np.abs(tb - tb0)) > _SEARCH - _GRID_STEP
        if edge.mean() <= 0.01:
            break
        ta, tb = _predicted(_delay_matrix(sol), na, nb)
    return float(sol[0]), float(sol[1]), float(sol[2])


__all__ = ["apply_delays", "estimate_delays"]
