"""Coil maps and GRASP against BART on the real-anatomy cases.

    python benchmarks/realistic_cases.py maps  [--cases cine13 ...]   # estimators vs true maps
    python benchmarks/realistic_cases.py grasp [--cases cine13 ...] [--lambdas ...] [--bart]

Cases (``dainr.simulate.realistic``, seed 0, 12 loop-array coils, noise 0.01):
``cine5``, ``cine13``, ``cine21`` -- the real cine sax_cine_data25.mat (MIT,
github.com/yhao-z/GIRAF-3d-fast) at 5/13/21 spokes per frame, 128², 25 frames;
``perf16`` -- the real-anatomy first-pass perfusion, 40 frames, 16 spokes per frame.

``maps`` runs GRASP at its defaults with the true maps, the ESPIRiT estimate (default)
and the older ratio estimate, plus the maps' own mismatch (energy of the coil images no
image explains with the estimated maps). ``grasp`` sweeps GRASP's ``lambda_scale`` (and
BART's ``pics`` lambda with ``--bart``, see bart_reference.py) with the given maps.
Scores: ``dainr.metrics.score_series`` (robust PSNR, motion PSNR, temporal NRMSE).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

CASES = {
    "cine5": ("cine-real", 5),
    "cine13": ("cine-real", 13),
    "cine21": ("cine-real", 21),
    "perf16": ("perfusion-real", 16),
}


def make(case: str):
    from bart_reference import make_case

    name, spokes = CASES[case]
    return make_case(name, spokes), spokes


def mismatch(est: np.ndarray, true: np.ndarray, ref: np.ndarray) -> float:
    """Energy fraction of the true coil images outside the estimated maps' span."""
    mag = np.abs(ref).mean(0)
    inner = np.abs((est.conj() * true).sum(0)) ** 2
    return float(((1 - inner) * mag**2).sum() / (mag**2).sum())


def grasp(data, spokes: int, maps: np.ndarray, **overrides) -> dict:
    import dainr
    from dainr.metrics import score_series

    t = time.perf_counter()
    # All spokes (no held-out ones): the same data BART gets.
    rec = dainr.reconstruct(
        data, "grasp", coil_maps=maps, spokes_per_frame=spokes, holdout=0.0, **overrides
    )
    s = score_series(rec.frames, data.reference)
    return {**s.as_dict(), "seconds": time.perf_counter() - t, "overrides": overrides}


def line(tag: str, r: dict) -> str:
    return (
        f"{tag:42} robust {r['robust_psnr_mean']:6.2f} dB  motion {r['motion_psnr']:6.2f} dB  "
        f"t-NRMSE {r['temporal_nrmse']:.3f}  {r['seconds']:6.1f} s"
    )


def run_maps(cases: list[str]) -> list[dict]:
    from bart_reference import case_maps

    out = []
    for case in cases:
        data, spokes = make(case)
        true = case_maps(data, "true")
        for which in ("true", "espirit", "ratio"):
            t = time.perf_counter()
            maps = case_maps(data, which)
            est_s = time.perf_counter() - t
            r = grasp(data, spokes, maps)
            r |= {
                "case": case,
                "maps": which,
                "estimate_seconds": est_s,
                "mismatch": mismatch(maps, true, data.reference),
            }
            print(
                line(f"{case} GRASP default, {which} maps (mismatch {r['mismatch']:.1e})", r),
                flush=True,
            )
            out.append(r)
    return out


def run_grasp(
    cases: list[str],
    maps_kind: str,
    lambdas: list[float],
    bart: bool,
    bart_lambdas: list[float],
    overrides: dict,
) -> list[dict]:
    from bart_reference import case_maps, have_bart, sweep

    out = []
    for case in cases:
        data, spokes = make(case)
        maps = case_maps(data, maps_kind)
        for lam in lambdas:
            r = grasp(data, spokes, maps, lambda_scale=lam, **overrides)
            r |= {"case": case, "maps": maps_kind, "method": "grasp", "lambda": lam}
            print(line(f"{case} GRASP lambda_scale {lam:g} ({maps_kind} maps)", r), flush=True)
            out.append(r)
        if bart and have_bart():
            for r in sweep(data, spokes, maps, bart_lambdas):
                r.pop("frames")
                r |= {"case": case, "maps": maps_kind, "method": "bart"}
                print(
                    line(f"{case} BART pics lambda {r['lambda']:g} ({maps_kind} maps)", r),
                    flush=True,
                )
                out.append(r)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("what", choices=("maps", "grasp"))
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--maps", default="true", choices=("true", "espirit", "ratio"))
    ap.add_argument("--lambdas", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    ap.add_argument("--bart", action="store_true", help="also BART pics (needs bart on PATH)")
    ap.add_argument("--bart-lambdas", type=float, nargs="+", default=[0.001, 0.003, 0.01])
    ap.add_argument("--set", nargs="*", default=[], help="GRASP config overrides key=value")
    ap.add_argument("--json", help="write every number here")
    args = ap.parse_args(argv)
    from dainr.config import parse_assignments
    from dainr.methods.grasp import GraspConfig

    overrides = parse_assignments(GraspConfig, args.set) if args.set else {}
    import torch

    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')} {platform.node()}, {os.cpu_count()} CPUs "
        f"(shared: timings noisy), torch {torch.__version__}"
    )
    if args.what == "maps":
        rows = run_maps(args.cases)
    else:
        rows = run_grasp(
            args.cases, args.maps, args.lambdas, args.bart, args.bart_lambdas, overrides
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
