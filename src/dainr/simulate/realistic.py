"""Development cases with real anatomy: the real short-axis cine and a perfusion series made from it.

Source image: ``sax_cine_data25.mat`` (variable ``data``, uint16 [192, 156, 25] rows,
columns, frames; a real bSSFP short-axis cine of one heartbeat, magnitude only), from
github.com/yhao-z/GIRAF-3d-fast ``data/data25.mat`` at commit e6a9d38, MIT licence (its
LICENSE file travels beside the data in ``shared/data``; cite the source wherever these
cases are shipped or shown).

* :func:`cine_case` -- the real cine, padded to a square field of view and resampled
  to ``size`` x ``size``, given a smooth complex phase, seen through a loop-coil array
  (:func:`dainr.simulate.coils.loop_array_maps`, not a birdcage), sampled with one
  continuous golden-angle radial sequence and complex Gaussian noise. Texture, thin
  structures (papillary muscles, trabeculae, vessels) and contraction are the real ones.
* :func:`perfusion_case` -- a first-pass cardiac perfusion series on the same real
  anatomy: right-ventricle, left-ventricle and myocardium regions segmented from the
  real image carry contrast curves (RV first, LV after the lungs' transit, a slow small
  myocardial uptake), their real texture kept; the whole slice moves with a breathing
  shift. The ROI masks (pixels inside their region in every frame) and the truth's
  mean magnitude in them are stored under ``/roi`` as the DCE phantom's are.

Both return a contract :class:`~dainr.data.KSpaceData` with ``/reference`` and, unless
``with_maps=False``, the true ``/coil_maps`` (without them reconstructions estimate maps;
the true maps then travel as ``extra['truth/coil_maps']`` for scoring estimators).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..data import ROI_GROUP, KSpaceData
from ..errors import InputError
from .acquire import acquire_series
from .coils import loop_array_maps
from .phantoms import gamma_variate, smooth_phase

log = logging.getLogger(__name__)

CINE_FILE = "sax_cine_data25.mat"
#: Where the cine is looked for when no path is given: this variable, then ``shared/data``
#: beside the checkout (the project's layout), then the working directory.
CINE_ENV = "DAINR_REAL_CINE"
CINE_SOURCE = (
    "real short-axis bSSFP cine sax_cine_data25.mat: github.com/yhao-z/GIRAF-3d-fast "
    "data/data25.mat (commit e6a9d38), MIT licence"
)
#: Truth-curve ROIs of the perfusion case.
PERFUSION_ROIS = ("rv", "lv", "myocardium")


def find_cine(image: str | Path | None = None) -> Path:
    """The real cine's path: ``image`` if given, else ``$DAINR_REAL_CINE`` or ``shared/data``."""
    if image is not None:
        p = Path(image)
        if not p.is_file():
            raise InputError(p, None, "no such file (expected the real cine .mat)")
        return p
    here = Path(__file__).resolve()
    candidates = [os.environ.get(CINE_ENV)]
    candidates += [str(d / "shared" / "data" / CINE_FILE) for d in here.parents]
    candidates += [
        str(Path.cwd() / CINE_FILE),
        str(Path.cwd() / ".." / "shared" / "data" / CINE_FILE),
    ]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    raise InputError(
        CINE_FILE,
        None,
        f"real cine not found: pass its path (image=..., --image) or set ${CINE_ENV}",
    )


@lru_cache(maxsize=4)
def _load_cine_cached(path: str) -> np.ndarray:
    from ..io.matlab import mat_variable_names

    names = mat_variable_names(path)
    if "data" not in names:
        raise InputError(
            path, "data", f"missing variable (the file has {', '.join(names) or 'none'})"
        )
    from scipy.io import loadmat

    a = np.asarray(loadmat(path, variable_names=["data"])["data"])
    if a.ndim != 3 or min(a.shape[:2]) < 16:
        raise InputError(
            path, "data", f"expected [rows, cols, frames] magnitude, got shape {a.shape}"
        )
    return np.ascontiguousarray(np.transpose(a.astype(np.float32), (2, 0, 1)))


