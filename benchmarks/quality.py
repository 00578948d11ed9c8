"""The paper's Table 1 and Table 2, and its DCE ROI-curve comparison, on simulated data.

    python benchmarks/quality.py [--quick] [--json out.json] [--methods nufft grasp ...]

* **Table 1** (cardiac cine phantom, 21, 13 and 5 spokes per frame): the paper's
  framewise PSNR and SSIM (each frame min-max normalised, mean ± std over frames), and
  the scores that also judge motion (robust PSNR, PSNR inside the moving region,
  NRMSE of the deviations from the temporal mean).
* **Table 2**: wall time and peak memory of every fit (CPU RSS of the fitting process;
  the CUDA allocator's peak on a GPU), cardiac at 13 spokes and DCE.
* **DCE** (abdomen phantom, 34 spokes per frame): each method's aorta (AO) and portal
  vein (PV) ROI curves against the phantom's known curves: Pearson correlation and
  NRMSE after a least-squares intensity scale (reconstructions have arbitrary units).

* **Outside reference**: when ``bart`` is on PATH (a benchmark tool, never a dainr
  dependency), BART's ``pics`` with temporal TV and the phantom's true maps, best of a
  small lambda sweep (``--no-bart`` skips it; see bart_reference.py).

Every fit runs in a fresh process (``--no-isolate`` to run in this one), so that the
peak RSS is that method's own. ``--quick`` runs 64 x 64, 12 frames, and reduced step
counts (about 20 minutes on 2 CPU cores); without it the phantoms are 128 x 128 with
24 frames (16 for DCE) and every method runs its published defaults (hours on a CPU;
meant for a GPU).
Methods not installed yet are skipped.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from datetime import datetime

import numpy as np

METHODS = ("nufft", "grasp", "tddip", "hashinr", "dainr")
LABELS = {
    "nufft": "NuFFT",
    "grasp": "GRASP",
    "tddip": "TD-DIP",
    "hashinr": "HashINR",
    "dainr": "DA-INR",
}
#: Config overrides of --quick: fewer steps, and DA-INR's 2^19-row hash table for HashINR
#: (its published 2^24 rows per level take ~6 GB with Adam's state). GRASP is fast as
#: published. Measured at 64 x 64, 13 spokes (2026-11-26, 2 shared CPU cores): TD-DIP gains
#: +6.7 dB robust PSNR over gridding at 600 steps (+10.3 dB at 1500); HashINR +6.3 dB at 240
#: (+7.6 dB at 480): both are still far from converged at these counts.
QUICK_OVERRIDES = {
    "tddip": {"steps": 600},
    "hashinr": {"steps": 240, "hash_log2_size": 19},
    "dainr": {"steps": 300},
}
QUICK_DATA = {"size": 64, "frames": 12, "dce_frames": 12}
FULL_DATA = {"size": 128, "frames": 24, "dce_frames": 16}
#: The paper's Table 1 (PSNR dB, SSIM; mean over frames), keyed by spokes per frame.
PAPER_TABLE1 = {
    5: {"nufft": (21.58, 0.3809), "grasp": (27.95, 0.8410), "tddip": (28.73, 0.8608),
        "hashinr": (24.01, 0.6226), "dainr": (29.48, 0.8702)},
    13: {"nufft": (25.08, 0.5250), "grasp": (28.77, 0.8558), "tddip": (28.86, 0.8714),
         "hashinr": (26.68, 0.7643), "dainr": (30.09, 0.8805)},
}  # fmt: skip
#: The paper's Table 2 on an RTX 4090: (seconds, GB) cardiac 13 spokes, DCE 34 spokes.
PAPER_TABLE2 = {
    "nufft": ((13.36, 0.7), (18.96, 0.7)), "grasp": ((146.40, 2.7), (423.24, 11.6)),
    "tddip": ((14164.31, 1.6), (38581, 2.4)), "hashinr": ((10484.32, 10.1), (58088, 7.6)),
    "dainr": ((1445.50, 3.5), (8329.55, 5.4)),
}  # fmt: skip
DCE_ROIS = ("aorta", "portal_vein")


def available(methods: list[str]) -> list[str]:
    """Methods whose module imports and defines METHOD (others are being written)."""
    from dainr.methods import get_method

    out = []
    for m in methods:
        try:
            get_method(m)
        except (ValueError, AttributeError, ImportError) as e:
            print(f"# skipping {m}: {e}", file=sys.stderr)
            continue
        out.append(m)
    return out


def curve_scores(curve: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Pearson r and NRMSE (after the least-squares scale) of an ROI curve."""
    c, t = np.asarray(curve, np.float64), np.asarray(truth, np.float64)
    r = float(np.corrcoef(c, t)[0, 1]) if c.std() > 0 and t.std() > 0 else float("nan")
    a = float((c * t).sum() / (c * c).sum()) if (c * c).sum() > 0 else 0.0
    nrmse = float(np.sqrt(np.mean((a * c - t) ** 2)) / np.sqrt(np.mean(t**2)))
    return {"r": r, "nrmse": nrmse}


