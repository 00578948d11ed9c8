"""Deterministic numerical phantoms: a beating-heart cine and a DCE-like abdomen.

Both are drawn on a normalised grid (``[-1, 1)`` across the field of view, pixel
``n // 2`` at 0, as the k-space contract centres images) by painting soft-edged
ellipses in order: a later region covers the earlier ones by its partial-volume
weight. Keeping every region's weight per pixel makes the ROI masks exact: a mask
holds the pixels that belong wholly to one region, so the mean magnitude of the frames
inside it equals that region's known signal curve.

Intensities are arbitrary units near the bright-blood (cine) and T1-weighted
(contrast-enhanced) look of the real data; geometry is in fractions of the field of
view and does not depend on ``n``, the random texture depends on ``(n, seed)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

# ----------------------------------------------------------------------------- drawing


def grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row (y) and column (x) coordinates ``[n, n]`` in units of half the field of view."""
    c = (np.arange(n, dtype=np.float64) - n // 2) / (n / 2)
    return np.meshgrid(c, c, indexing="ij")


def ellipse(
    y: np.ndarray,
    x: np.ndarray,
    cy: float,
    cx: float,
    ry: float,
    rx: float,
    angle_deg: float = 0.0,
) -> np.ndarray:
    """Partial-volume membership in ``[0, 1]`` of an ellipse (rotated by ``angle_deg``).

    The edge is a one-pixel linear ramp of a first-order signed distance, which is
    what the pixel's area fraction inside a smooth boundary is, to first order.
    """
    px = float(y[1, 0] - y[0, 0]) if y.shape[0] > 1 else 1.0
    a = np.deg2rad(angle_deg)
    dy, dx = y - cy, x - cx
    u = np.cos(a) * dx + np.sin(a) * dy
    v = -np.sin(a) * dx + np.cos(a) * dy
    r = np.sqrt((u / rx) ** 2 + (v / ry) ** 2)
    grad = np.sqrt((u / rx**2) ** 2 + (v / ry**2) ** 2)
    dist = np.where(grad > 0, (r - 1.0) * r / np.maximum(grad, 1e-12), -min(rx, ry))
    return np.clip(0.5 - dist / px, 0.0, 1.0)


class Canvas:
    """Regions painted in order; keeps each region's final weight per pixel.

    ``weights[name]`` is the fraction of each pixel that shows region ``name`` after
    every later region has been painted over it.
    """

    def __init__(self, shape: tuple[int, int]):
        self.shape = shape
        self.weights: dict[str, np.ndarray] = {}

    def copy(self) -> Canvas:
        c = Canvas(self.shape)
        c.weights = {k: v.copy() for k, v in self.weights.items()}
        return c

    def paint(self, name: str, membership: np.ndarray) -> None:
        keep = 1.0 - membership
        for k in self.weights:
            self.weights[k] *= keep
        if name in self.weights:
            self.weights[name] += membership
        else:
            self.weights[name] = membership.copy()

    def render(
        self, values: dict[str, float], texture: dict[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """Sum of weight x value (x the region's texture, where it has one)."""
        out = np.zeros(self.shape, dtype=np.float64)
        texture = texture or {}
        for k, w in self.weights.items():
            v = values[k] * texture[k] if k in texture else values[k]
            out += w * v
        return out

    def mask(self, name: str, purity: float = 0.999) -> np.ndarray:
        """Pixels that show only region ``name`` (no partial volume with a neighbour)."""
        w = self.weights.get(name)
        return np.zeros(self.shape, bool) if w is None else w >= purity


def smooth_texture(
    n: int, rng: np.random.Generator, scale: float = 0.03, amplitude: float = 0.08
) -> np.ndarray:
    """``1 + amplitude * g``: g a unit-variance random field with correlation length ``scale`` (FOV/2 units)."""
    g = gaussian_filter(rng.standard_normal((n, n)), sigma=max(scale * n / 2, 0.5), mode="wrap")
    g /= g.std() or 1.0
    return 1.0 + amplitude * g


def smooth_phase(n: int, rng: np.random.Generator, max_rad: float = np.pi / 2) -> np.ndarray:
    """A smooth random phase map (low-order polynomial), at most ``max_rad`` in magnitude.

    Real images carry a slowly varying phase from B0 inhomogeneity and coil/receiver
    phase; a method that assumes a real image must not be flattered by its absence.
    """
    y, x = grid(n)
    terms = np.stack([np.ones_like(x), x, y, x * y, x * x - y * y, x * x + y * y])
    c = rng.uniform(-1.0, 1.0, size=terms.shape[0])
    p = np.tensordot(c, terms, axes=1)
    return p * (max_rad / max(float(np.abs(p).max()), 1e-12))


# ------------------------------------------------------------------------------ cardiac

#: Fraction of the end-diastolic LV volume over one cycle (phase 0 = end-diastole):
#: ejection to end-systole at 1/3 of the cycle (EF 62 %), rapid filling (E wave) to
#: 82 %, diastasis, atrial kick (A wave) back to 100 %. Shape after textbook Wiggers
#: diagrams; the numbers are typical of a healthy adult, not of one subject.
_LV_VOLUME_KNOTS = ((0.0, 1.0), (0.33, 0.38), (0.55, 0.82), (0.78, 0.87), (0.93, 1.0), (1.0, 1.0))


def lv_volume_fraction(phase: np.ndarray) -> np.ndarray:
    """LV volume / end-diastolic volume at cycle phases in ``[0, 1)`` (smooth, periodic)."""
    p = np.mod(np.asarray(phase, dtype=np.float64), 1.0)
    knots = np.asarray(_LV_VOLUME_KNOTS)
    i = np.clip(np.searchsorted(knots[:, 0], p, side="right") - 1, 0, len(knots) - 2)
    p0, p1 = knots[i, 0], knots[i + 1, 0]
    v0, v1 = knots[i, 1], knots[i + 1, 1]
    s = (p - p0) / (p1 - p0)
    return v0 + (v1 - v0) * (1.0 - np.cos(np.pi * s)) / 2.0  # zero slope at every knot


@dataclass(frozen=True)
class CardiacGeometry:
    """Where the left ventricle sits and how large it is (FOV/2 units)."""

    lv_centre: tuple[float, float] = (-0.02, 0.14)  #: (y, x): patient's left is image right
    blood_radius_ed: float = 0.17  #: end-diastolic blood-pool radius (~40 mm in a 240 mm FOV)
    wall_ed: float = 0.07  #: end-diastolic myocardial wall thickness (~8 mm)

    def blood_radius(self, phase: np.ndarray) -> np.ndarray:
        """Blood-pool radius over the cycle: area follows the volume curve."""
        return self.blood_radius_ed * np.sqrt(lv_volume_fraction(phase))

    def wall_radius(self, phase: np.ndarray) -> np.ndarray:
        """Epicardial radius: the myocardium keeps its area (incompressible) as it thickens."""
        rb_ed = self.blood_radius_ed
        area = (rb_ed + self.wall_ed) ** 2 - rb_ed**2
        return np.sqrt(self.blood_radius(phase) ** 2 + area)


CARDIAC = CardiacGeometry()

_CARDIAC_VALUES = {
    "air": 0.0,
    "fat": 0.75,
    "muscle": 0.35,
    "rib": 0.12,
    "lung": 0.05,
    "lung_vessel": 0.4,
    "liver": 0.42,
    "spine": 0.45,
    "cord": 0.25,
    "aorta": 0.9,
    "pericardial_fat": 0.65,
    "myocardium": 0.28,
    "rv_blood": 0.92,
    "lv_blood": 1.0,
    "papillary": 0.3,
}


def _cardiac_static(n: int, rng: np.random.Generator) -> Canvas:
    y, x = grid(n)
    cv = Canvas((n, n))
    cv.paint("fat", ellipse(y, x, 0.05, 0.0, 0.72, 0.92))
    cv.paint("muscle", ellipse(y, x, 0.06, 0.0, 0.65, 0.85))
    for k in range(9):  # ribs in the chest wall, front and sides
        a = np.deg2rad(-160 + 40 * k)
        cy, cx = 0.05 + 0.6 * np.sin(a), 0.8 * np.cos(a)
        if cy < 0.45:
            cv.paint("rib", ellipse(y, x, cy, cx, 0.035, 0.06, angle_deg=np.rad2deg(a) + 90))
    cv.paint("liver", ellipse(y, x, 0.42, -0.3, 0.24, 0.42, angle_deg=-10))
    cv.paint("lung", ellipse(y, x, -0.02, -0.48, 0.47, 0.3, angle_deg=5))
    cv.paint("lung", ellipse(y, x, -0.04, 0.5, 0.44, 0.28, angle_deg=-5))
    # Fine structure: pulmonary vessels a pixel or two across, at seeded places in the lungs.
    lung = cv.weights["lung"] > 0.99
    cand = np.argwhere(lung)
    for iy, ix in cand[rng.choice(len(cand), size=min(40, len(cand)), replace=False)]:
        r = rng.uniform(0.008, 0.02)
        cv.paint("lung_vessel", ellipse(y, x, y[iy, ix], x[iy, ix], r, r))
    cv.paint("spine", ellipse(y, x, 0.6, 0.0, 0.1, 0.1))
    cv.paint("cord", ellipse(y, x, 0.6, 0.0, 0.04, 0.04))
    cv.paint("aorta", ellipse(y, x, 0.42, 0.14, 0.055, 0.055))
    g = CARDIAC
    cy, cx = g.lv_centre
    cv.paint("pericardial_fat", ellipse(y, x, cy + 0.01, cx - 0.09, 0.32, 0.41, angle_deg=-20))
    return cv


def _paint_heart(cv: Canvas, n: int, phase: float) -> None:
    y, x = grid(n)
    g = CARDIAC
    cy, cx = g.lv_centre
    rb = float(g.blood_radius(phase))
    ro = float(g.wall_radius(phase))
    v = float(lv_volume_fraction(phase))
    # RV: a crescent on the septum's other side, its free wall moving with the LV volume.
    s = np.sqrt(0.55 + 0.45 * v)
    rv_cx = cx - 0.2
    cv.paint(
        "myocardium", ellipse(y, x, cy, rv_cx, 0.27 * s + 0.025, 0.18 * s + 0.025, angle_deg=-15)
    )
    cv.paint("rv_blood", ellipse(y, x, cy, rv_cx, 0.27 * s, 0.18 * s, angle_deg=-15))
    cv.paint("myocardium", ellipse(y, x, cy, cx, ro, ro))
    cv.paint("lv_blood", ellipse(y, x, cy, cx, rb, rb))
    # Papillary muscles ride on the wall: moving detail a few pixels across.
    for a in (np.deg2rad(60), np.deg2rad(150)):
        r = 0.03 * (0.8 + 0.4 * (1 - v))
        py, px_ = cy + (rb - r) * np.sin(a), cx + (rb - r) * np.cos(a)
        cv.paint("papillary", ellipse(y, x, py, px_, r, r))


def cardiac_phantom(n: int = 128, n_frames: int = 24, seed: int = 0) -> np.ndarray:
    """A short-axis cine of one heartbeat: complex64 ``[n_frames, n, n]``.

    Torso with subcutaneous fat, ribs, lungs with small vessels, liver, spine, aorta
    and a beating heart: the LV blood pool follows :func:`lv_volume_fraction` (radius
    from about 0.17 to 0.105 of FOV/2), the myocardium thickens as it contracts, the
    RV crescent moves with it. Frame ``f`` is cycle phase ``f / n_frames``. A seeded
    smooth texture on the soft tissue and a smooth phase map make it less ideal.
    """
    if n < 8 or n_frames < 1:
        raise ValueError(
            f"cardiac_phantom needs n >= 8 and n_frames >= 1, got n={n}, n_frames={n_frames}"
        )
    rng = np.random.default_rng(seed)
    static = _cardiac_static(n, rng)
    tex = {k: smooth_texture(n, rng) for k in ("muscle", "liver", "fat", "myocardium")}
    phase_map = np.exp(1j * smooth_phase(n, rng))
    frames = np.empty((n_frames, n, n), dtype=np.complex64)
    for f in range(n_frames):
        cv = static.copy()
        _paint_heart(cv, n, f / n_frames)
        frames[f] = cv.render(_CARDIAC_VALUES, tex) * phase_map
    return frames


# ---------------------------------------------------------------------------------- DCE


def gamma_variate(t: np.ndarray, t0: float, alpha: float, beta: float) -> np.ndarray:
    """``((t - t0) / (alpha beta))^alpha exp(alpha - (t - t0) / beta)``: peak 1 at ``t0 + alpha beta``."""
    s = np.clip(np.asarray(t, dtype=np.float64) - t0, 0.0, None)
    tp = alpha * beta
    return (s / tp) ** alpha * np.exp(alpha - s / beta)


@dataclass(frozen=True)
class ContrastKinetics:
    """Concentration curves after a bolus (seconds); values typical of liver DCE, not fitted.

    The aorta carries a gamma-variate first pass (Thompson et al. 1964 shape), a smaller
    recirculation pass and a slow plateau. Downstream organs see it through a transit
    delay and an exponential dispersion (a one-compartment residue function); the liver
    gets 25 % arterial and 75 % portal blood (the usual dual-input split).
    """

    arrival_s: float = 8.0  #: bolus arrival in the aorta after the series starts
    alpha: float = 3.0  #: gamma-variate shape of the first pass
    beta_s: float = 1.5  #: gamma-variate scale: first-pass peak at arrival + alpha*beta
    recirculation: float = 0.3  #: height of the second pass relative to the first
    recirculation_delay_s: float = 12.0  #: second pass arrives this much after the first
    plateau: float = 0.25  #: equilibrium level the blood settles to
    portal_delay_s: float = 6.0  #: gut transit delay to the portal vein
    portal_dispersion_s: float = 8.0  #: its dispersion time constant
    hepatic_arterial_fraction: float = 0.25  #: arterial share of liver inflow
    liver_exchange_s: float = 40.0  #: slow uptake into liver parenchyma
    spleen_dispersion_s: float = 6.0  #: splenic enhancement follows the arteries closely
    kidney_dispersion_s: float = 4.0  #: renal cortex, fastest of the organs
    ivc_delay_s: float = 10.0  #: systemic venous return
    ivc_dispersion_s: float = 12.0

    def concentrations(self, t: np.ndarray, dt: float = 0.05) -> dict[str, np.ndarray]:
        """Concentration of every compartment at times ``t`` (aorta first pass peaks at 1)."""
        t = np.asarray(t, dtype=np.float64)
        tf = np.arange(0.0, max(float(t.max()), 1.0) + dt, dt)
        a = gamma_variate(tf, self.arrival_s, self.alpha, self.beta_s)
        a += self.recirculation * gamma_variate(
            tf, self.arrival_s + self.recirculation_delay_s, self.alpha, 2 * self.beta_s
        )
        a += self.plateau * np.clip(1.0 - np.exp(-(tf - self.arrival_s) / 15.0), 0.0, None)

        def through(c: np.ndarray, delay: float, tau: float) -> np.ndarray:
            h = np.exp(-tf / tau) * dt / tau  # unit area: no contrast made or lost
            out = np.convolve(c, h)[: tf.size]
            shift = int(round(delay / dt))
            return np.concatenate([np.zeros(shift), out[: tf.size - shift]]) if shift else out

        pv = through(a, self.portal_delay_s, self.portal_dispersion_s)
        inflow = self.hepatic_arterial_fraction * a + (1 - self.hepatic_arterial_fraction) * pv
        fine = {
            "aorta": a,
            "portal_vein": pv,
            "liver": through(inflow, 0.0, self.liver_exchange_s),
            "spleen": through(a, 1.0, self.spleen_dispersion_s),
            "kidneys": through(a, 0.5, self.kidney_dispersion_s),
            "ivc": through(a, self.ivc_delay_s, self.ivc_dispersion_s),
        }
        return {k: np.interp(t, tf, v) for k, v in fine.items()}


#: (baseline, gain): signal = baseline + gain * concentration. T1-weighted: blood dark
#: before contrast, fat bright; gains bring the aortic first pass near 1.
_DCE_SIGNAL = {
    "aorta": (0.15, 0.85),
    "portal_vein": (0.15, 1.1),
    "liver": (0.3, 0.9),
    "spleen": (0.25, 0.8),
    "kidneys": (0.22, 0.9),
    "ivc": (0.15, 0.9),
}
_DCE_STATIC = {
    "fat": 0.7,
    "muscle": 0.22,
    "spine": 0.45,
    "cord": 0.15,
    "stomach": 0.08,
    "bowel_wall": 0.35,
}
#: The ROIs stored with a DCE file (curves known exactly): AO and PV as in the paper, and the liver.
DCE_ROIS = ("aorta", "portal_vein", "liver", "spleen", "kidneys")


def _dce_canvas(n: int, rng: np.random.Generator) -> Canvas:
    y, x = grid(n)
    cv = Canvas((n, n))
    cv.paint("fat", ellipse(y, x, 0.02, 0.0, 0.68, 0.92))
    cv.paint("muscle", ellipse(y, x, 0.03, 0.0, 0.61, 0.85))
    cv.paint("liver", ellipse(y, x, -0.08, -0.36, 0.5, 0.42, angle_deg=-15))
    cv.paint("spleen", ellipse(y, x, 0.05, 0.6, 0.24, 0.13, angle_deg=-35))
    cv.paint("bowel_wall", ellipse(y, x, -0.3, 0.28, 0.2, 0.26, angle_deg=20))
    cv.paint("stomach", ellipse(y, x, -0.3, 0.28, 0.16, 0.22, angle_deg=20))
    cv.paint("muscle", ellipse(y, x, 0.44, -0.2, 0.12, 0.1))  # paraspinal muscles
    cv.paint("muscle", ellipse(y, x, 0.44, 0.2, 0.12, 0.1))
    cv.paint("kidneys", ellipse(y, x, 0.3, -0.42, 0.17, 0.11, angle_deg=30))
    cv.paint("kidneys", ellipse(y, x, 0.3, 0.42, 0.17, 0.11, angle_deg=-30))
    cv.paint("spine", ellipse(y, x, 0.36, 0.0, 0.11, 0.11))
    cv.paint("cord", ellipse(y, x, 0.52, 0.0, 0.04, 0.04))
    # Vessels keep at least 1.5 pixels of radius on coarse grids so that their ROI
    # holds a pixel free of partial volume at any n.
    v = lambda r: max(r, 1.5 * 2 / n)  # noqa: E731
    cv.paint("aorta", ellipse(y, x, 0.2, 0.1, v(0.055), v(0.055)))
    cv.paint("ivc", ellipse(y, x, 0.18, -0.16, v(0.05), v(0.07)))
    cv.paint("portal_vein", ellipse(y, x, -0.02, -0.2, v(0.055), v(0.09), angle_deg=-20))
    # Fine structure: portal branches inside the liver, a pixel or a few across.
    liver = np.argwhere(cv.weights["liver"] > 0.99)
    for iy, ix in liver[rng.choice(len(liver), size=min(14, len(liver)), replace=False)]:
        r = rng.uniform(0.01, 0.03)
        cv.paint(
            "portal_branch",
            ellipse(
                y,
                x,
                y[iy, ix],
                x[iy, ix],
                r,
                r * rng.uniform(1.0, 2.5),
                angle_deg=rng.uniform(0, 180),
            ),
        )
    return cv


@dataclass(frozen=True)
class DcePhantom:
    """A DCE series with the ground truth needed to score ROI curves."""

    frames: np.ndarray  #: complex64 [F, n, n]
    curves: dict[str, np.ndarray]  #: ROI name -> mean magnitude inside its mask, [F]
    masks: dict[str, np.ndarray]  #: ROI name -> bool [n, n], pixels wholly inside the organ
    times_s: np.ndarray  #: frame centre times, seconds after the series starts

    def __iter__(self):
        # (frames, curves, masks) unpacking, as the function's documented return.
        return iter((self.frames, self.curves, self.masks))


def dce_phantom(
    n: int = 128,
    n_frames: int = 16,
    seed: int = 0,
    frame_seconds: float = 4.0,
    kinetics: ContrastKinetics | None = None,
) -> DcePhantom:
    """An axial upper-abdomen DCE series: ``frames, curves, masks = dce_phantom(...)``.

    Aorta (arterial first pass peaking first), portal vein (delayed, dispersed peak),
    liver (slow dual-input uptake), spleen, kidneys and IVC enhance with the curves of
    :class:`ContrastKinetics`; fat, muscle, spine and stomach stay still. ``frame_seconds``
    is the time one frame's spokes take (the default, 4 s, puts the arterial peak near
    frame 3 and the portal peak near frame 6 of 16). ROI curves are exact: no texture
    on the enhancing organs, masks without partial volume.
    """
    if n < 16 or n_frames < 1:
        raise ValueError(
            f"dce_phantom needs n >= 16 and n_frames >= 1, got n={n}, n_frames={n_frames}"
        )
    kin = kinetics or ContrastKinetics()
    rng = np.random.default_rng(seed)
    cv = _dce_canvas(n, rng)
    tex = {k: smooth_texture(n, rng) for k in ("muscle", "fat")}
    phase_map = np.exp(1j * smooth_phase(n, rng))
    times = (np.arange(n_frames) + 0.5) * frame_seconds
    conc = kin.concentrations(times)
    signal = {k: b + g * conc[k] for k, (b, g) in _DCE_SIGNAL.items()}
    signal["portal_branch"] = signal["portal_vein"]
    frames = np.empty((n_frames, n, n), dtype=np.complex64)
    for f in range(n_frames):
        values = dict(_DCE_STATIC) | {k: float(v[f]) for k, v in signal.items()}
        frames[f] = cv.render(values, tex) * phase_map
    masks = {k: cv.mask(k) for k in DCE_ROIS}
    curves = {k: signal[k].astype(np.float32) for k in DCE_ROIS}
    return DcePhantom(frames, curves, masks, times.astype(np.float32))