def load_real_cine(image: str | Path | None = None, size: int = 128) -> np.ndarray:
    """Real cine magnitude ``[F, size, size]`` float32, 99.9th percentile scaled to 1.

    The [rows, cols] frames are zero-padded to a square (the longer side; nothing of the
    anatomy is cut) and resampled to ``size`` (cubic spline), negative overshoot clipped.
    """
    from scipy.ndimage import zoom

    if size < 16:
        raise ValueError(f"size must be >= 16, got {size}")
    a = _load_cine_cached(str(find_cine(image)))
    F, ny, nx = a.shape
    m = max(ny, nx)
    py, px = m - ny, m - nx
    a = np.pad(a, ((0, 0), (py // 2, py - py // 2), (px // 2, px - px // 2)))
    if size != m:
        a = np.stack([zoom(f.astype(np.float64), size / m, order=3) for f in a])
        # zoom can land one pixel off on odd ratios
        a = a[:, :size, :size]
    a = np.clip(a, 0, None)
    a /= float(np.percentile(a, 99.9)) or 1.0
    return a.astype(np.float32)


def _finish(
    frames: np.ndarray,
    maps: np.ndarray,
    spokes_per_frame: int,
    noise: float,
    seed: int,
    with_maps: bool,
    readout_oversampling: float,
    attrs: dict,
    extra: dict | None = None,
    gradient_delay: tuple[float, ...] | None = None,
) -> KSpaceData:
    extra = dict(extra or {})
    data = acquire_series(
        frames,
        maps,
        spokes_per_frame,
        readout_oversampling,
        noise,
        seed,
        attrs=attrs,
        extra=extra,
        gradient_delay=gradient_delay,
    )
    if not with_maps:
        data.coil_maps = None
        data.extra["truth/coil_maps"] = maps.astype(np.complex64)
    return data


def _settings(local: dict, fn) -> dict:
    """The case's call arguments, as recorded in the file's ``simulation`` attribute."""
    import inspect

    out = {"case": fn.__name__}
    for k in inspect.signature(fn).parameters:
        v = local.get(k)
        if k == "kinetics":
            v = dataclasses.asdict(v or PerfusionKinetics())
        if k == "gradient_delay" and v is None:  # files without delays record as they did
            continue
        out[k] = str(v) if isinstance(v, Path) else v
    return out


def _check(spokes_per_frame: int, coils: int, noise: float) -> None:
    if spokes_per_frame < 1 or coils < 1 or noise < 0:
        raise ValueError(
            f"need spokes_per_frame >= 1, coils >= 1, noise >= 0; got {spokes_per_frame}, {coils}, {noise}"
        )


def cine_case(
    spokes_per_frame: int = 13,
    coils: int = 12,
    size: int = 128,
    frames: int | None = None,
    noise: float = 0.01,
    seed: int = 0,
    with_maps: bool = True,
    image: str | Path | None = None,
    readout_oversampling: float = 2.0,
    gradient_delay: tuple[float, ...] | None = None,
) -> KSpaceData:
    """The real short-axis cine as a radial multi-coil acquisition (see the module doc).

    ``frames`` keeps the first F of the 25; ``seed`` draws the phase map, the coil array's
    jitter and the noise; ``gradient_delay`` (s_x, s_y[, s_xy]) samples as a scanner with
    those radial gradient delays would. About a second at 128² x 25 frames x 12 coils.
    """
    _check(spokes_per_frame, coils, noise)
    mag = load_real_cine(image, size)
    if frames is not None:
        if not 1 <= frames <= mag.shape[0]:
            raise ValueError(f"frames must be in 1..{mag.shape[0]}, got {frames}")
        mag = mag[:frames]
    rng = np.random.default_rng(seed)
    phase = np.exp(1j * smooth_phase(size, rng)).astype(np.complex64)
    series = (mag * phase[None]).astype(np.complex64)
    maps = loop_array_maps(coils, (size, size), seed=seed)
    attrs = {
        "phantom": "cine-real",
        "description": f"{CINE_SOURCE}; {series.shape[0]} frames {size}x{size}, {coils} loop-array coils, "
        f"{spokes_per_frame} golden-angle spokes/frame, noise {noise:g}",
        "source_images": CINE_SOURCE,
        "coil_model": "loop array (Biot-Savart) with smooth random perturbation, RSS-normalised",
        "n_coils_simulated": int(coils),
        "readout_oversampling": float(readout_oversampling),
        "simulation": _settings(locals(), cine_case),
    }
    return _finish(
        series,
        maps,
        spokes_per_frame,
        noise,
        seed,
        with_maps,
        readout_oversampling,
        attrs,
        gradient_delay=gradient_delay,
    )


# ------------------------------------------------------------------------- perfusion


@dataclass(frozen=True)
class PerfusionKinetics:
    """First-pass curves (concentration, RV peak 1) of a bolus seen in one slice per heartbeat.

    The RV sees a gamma-variate first pass; the LV sees it after the pulmonary transit
    (delay and exponential dispersion), with a recirculation pass; the myocardium sees
    the LV's through a slower dispersion and extracts a fraction of it. Typical adult
    rest values, not fitted to one subject.
    """

    arrival_s: float = 6.0
    alpha: float = 2.5
    beta_s: float = 1.4
    pulmonary_delay_s: float = 3.0
    pulmonary_dispersion_s: float = 2.5
    recirculation: float = 0.25
    recirculation_delay_s: float = 14.0
    myocardial_dispersion_s: float = 5.0

    def concentrations(self, t: np.ndarray, dt: float = 0.05) -> dict[str, np.ndarray]:
        t = np.asarray(t, dtype=np.float64)
        tf = np.arange(0.0, max(float(t.max()), 1.0) + dt, dt)

        def through(c: np.ndarray, delay: float, tau: float) -> np.ndarray:
            h = np.exp(-tf / tau) * dt / tau
            out = np.convolve(c, h)[: tf.size]
            s = int(round(delay / dt))
            return np.concatenate([np.zeros(s), out[: tf.size - s]]) if s else out

        rv = gamma_variate(tf, self.arrival_s, self.alpha, self.beta_s)
        rv += self.recirculation * gamma_variate(
            tf, self.arrival_s + self.recirculation_delay_s, self.alpha, 2 * self.beta_s
        )
        lv = through(rv, self.pulmonary_delay_s, self.pulmonary_dispersion_s)
        lv /= lv.max() or 1.0
        myo = through(lv, 0.5, self.myocardial_dispersion_s)
        fine = {"rv": rv, "lv": lv, "myocardium": myo}
        return {k: np.interp(t, tf, v) for k, v in fine.items()}


#: (pre-contrast, gain) of the saturation-recovery T1-weighted look: blood and muscle
#: dark before the bolus, blood near 1 at its peak, myocardium up by ~ a quarter.
_PERFUSION_SIGNAL = {"rv": (0.1, 0.95), "lv": (0.1, 0.9), "myocardium": (0.12, 0.3)}
#: Everything else keeps its real texture at this fraction of the cine's brightness.
_PERFUSION_BACKGROUND = 0.35


def _component_at(mask: np.ndarray, point: tuple[float, float]) -> np.ndarray:
    """The connected component of ``mask`` nearest to ``point`` (fractions of rows, cols)."""
    from scipy.ndimage import label

    lab, n = label(mask)
    if n == 0:
        return np.zeros_like(mask)
    ny, nx = mask.shape
    py, px = point[0] * ny, point[1] * nx
    yy, xx = np.nonzero(mask)
    i = int(np.argmin((yy - py) ** 2 + (xx - px) ** 2))
    return lab == lab[yy[i], xx[i]]


def segment_heart(image: np.ndarray) -> dict[str, np.ndarray]:
    """LV and RV blood pools and LV myocardium of the real cine's frame (bool ``[n, n]``).

    Blood is bright in bSSFP: the LV and RV pools are the bright components nearest to
    where they lie in this slice; holes (papillary muscles) belong to the myocardium,
    which is the dark ring within about 8 mm of the LV pool.
    """
    from scipy.ndimage import binary_fill_holes, binary_opening, distance_transform_edt, label

    n = image.shape[0]
    sm = image
    bright = sm > 0.55
    # Positions of the pools in this slice, fractions of the padded square field of view.
    lv = binary_fill_holes(_component_at(bright, (0.53, 0.47)))
    rv = _component_at(bright & ~lv, (0.64, 0.30))
    rv = binary_opening(rv, iterations=1) if rv.sum() > 20 else rv
    pap = lv & ~bright
    lv = lv & bright
    wall = max(3.0, 0.055 * n)  # ~8 mm of myocardium at this slice's scale
    near = distance_transform_edt(~(lv | pap)) <= wall
    ring = near & (image > 0.06) & (image < 0.5) & ~rv & ~lv
    lab, n_lab = label(ring)
    if n_lab:  # the wall is the largest dark piece around the pool
        ring = lab == 1 + int(np.argmax(np.bincount(lab.ravel())[1:]))
    myo = ring | pap
    return {"rv": rv, "lv": lv, "myocardium": myo}


def perfusion_case(
    spokes_per_frame: int = 16,
    coils: int = 12,
    size: int = 128,
    frames: int = 40,
    frame_seconds: float = 1.0,
    breathing_px: float = 1.5,
    breathing_period_s: float = 5.0,
    noise: float = 0.01,
    seed: int = 0,
    with_maps: bool = True,
    image: str | Path | None = None,
    readout_oversampling: float = 2.0,
    kinetics: PerfusionKinetics | None = None,
    gradient_delay: tuple[float, ...] | None = None,
) -> KSpaceData:
    """A first-pass perfusion series on the real cine's diastolic frame (see the module doc).

    One frame per ``frame_seconds`` (a heartbeat, ECG-triggered at the same phase, so the
    heart does not beat within the series); ``breathing_px`` (at 128², scaled with
    ``size``) is the peak head-foot shift of the free-breathing slice, period
    ``breathing_period_s``. ROI masks hold the pixels that are wholly inside their region
    in every frame; the stored curve is the truth's mean magnitude there.
    ``gradient_delay`` as in :func:`cine_case`.
    """
    from scipy.ndimage import gaussian_filter
    from scipy.ndimage import shift as nd_shift

    from ..metrics import roi_curve

    _check(spokes_per_frame, coils, noise)
    if frames < 2 or frame_seconds <= 0:
        raise ValueError(f"need frames >= 2 and frame_seconds > 0, got {frames}, {frame_seconds}")
    cine = load_real_cine(image, size)
    base = cine[0].astype(np.float64)  # end-diastole: largest pools
    regions = segment_heart(base)
    for k, m in regions.items():
        if m.sum() < 4:
            raise InputError(str(find_cine(image)), "data", f"could not segment the {k} region")
    # Partial-volume weights: a slightly blurred membership, the regions exclusive.
    soft = {k: gaussian_filter(m.astype(np.float64), 0.6) for k, m in regions.items()}
    total = sum(soft.values())
    over = np.maximum(total, 1.0)
    soft = {k: v / over for k, v in soft.items()}
    total = sum(soft.values())
    texture = {}
    for k, m in regions.items():
        t = base / max(float(base[m].mean()), 1e-6)
        texture[k] = np.clip(t, 0.4, 1.6)
    kin = kinetics or PerfusionKinetics()
    times = (np.arange(frames) + 0.5) * frame_seconds
    conc = kin.concentrations(times)
    rng = np.random.default_rng(seed)
    phase = np.exp(1j * smooth_phase(size, rng))
    amp = breathing_px * size / 128
    shifts = amp * np.sin(2 * np.pi * times / breathing_period_s + rng.uniform(0, 2 * np.pi))
    series = np.empty((frames, size, size), np.complex64)
    inside = {k: np.ones((size, size), bool) for k in regions}
    for f in range(frames):
        img = _PERFUSION_BACKGROUND * base * (1 - total)
        for k, (b0, g) in _PERFUSION_SIGNAL.items():
            img = img + soft[k] * texture[k] * (b0 + g * conc[k][f])
        # Head-foot is the rows in this slice orientation, to first order.
        img = nd_shift(img, (shifts[f], 0.0), order=3, mode="constant")
        series[f] = np.clip(img, 0, None) * phase
        for k in regions:
            moved = nd_shift(soft[k], (shifts[f], 0.0), order=1, mode="constant")
            inside[k] &= moved >= 0.95
    masks = {}
    for k, m in inside.items():
        if m.sum() < 2:  # a thin wall under a large shift: keep its most central pixels
            moved = regions[k]
            m = moved & (soft[k] >= 0.95)
        masks[k] = m
    extra = {}
    for k in PERFUSION_ROIS:
        extra[f"{ROI_GROUP}/{k}/mask"] = masks[k].astype(np.uint8)
        extra[f"{ROI_GROUP}/{k}/curve"] = roi_curve(series, masks[k]).astype(np.float32)
        extra[f"truth/concentration/{k}"] = conc[k].astype(np.float32)
    maps = loop_array_maps(coils, (size, size), seed=seed)
    attrs = {
        "phantom": "perfusion-real",
        "description": f"first-pass perfusion on the real anatomy of {CINE_SOURCE}; {frames} frames "
        f"{size}x{size}, {frame_seconds:g} s/frame, breathing {breathing_px:g} px, {coils} loop-array "
        f"coils, {spokes_per_frame} golden-angle spokes/frame, noise {noise:g}",
        "source_images": CINE_SOURCE,
        "coil_model": "loop array (Biot-Savart) with smooth random perturbation, RSS-normalised",
        "n_coils_simulated": int(coils),
        "readout_oversampling": float(readout_oversampling),
        "frame_seconds": float(frame_seconds),
        "roi_names": list(PERFUSION_ROIS),
        "simulation": _settings(locals(), perfusion_case),
    }
    return _finish(
        series,
        maps,
        spokes_per_frame,
        noise,
        seed,
        with_maps,
        readout_oversampling,
        attrs,
        extra,
        gradient_delay=gradient_delay,
    )


#: ``dainr simulate`` names of the cases.
REALISTIC_CASES = {"cine-real": cine_case, "perfusion-real": perfusion_case}
