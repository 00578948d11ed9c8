"""``dainr eval``: scores of a reconstruction against a reference, or of several
reconstructions of one file against the spokes they held out (no ground truth needed)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..errors import InputError


def register(sub) -> None:
    p = sub.add_parser(
        "eval", help="score a reconstruction against a reference", description=__doc__
    )
    p.add_argument(
        "files",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="RECON REFERENCE: a reconstruction output and a file with /reference (a "
        "simulated k-space file) or /recon; with --data: RECON [RECON ...]",
    )
    p.add_argument(
        "--data",
        type=Path,
        metavar="KSPACE",
        help="score each reconstruction by the spokes it held out of KSPACE (fits made with "
        "the same --holdout and --seed): no reference needed",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def load_reference(path: Path) -> np.ndarray:
    import h5py

    from ..data import check_array

    if not path.exists():
        raise InputError(path, None, "no such file")
    try:
        with h5py.File(path, "r") as f:
            for name in ("reference", "recon"):
                if name in f:
                    return check_array(f[name][()], path, f"/{name}", ndim=3, kind="any")
    except OSError as e:
        raise InputError(path, None, f"not a readable HDF5 file ({e})") from None
    raise InputError(path, "/reference", "missing dataset: no reference series in this file")


def run(args: argparse.Namespace) -> int:
    if args.data is not None:
        return run_heldout(args)
    if len(args.files) != 2:
        raise ValueError(
            "dainr eval RECON REFERENCE (or RECON [RECON ...] --data KSPACE without a reference)"
        )
    args.recon, args.reference = args.files
    return run_reference(args)


def run_heldout(args: argparse.Namespace) -> int:
    from ..evaluate import heldout_scores
    from ..io import load_kspace

    scores = heldout_scores(list(args.files), load_kspace(args.data))
    if args.json:
        rows = [
            {"file": str(p), "method": s.method, "error": s.error, "weighted": s.weighted}
            for p, s in zip(args.files, scores)
        ]
        print(json.dumps(rows, indent=2))
        return 0
    print(f"held-out spokes of {args.data} ({scores[0].samples} samples per coil)")
    print(f"{'file':<36}{'method':<10}{'error':>10}{'weighted':>10}")
    for p, s in sorted(zip(args.files, scores), key=lambda ps: ps[1].weighted):
        print(f"{p.name:<36}{s.method:<10}{s.error:>10.4f}{s.weighted:>10.4f}")
    return 0


def run_reference(args: argparse.Namespace) -> int:
    from ..io import read_recon_h5
    from ..metrics import score_series

    rec = read_recon_h5(args.recon)
    ref = load_reference(args.reference)
    x = rec.frames
    if x.shape[0] > ref.shape[0]:
        x = x[: ref.shape[0]]
    if x.shape != ref.shape:
        raise InputError(
            args.recon,
            "/recon",
            f"shape {rec.frames.shape} does not match the reference {ref.shape}",
        )
    s = score_series(x, ref)
    if args.json:
        print(json.dumps({"method": rec.method, **s.as_dict()}, indent=2))
        return 0
    print(f"{'score':<24}{'value':>18}")
    print(f"{'PSNR (paper, dB)':<24}{s.psnr_mean:>10.2f} ± {s.psnr_std:.2f}")
    print(f"{'SSIM (paper)':<24}{s.ssim_mean:>10.4f} ± {s.ssim_std:.4f}")
    print(f"{'robust PSNR (dB)':<24}{s.robust_psnr_mean:>10.2f} ± {s.robust_psnr_std:.2f}")
    print(f"{'motion PSNR (dB)':<24}{s.motion_psnr:>10.2f}")
    print(f"{'temporal NRMSE':<24}{s.temporal_nrmse:>10.4f}")
    print(f"{'frames':<24}{s.n_frames:>10d}")
    return 0
