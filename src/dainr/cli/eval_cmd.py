"""``dainr eval``: framewise scores of a reconstruction against a reference."""

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
    p.add_argument("recon", type=Path, help="reconstruction output (.h5 with /recon)")
    p.add_argument(
        "reference", type=Path, help="file with /reference (a simulated k-space file) or /recon"
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
