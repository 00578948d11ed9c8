"""A retrospective experiment: a phantom or a user's image series -> a contract k-space file."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import ROI_GROUP, KSpaceData
from ..errors import InputError
from .acquire import acquire_series
from .coils import birdcage_maps
from .phantoms import cardiac_phantom, dce_phantom

log = logging.getLogger(__name__)

PHANTOMS = ("cardiac", "dce")
#: Per phantom: frames when none are asked for, and the paper's spokes per frame
#: (cardiac: 13, AF 9.8, the middle of the three; DCE: 34, AF 11.3).
PHANTOM_DEFAULTS = {
    "cardiac": {"frames": 24, "spokes_per_frame": 13},
    "dce": {"frames": 16, "spokes_per_frame": 34},
}
#: Spokes per frame for a user's series when none is asked for: the paper's cardiac middle case.
IMAGES_SPOKES_PER_FRAME = 13


@dataclass(frozen=True)
class SimulationConfig:
    """How a series is acquired; ``None`` fields take the phantom's default."""

    size: int | None = None  #: matrix n x n; None: 128 for phantoms, the images' own size
    frames: int | None = None  #: None: cardiac 24 (a cine's one beat), dce 16, all of a user's
    coils: int = 8  #: birdcage coils; 8 keeps files small (the paper's data had 12-32)
    spokes_per_frame: int | None = None  #: None: cardiac 13, dce 34 (the paper's), images 13
    readout_oversampling: float = 2.0  #: samples per spoke / matrix, the usual two-fold
    noise: float = 0.01  #: complex Gaussian noise std relative to the RMS of the samples
    seed: int = 0  #: phantom texture/phase and noise
    coil_radius: float = 1.5  #: coil ring radius in half-FOVs (see birdcage_maps)
    coil_maps_in_file: bool = True  #: store /coil_maps (False: reconstructions estimate them)
    frame_seconds: float = 4.0  #: DCE only: acquisition time of one frame (see dce_phantom)
    #: radial gradient delays (s_x, s_y[, s_xy]) in samples (see dainr.physics.delays);
    #: None: none
    gradient_delay: tuple[float, ...] | None = None


def _acquire(
    frames: np.ndarray, cfg: SimulationConfig, spf: int, attrs: dict, extra: dict | None = None
) -> KSpaceData:
    F, ny, nx = frames.shape
    if cfg.coils < 1 or spf < 1 or cfg.readout_oversampling <= 0 or cfg.noise < 0:
        raise ValueError(
            f"need coils >= 1, spokes per frame >= 1, readout oversampling > 0 and noise >= 0; got "
            f"{cfg.coils}, {spf}, {cfg.readout_oversampling}, {cfg.noise}"
        )
    maps = birdcage_maps(cfg.coils, (ny, nx), radius=cfg.coil_radius)
    settings = dataclasses.asdict(cfg)
    if cfg.gradient_delay is None:  # files without delays record what they always did
        del settings["gradient_delay"]
    a = {
        "readout_oversampling": float(cfg.readout_oversampling),
        "n_coils_simulated": int(cfg.coils),
        "coil_model": f"birdcage ring radius {cfg.coil_radius:g} half-FOVs, RSS-normalised",
        "simulation": settings,
        **attrs,
    }
    data = acquire_series(
        frames,
        maps,
        spf,
        cfg.readout_oversampling,
        cfg.noise,
        cfg.seed,
        attrs=a,
        extra=extra,
        gradient_delay=cfg.gradient_delay,
    )
    if not cfg.coil_maps_in_file:
        data.coil_maps = None
    log.info(
        "simulated %d coils x %d spokes x %d samples", data.n_coils, data.n_spokes, data.n_readout
    )
    return data


def simulate_phantom(name: str, cfg: SimulationConfig = SimulationConfig()) -> KSpaceData:
    """Acquire a built-in phantom (``cardiac`` or ``dce``); DCE files carry their ROIs."""
    if name not in PHANTOMS:
        raise ValueError(f"unknown phantom {name!r}: expected one of {', '.join(PHANTOMS)}")
    d = PHANTOM_DEFAULTS[name]
    n = cfg.size or 128
    F = cfg.frames or d["frames"]
    spf = cfg.spokes_per_frame or d["spokes_per_frame"]
    what = f"{F} frames {n}x{n}, {cfg.coils} birdcage coils, {spf} golden-angle spokes/frame, noise {cfg.noise:g}"
    if name == "cardiac":
        frames = cardiac_phantom(n, F, cfg.seed)
        attrs = {
            "phantom": "cardiac",
            "description": f"simulated cardiac cine phantom (one beat): {what}",
        }
        return _acquire(frames, cfg, spf, attrs)
    ph = dce_phantom(n, F, cfg.seed, frame_seconds=cfg.frame_seconds)
    extra = {}
    for roi in ph.masks:
        extra[f"{ROI_GROUP}/{roi}/mask"] = ph.masks[roi].astype(np.uint8)
        extra[f"{ROI_GROUP}/{roi}/curve"] = ph.curves[roi].astype(np.float32)
    attrs = {
        "phantom": "dce",
        "description": f"simulated DCE abdomen phantom: {what}, {cfg.frame_seconds:g} s/frame",
        "frame_seconds": float(cfg.frame_seconds),
        "roi_names": list(ph.masks),
    }
    return _acquire(ph.frames, cfg, spf, attrs, extra)