def fit_case(method: str, data, overrides: dict, device: str, seed: int) -> dict:
    """One fit and its scores; runs in a worker process when isolated."""
    import dainr
    from dainr.io import stored_rois
    from dainr.metrics import roi_curve, score_series

    rec = dainr.reconstruct(data, method, device=device, seed=seed, **overrides)
    out = {
        "seconds": rec.seconds,
        "peak_memory_bytes": rec.peak_memory_bytes,
        "steps_done": rec.steps_done,
        "scores": score_series(rec.frames, data.reference).as_dict(),
    }
    rois = stored_rois(data)
    if rois:
        out["rois"] = {}
        for name, (mask, truth) in rois.items():
            curve = roi_curve(rec.frames, mask)
            entry = {"curve": curve.tolist()}
            if truth is not None:
                entry |= curve_scores(curve, truth[: len(curve)])
            out["rois"][name] = entry
    return out


def run(method: str, data, overrides: dict, device: str, seed: int, isolate: bool) -> dict:
    if not isolate:
        return fit_case(method, data, overrides, device, seed)
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fit_case, (method, data, overrides, device, seed))


def cardiac_data(spokes: int, size: int, frames: int, coils: int, seed: int):
    from dainr.simulate import SimulationConfig, simulate_phantom

    cfg = SimulationConfig(
        size=size, frames=frames, coils=coils, spokes_per_frame=spokes, seed=seed
    )
    return simulate_phantom("cardiac", cfg)


def dce_data(spokes: int, size: int, frames: int, coils: int, seed: int):
    from dainr.simulate import SimulationConfig, simulate_phantom

    cfg = SimulationConfig(
        size=size, frames=frames, coils=coils, spokes_per_frame=spokes, seed=seed
    )
    return simulate_phantom("dce", cfg)


#: BART pics lambdas swept for the outside reference (its best is reported).
BART_LAMBDAS = (0.001, 0.003, 0.01)


def bart_reference_rows(spokes_list: list[int], size: int, frames: int, args) -> list[dict]:
    """BART's ``pics`` temporal TV with the file's (true) maps, best of a small lambda sweep.

    Optional: runs only when ``bart`` is on PATH (benchmarks/bart_reference.py); it is
    the model GRASP solves, by a solver from outside this project.
    """
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bart_reference import have_bart, sweep

    if not have_bart():
        print("# bart not on PATH: no outside reference", file=sys.stderr)
        return []
    rows = []
    for spokes in spokes_list:
        data = cardiac_data(spokes, size, frames, args.coils, args.seed)
        runs = sweep(data, spokes, data.coil_maps, BART_LAMBDAS)
        for r in runs:
            r.pop("frames")
        best = max(runs, key=lambda r: r["robust_psnr_mean"])
        rows.append({"spokes": spokes, "best": best, "sweep": runs})
        print(
            f"# cardiac {spokes:>2} spokes BART pics (lambda {best['lambda']:g} best of "
            f"{', '.join(f'{v:g}' for v in BART_LAMBDAS)}) robust PSNR "
            f"{best['robust_psnr_mean']:.2f} dB, motion {best['motion_psnr']:.2f} dB, "
            f"t-NRMSE {best['temporal_nrmse']:.3f} in {best['seconds']:.1f} s",
            flush=True,
        )
    return rows


