"""DA-INR design choices compared on a simulated phantom, as a markdown table.

    python benchmarks/dainr_ablation.py [--phantom cardiac|dce|real-cine|real-perfusion] [--size 64] [--frames 16] [--coils 8] [--spokes 13]
        [--steps 1000] [--seeds 0 1] [--variants frame neighbours off finest2048]

Each variant is the default configuration with one change (see VARIANTS; join names
with "+" to combine changes). Scores are
dainr.metrics' robust PSNR (LS-scaled, reference peak), PSNR inside the moving region
and the NRMSE of the deviations from the temporal mean (1.0 = a static series), as
mean over seeds (± half the range when there are several); on the DCE phantom also the
worse of the aorta and portal-vein ROI curves' correlations with the truth. The
gridding baseline is the first row. On a shared machine run it with
OMP_WAIT_POLICY=PASSIVE in the environment (torch is imported before dainr here, so
dainr's own default for it comes too late).
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date

import numpy as np
import torch

import dainr
from dainr.io.h5contract import stored_rois
from dainr.metrics import roi_curve, score_series
from dainr.simulate import SimulationConfig, simulate_phantom

VARIANTS: dict[str, dict] = {
    "default": {},
    "frame": {"features": "frame"},
    "neighbours": {"features": "neighbours"},
    "off": {"features": "off"},
    "b2": {"hash_finest_resolution": None},
    "finest2048": {"hash_finest_resolution": 2048},
    "released-input": {"canonical_input": "released"},
    "paper-input": {"canonical_input": "paper"},
    "hashlr1e-2": {"hash_lr": 1e-2},
    "bf16": {"mlp_precision": "bf16"},
    "hashlr3e-3": {"hash_lr": 3e-3},
    "cosine": {"lr_schedule": "cosine"},
    "cosine-final0.01": {"lr_schedule": "cosine", "lr_final": 0.01},
    "lr2e-3": {"lr": 2e-3},
    "l1-ri": {"loss": "l1-ri"},
    "l2": {"loss": "l2"},
    "c2f": {"coarse_to_fine": 0.5},
    "gain1e-2": {"deform_gain": 1e-2},
    "gain0": {"deform_gain": 0.0},
    "jitter": {"jitter": True},
    "time-input": {"canonical_input": "time"},
    "fps2-500": {"frames_per_step": 2, "steps": 500},
    "ttv": {"frames_per_step": 2, "temporal_tv": 0.01, "steps": 500},
    "steps1500": {"steps": 1500},
    "released": {
        "features": "neighbours",
        "hash_finest_resolution": 2048,
        "canonical_input": "released",
        "deform_width": 128,
    },
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--phantom",
        choices=["cardiac", "dce", "real-cine", "real-perfusion"],
        default="cardiac",
        help="real-cine: the real SAX cine (benchmarks/dainr_cases.py), true birdcage maps; "
        "real-perfusion: dainr.simulate.realistic.perfusion_case (true loop-array maps)",
    )
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--coils", type=int, default=8)
    p.add_argument("--spokes", type=int, default=13)
    p.add_argument("--noise", type=float, default=0.01)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--variants", nargs="+", default=["frame", "neighbours", "off"])
    p.add_argument(
        "--set", nargs="*", default=[], metavar="FIELD=JSON", help="applied to every variant"
    )
    args = p.parse_args(argv)
    import json

    common = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    cfg = SimulationConfig(
        size=args.size,
        frames=args.frames,
        coils=args.coils,
        spokes_per_frame=args.spokes,
        noise=args.noise,
    )
    if args.phantom == "real-cine":
        from dainr_cases import real_cine

        data = real_cine(args.size, args.frames, args.spokes, args.coils, args.noise)
    elif args.phantom == "real-perfusion":
        from dainr.simulate.realistic import perfusion_case

        data = perfusion_case(
            args.spokes, args.coils, args.size, args.frames, noise=args.noise, with_maps=True
        )
    else:
        data = simulate_phantom(args.phantom, cfg)
    ref = data.reference
    rois = stored_rois(data)

    def roi_r(frames: np.ndarray) -> float:
        """The worst correlation of the ROI curves (DCE: aorta, portal vein; perfusion: RV,
        LV, myocardium) with the truth."""
        if not rois:
            return float("nan")
        return min(float(np.corrcoef(roi_curve(frames, m), c)[0, 1]) for m, c in rois.values())

    print(
        f"# {args.phantom} phantom {args.size}x{args.size}, {args.frames} frames, {args.coils} coils, "
        f"{args.spokes} spokes/frame, noise {args.noise}; {args.steps} steps; seeds {args.seeds}; "
        f"{date.today()}, {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; common {common}"
    )
    print()
    print(
        "| variant | robust PSNR dB | motion PSNR dB | temporal NRMSE | paper PSNR dB | SSIM "
        "| ROI r (worst) | s/fit | ms/step |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    gf = dainr.reconstruct(data, "nufft").frames
    g = score_series(gf, ref)
    print(
        f"| gridding (nufft) | {g.robust_psnr_mean:.2f} | {g.motion_psnr:.2f} | {g.temporal_nrmse:.3f} "
        f"| {g.psnr_mean:.2f} | {g.ssim_mean:.3f} | {roi_r(gf):.4f} | | |",
        flush=True,
    )
    for name in args.variants:
        rows = []
        for seed in args.seeds:
            over = {}
            for part in name.split("+"):  # "neighbours+finest2048": both changes
                over |= VARIANTS[part]
            over |= common
            steps = over.pop("steps", args.steps)
            t0 = time.perf_counter()
            r = dainr.reconstruct(data, "dainr", seed=seed, steps=steps, **over)
            s = score_series(r.frames, ref)
            rows.append(
                (
                    s.robust_psnr_mean,
                    s.motion_psnr,
                    s.temporal_nrmse,
                    s.psnr_mean,
                    s.ssim_mean,
                    roi_r(r.frames),
                    time.perf_counter() - t0,
                    1000 * r.seconds / steps,
                )
            )
        a = np.asarray(rows)
        m, h = a.mean(0), (a.max(0) - a.min(0)) / 2

        spread = len(rows) > 1

        def f(i, fmt, m=m, h=h, spread=spread):
            if np.isnan(m[i]):
                return ""
            return f"{m[i]:{fmt}}" + (f" ± {h[i]:{fmt}}" if spread else "")

        print(
            f"| {name} | {f(0, '.2f')} | {f(1, '.2f')} | {f(2, '.3f')} | {f(3, '.2f')} | {f(4, '.3f')} "
            f"| {f(5, '.4f')} | {m[6]:.0f} | {m[7]:.0f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