def _resize(frames: np.ndarray, size: int) -> np.ndarray:
    """Scale so that the longer side is ``size`` (cubic spline, real and imaginary parts apart)."""
    from scipy.ndimage import zoom

    F, ny, nx = frames.shape
    z = size / max(ny, nx)
    if z == 1:
        return frames
    parts = [frames.real] + ([frames.imag] if np.iscomplexobj(frames) else [])
    out = [np.stack([zoom(p[f].astype(np.float64), z, order=3) for f in range(F)]) for p in parts]
    res = out[0] + 1j * out[1] if len(out) == 2 else out[0]
    return res.astype(np.complex64 if np.iscomplexobj(frames) else np.float32)


#: Dataset names tried, in order, in a user's ``.h5`` when none is named.
IMAGE_DATASETS = ("reference", "recon", "images", "frames", "data")


def load_image_series(path: str | Path, dataset: str | None = None) -> np.ndarray:
    """``[F, ny, nx]`` magnitude or complex frames from ``.npy`` or ``.h5`` (a 2-D image is one frame)."""
    from ..data import check_array

    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise InputError(path, None, f"not a readable .npy array ({e})") from None
        name = "array"
    elif suffix in (".h5", ".hdf5"):
        a, name = _load_h5_images(path, dataset)
    else:
        raise InputError(
            path, None, f"unsupported image series type {path.suffix!r}: expected .npy or .h5"
        )
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[None]
    frames = check_array(a, path, name, ndim=3, kind="any")
    if min(frames.shape[1:]) < 8:
        raise InputError(
            path,
            name,
            f"expected frames [F, ny, nx] of at least 8 x 8 pixels, got shape {frames.shape}",
        )
    return frames


def _load_h5_images(path: Path, dataset: str | None) -> tuple[np.ndarray, str]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            names: list[str] = []
            f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
            if dataset is not None:
                key = dataset.strip("/")
                if key not in names:
                    raise InputError(
                        path,
                        f"/{key}",
                        f"missing dataset (the file has {', '.join('/' + n for n in names) or 'none'})",
                    )
            else:
                found = [n for n in IMAGE_DATASETS if n in names]
                three_d = [n for n in names if f[n].ndim == 3]
                if found:
                    key = found[0]
                elif len(three_d) == 1:
                    key = three_d[0]
                else:
                    raise InputError(
                        path,
                        None,
                        f"no image series found: expected one of {', '.join('/' + n for n in IMAGE_DATASETS)} "
                        f"or a single 3-D dataset [F, ny, nx] (name it with --dataset)",
                    )
            ds = f[key]
            if ds.size > 2**28:
                raise InputError(
                    path, f"/{key}", f"declared size {ds.shape} is too large for an image series"
                )
            return ds[()], f"/{key}"
    except OSError as e:
        raise InputError(path, None, f"not a readable HDF5 file ({e.__class__.__name__})") from None


def simulate_images(
    frames: np.ndarray, cfg: SimulationConfig = SimulationConfig(), source: str = "array"
) -> KSpaceData:
    """Acquire a user's series ``[F, ny, nx]`` (``cfg.size`` rescales, ``cfg.frames`` keeps the first F)."""
    frames = np.asarray(frames)
    if cfg.frames is not None:
        if cfg.frames > frames.shape[0]:
            raise InputError(
                source, None, f"asked for {cfg.frames} frames, the series has {frames.shape[0]}"
            )
        frames = frames[: cfg.frames]
    if cfg.size is not None:
        frames = _resize(frames, cfg.size)
    spf = cfg.spokes_per_frame or IMAGES_SPOKES_PER_FRAME
    F, ny, nx = frames.shape
    kind = "complex" if np.iscomplexobj(frames) else "magnitude"
    attrs = {
        "phantom": "images",
        "source_images": str(source),
        "description": f"retrospectively sampled {kind} series {Path(str(source)).name}: {F} frames {ny}x{nx}, "
        f"{cfg.coils} birdcage coils, {spf} golden-angle spokes/frame, noise {cfg.noise:g}",
    }
    return _acquire(frames, cfg, spf, attrs)
