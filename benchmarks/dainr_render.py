"""DA-INR's r > 1 and in-between-frame renders scored against truth and simple interpolation.

    python benchmarks/dainr_render.py [--steps N] [--seeds 0 1] [--variants default jitter]
        [--protocols spatial temporal] [--case cine|perfusion] [--frames 25] [--spokes S]

On the real short-axis cine (benchmarks/dainr_cases.py; true coil maps); the spatial
protocol also on the real-anatomy perfusion series (``--case perfusion``: 40 frames,
16 spokes/frame):

* **spatial** (the paper's r = 2 protocol): k-space covering only a 64 x 64 grid's
  extent, made from the 128 x 128 truth; DA-INR fits the 64 x 64 grid and renders at
  r = 2 (``nearest``: the paper's nearest-neighbour deformed coordinates;
  ``continuous``: the representation evaluated at the fine pixel centres; ``fourier``:
  the r = 1 frames upsampled by zero-padding their spectra; ``band+continuous`` /
  ``band+cubic`` (the default): the r = 1 frames' band, and beyond it the
  ``continuous`` render's detail / bicubic interpolation's). Scored
  against the 128 x 128 truth, next to bicubic upsampling of the same fit's r = 1
  frames and the zero-filled gridding (NuFFT adjoint) onto the 128 x 128 grid.
* **temporal** (``--size`` x ``--size``, default 128): every other frame's spokes removed (the even frames are fitted, 13 of
  25); the fit renders the odd frames halfway between, scored against the truth of
  those frames and against linear interpolation of the fit's neighbouring frames.

Scores: dainr.metrics.score_series (robust PSNR, LS-scaled; motion PSNR; temporal
NRMSE), mean over seeds (± half the range).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date

import numpy as np
import torch
from dainr_ablation import VARIANTS

import dainr
from dainr.data import KSpaceData
from dainr.metrics import score_series
from dainr.render import RENDER_COORDS, render
from dainr.resample import cubic_upsample
from dainr.session import FitSpec, build_method


def cubic_up(frames: np.ndarray, factor: int) -> np.ndarray:
    """Bicubic upsampling of complex frames, pixel areas aligned (align_corners=False)."""
    x = torch.from_numpy(np.ascontiguousarray(frames))
    return cubic_upsample(x, x.shape[-2] * factor, x.shape[-1] * factor).numpy()


def fit(data: KSpaceData, seed: int, steps: int | None, over: dict):
    """A DA-INR fit to the end; returns the method (for renders) and the seconds taken."""
    from dainr.loop import run_fit

    steps_over = {} if steps is None else {"steps": steps}
    spec = FitSpec(method="dainr", overrides={**steps_over, **over}, seed=seed)
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    method = build_method(data, spec)
    for _ in run_fit(method):
        pass
    return method, time.perf_counter() - t0


def scores(x: np.ndarray, ref: np.ndarray) -> tuple[float, float, float]:
    s = score_series(x, ref)
    return s.robust_psnr_mean, s.motion_psnr, s.temporal_nrmse


def gridding_fine(data: KSpaceData, truth: np.ndarray, maps_fine: np.ndarray) -> np.ndarray:
    """Zero-filled gridding of the coarse-extent data onto the fine grid."""
    f = truth.shape[1] // data.image_shape[0]
    om = data.trajectory.astype(np.float64) / f  # radians per fine pixel
    off = (f - 1) / 2.0
    ramp = np.exp(-1j * (om[..., 0] + om[..., 1]) * off)  # undo the coarse grid's origin
    fine = KSpaceData(
        kspace=(data.kspace * ramp[None]).astype(np.complex64),
        trajectory=om.astype(np.float32),
        image_shape=truth.shape[1:],
        coil_maps=maps_fine.astype(np.complex64),
        reference=truth,
        attrs={"spokes_per_frame": data.spokes_per_frame},
    )
    return dainr.reconstruct(fine, "nufft").frames


def spatial(args, variants) -> list[tuple[str, list]]:
    from dainr_cases import perfusion_extent, real_cine_extent

    from dainr.simulate.coils import birdcage_maps

    if args.case == "perfusion":
        data, truth = perfusion_extent(2, args.spokes or 16, args.coils, args.noise)
    else:
        data, truth = real_cine_extent(
            128, 2, args.frames, args.spokes or 13, args.coils, args.noise
        )
    rows: dict[str, list] = {}
    rows.setdefault("zero-filled NuFFT at 128²", []).append(
        scores(gridding_fine(data, truth, birdcage_maps(args.coils, (128, 128), 1.5)), truth)
        + (0.0,)
    )
    for name in variants:
        over = {}
        for part in name.split("+"):
            over |= VARIANTS[part]
        for seed in args.seeds:
            m, sec = fit(data, seed, args.steps, over)
            r1 = render(m)
            rows.setdefault(f"{name}: r = 1 fit (64², vs 64² truth)", []).append(
                scores(r1, data.reference) + (sec,)
            )
            rows.setdefault(f"{name}: bicubic of r = 1", []).append(
                scores(cubic_up(r1, 2), truth) + (sec,)
            )
            for mode in RENDER_COORDS:
                x = render(m, upscale=2.0, coords=mode)
                rows.setdefault(f"{name}: r = 2 {mode}", []).append(scores(x, truth) + (sec,))
    return list(rows.items())


def temporal(args, variants) -> list[tuple[str, list]]:
    from dainr_cases import real_cine

    S = args.spokes or 13
    full = real_cine(args.size, args.frames, S, args.coils, args.noise)
    R = full.n_readout
    keep = np.arange(0, args.frames, 2)
    spokes = (keep[:, None] * S + np.arange(S)[None]).reshape(-1)
    data = KSpaceData(
        kspace=full.kspace[:, spokes],
        trajectory=full.trajectory[spokes],
        image_shape=full.image_shape,
        coil_maps=full.coil_maps,
        reference=full.reference[keep],
        attrs={**full.attrs, "spokes_per_frame": S},
    )
    assert data.trajectory.shape[1] == R
    odd = full.reference[1::2]
    mid = np.arange(len(keep) - 1) + 0.5
    rows: dict[str, list] = {}
    for name in variants:
        over = {}
        for part in name.split("+"):
            over |= VARIANTS[part]
        for seed in args.seeds:
            m, sec = fit(data, seed, args.steps, over)
            fitted = render(m)
            rows.setdefault(f"{name}: fitted (even) frames", []).append(
                scores(fitted, data.reference) + (sec,)
            )
            rows.setdefault(f"{name}: in-between rendered", []).append(
                scores(render(m, times=mid), odd) + (sec,)
            )
            lin = 0.5 * (fitted[:-1] + fitted[1:])
            rows.setdefault(f"{name}: linear interpolation of fitted", []).append(
                scores(lin, odd) + (sec,)
            )
    return list(rows.items())


def table(rows: list[tuple[str, list]]) -> None:
    print("| render | robust PSNR dB | motion PSNR dB | temporal NRMSE | s/fit |")
    print("|---|---|---|---|---|")
    for name, vals in rows:
        a = np.asarray(vals)
        m, h = a.mean(0), (a.max(0) - a.min(0)) / 2
        pm = len(vals) > 1

        def f(i, fmt, m=m, h=h, pm=pm):
            return f"{m[i]:{fmt}}" + (f" ± {h[i]:{fmt}}" if pm else "")

        t = f"{m[3]:.0f}" if m[3] else ""
        print(f"| {name} | {f(0, '.2f')} | {f(1, '.2f')} | {f(2, '.3f')} | {t} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--protocols", nargs="+", default=["spatial", "temporal"])
    p.add_argument("--frames", type=int, default=25)
    p.add_argument("--size", type=int, default=128, help="temporal protocol's matrix")
    p.add_argument("--coils", type=int, default=12)
    p.add_argument("--spokes", type=int, default=None, help="default: 13 (cine), 16 (perfusion)")
    p.add_argument(
        "--case", choices=["cine", "perfusion"], default="cine", help="spatial protocol's series"
    )
    p.add_argument("--noise", type=float, default=0.01)
    p.add_argument("--steps", type=int, default=None, help="default: DA-INR's")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--variants", nargs="+", default=["default"])
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=JSON")
    args = p.parse_args(argv)
    common = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    VARIANTS["default"] = dict(common)
    for k in list(VARIANTS):
        VARIANTS[k] = {**VARIANTS[k], **common} if k != "default" else VARIANTS[k]
    print(
        f"# {args.case} (spatial), real cine (temporal), {args.frames} frames, {args.coils} coils, "
        f"{args.spokes or 'default'} spokes/frame, "
        f"noise {args.noise}; {args.steps or 'default'} steps; seeds {args.seeds}; {date.today()}, "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads; "
        f"common {common}"
    )
    for proto in args.protocols:
        print(f"\n## {proto}\n")
        table(spatial(args, args.variants) if proto == "spatial" else temporal(args, args.variants))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