def _pm(mean: float, std: float, digits: int) -> str:
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def print_table1(rows: list[dict], size: int) -> None:
    print("\nTable 1 — cardiac cine phantom (paper's PSNR/SSIM: frames min-max normalised)")
    head = (
        f"{'method':8} {'spokes':>6} {'AF=N/S':>6}  {'PSNR dB':>14} {'SSIM':>16}  {'robust':>7} "
        f"{'motion':>7} {'t-NRMSE':>7}  {'paper PSNR/SSIM':>16}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        s = r["scores"]
        paper = PAPER_TABLE1.get(r["spokes"], {}).get(r["method"])
        ptxt = f"{paper[0]:.2f}/{paper[1]:.3f}" if paper else "—"
        print(
            f"{LABELS[r['method']]:8} {r['spokes']:>6} {size / r['spokes']:>6.1f}  "
            f"{_pm(s['psnr_mean'], s['psnr_std'], 2):>14} "
            f"{_pm(s['ssim_mean'], s['ssim_std'], 3):>16}  "
            f"{s['robust_psnr_mean']:>7.2f} {s['motion_psnr']:>7.2f} "
            f"{s['temporal_nrmse']:>7.3f}  {ptxt:>16}"
        )


def print_table2(cardiac: list[dict], dce: list[dict]) -> None:
    print("\nTable 2 — wall time and peak memory (this machine), paper's RTX 4090 beside")
    head = (
        f"{'method':8} {'cardiac s':>10} {'GB':>6} {'DCE s':>10} {'GB':>6}   "
        f"{'paper cardiac':>15} {'paper DCE':>15}"
    )
    print(head)
    print("-" * len(head))
    by_dce = {r["method"]: r for r in dce}
    for r in cardiac:
        m = r["method"]
        d = by_dce.get(m)
        dtxt = (
            f"{d['seconds']:>10.1f} {d['peak_memory_bytes'] / 1e9:>6.2f}"
            if d
            else f"{'—':>10} {'—':>6}"
        )
        (pc, pm), (dc, dm) = PAPER_TABLE2[m]
        print(
            f"{LABELS[m]:8} {r['seconds']:>10.1f} {r['peak_memory_bytes'] / 1e9:>6.2f} {dtxt}   "
            f"{f'{pc:.0f} s {pm} GB':>15} {f'{dc:.0f} s {dm} GB':>15}"
        )


def print_dce(rows: list[dict], spokes: int) -> None:
    print(f"\nDCE phantom, {spokes} spokes/frame — ROI curves against the known curves")
    head = (
        f"{'method':8} {'AO r':>7} {'AO NRMSE':>9} {'PV r':>7} {'PV NRMSE':>9}  "
        f"{'robust PSNR':>11} {'t-NRMSE':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        ao, pv = r["rois"]["aorta"], r["rois"]["portal_vein"]
        print(
            f"{LABELS[r['method']]:8} {ao['r']:>7.3f} {ao['nrmse']:>9.3f} "
            f"{pv['r']:>7.3f} {pv['nrmse']:>9.3f}  "
            f"{r['scores']['robust_psnr_mean']:>11.2f} {r['scores']['temporal_nrmse']:>7.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick", action="store_true", help="64 x 64, 12 frames, reduced steps (minutes on a CPU)"
    )
    p.add_argument(
        "--json", metavar="PATH", help="also write every number (and the curves) as JSON"
    )
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument(
        "--spokes", nargs="+", type=int, default=[21, 13, 5], help="cardiac spokes per frame"
    )
    p.add_argument("--dce-spokes", type=int, default=34, help="DCE spokes per frame (paper: 34)")
    p.add_argument("--no-dce", action="store_true", help="skip the DCE section")
    p.add_argument("--size", type=int, help="matrix size (default 64 quick, 128 full)")
    p.add_argument("--frames", type=int, help="cardiac frames (default 12 quick, 24 full)")
    p.add_argument("--coils", type=int, default=8)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--no-bart",
        action="store_true",
        help="skip BART's pics temporal TV, the outside reference run when bart is on PATH",
    )
    p.add_argument(
        "--no-isolate",
        action="store_true",
        help="fit in this process (peak memory then accumulates)",
    )
    args = p.parse_args(argv)

    import torch

    from dainr.prepare import resolve_device

    methods = available(args.methods)
    base = QUICK_DATA if args.quick else FULL_DATA
    size = args.size or base["size"]
    frames = args.frames or base["frames"]
    device = str(resolve_device(args.device))
    isolate = not args.no_isolate
    overrides = {m: (QUICK_OVERRIDES.get(m, {}) if args.quick else {}) for m in methods}
    when = datetime.now().isoformat(timespec="seconds")
    cpu = platform.processor() or platform.machine()
    machine = f"{platform.node()} {cpu}, {os.cpu_count()} CPUs, torch {torch.__version__}, {device}"
    if device.startswith("cuda"):
        machine += f" ({torch.cuda.get_device_name(0)})"
    print(f"# {when} on {machine}")
    print(
        f"# {'quick' if args.quick else 'published defaults'}: {size}x{size}, "
        f"{frames} cardiac frames, {args.coils} coils, seed {args.seed}"
    )
    for m in methods:
        if overrides[m]:
            print(f"#   {m}: {overrides[m]}")

    cardiac_rows = []
    for spokes in args.spokes:
        data = cardiac_data(spokes, size, frames, args.coils, args.seed)
        for m in methods:
            t = time.perf_counter()
            r = run(m, data, overrides[m], device, args.seed, isolate)
            r |= {"method": m, "spokes": spokes}
            cardiac_rows.append(r)
            print(
                f"# cardiac {spokes:>2} spokes {m:8} "
                f"robust PSNR {r['scores']['robust_psnr_mean']:.2f} dB "
                f"in {r['seconds']:.1f} s ({time.perf_counter() - t:.0f} s with set-up)",
                flush=True,
            )
    bart_rows = [] if args.no_bart else bart_reference_rows(args.spokes, size, frames, args)
    dce_rows = []
    if not args.no_dce:
        data = dce_data(args.dce_spokes, size, base["dce_frames"], args.coils, args.seed)
        for m in methods:
            r = run(m, data, overrides[m], device, args.seed, isolate)
            r |= {"method": m, "spokes": args.dce_spokes}
            dce_rows.append(r)
            print(
                f"# DCE {m:8} AO r {r['rois']['aorta']['r']:.3f} in {r['seconds']:.1f} s",
                flush=True,
            )

    print_table1(cardiac_rows, size)
    t2_spokes = 13 if 13 in args.spokes else args.spokes[0]
    print_table2([r for r in cardiac_rows if r["spokes"] == t2_spokes], dce_rows)
    if dce_rows:
        print_dce(dce_rows, args.dce_spokes)
    if args.json:
        out = {
            "date": when,
            "machine": machine,
            "quick": args.quick,
            "data": {
                "size": size,
                "frames": frames,
                "dce_frames": base["dce_frames"],
                "coils": args.coils,
                "seed": args.seed,
            },
            "overrides": overrides,
            "cardiac": cardiac_rows,
            "bart": bart_rows,
            "dce": dce_rows,
            "paper": {
                "table1": {str(k): v for k, v in PAPER_TABLE1.items()},
                "table2": PAPER_TABLE2,
            },
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"\n# wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
