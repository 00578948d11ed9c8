"""BART's ``pics`` with temporal total variation: the outside reference for GRASP.

    python benchmarks/bart_reference.py --case cine-real --spokes 13 [--lambdas 0.003 0.01]
                                        [--maps true|espirit|ratio] [--iters 30] [--check]

BART (https://mrirecon.github.io/bart, v0.8 from apt, ``bart`` on PATH) is never a
runtime dependency of dainr: this module talks to the ``bart`` executable through its
.cfl/.hdr files, written here with numpy. :func:`bart_pics` solves

    min_x ||A x - y||^2 + lambda TV_t(x)          (bart pics -S -i 30 -R T:1024:0:lambda)

with the time axis in BART's dimension 10 and the given coil maps: the model of our
GRASP (same maps; BART's data term has no density weighting, and BART scales the data
by its own rule before applying lambda, so lambdas of the two are not comparable).

Conventions, checked by ``--check`` (BART's forward NUFFT against dainr's operator on
the case's own trajectory): BART's image dims 0, 1 are our rows (y) and columns (x);
its trajectory ``[3, readout, spokes, ..., frames]`` is ours (rad/pixel, (y, x)) times
``n / 2 pi``; its NUFFT has our sign and centre (pixel n/2) and a 1/sqrt(ny nx) scale.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: BART's dimension of time (TIME_DIM in its misc/mri.h): flag 2^10 = 1024 in ``pics -R T:1024:0:lambda``.
TIME_DIM = 10
#: BART's dimension of coils (COIL_DIM).
COIL_DIM = 3
DEFAULT_LAMBDAS = (0.001, 0.003, 0.01, 0.03)


def have_bart() -> bool:
    return shutil.which("bart") is not None


def write_cfl(name: str | Path, a: np.ndarray) -> None:
    """BART's format: a text header of dims, then complex64 in column-major order."""
    a = np.asarray(a, dtype=np.complex64)
    with open(f"{name}.hdr", "w") as f:
        f.write("# Dimensions\n" + " ".join(str(d) for d in a.shape) + "\n")
    a.ravel(order="F").tofile(f"{name}.cfl")


def read_cfl(name: str | Path) -> np.ndarray:
    with open(f"{name}.hdr") as f:
        lines = [ln for ln in f.read().splitlines() if ln and not ln.startswith("#")]
    dims = [int(x) for x in lines[0].split()]
    return np.fromfile(f"{name}.cfl", dtype=np.complex64).reshape(dims, order="F")


def _dims(shape_by_dim: dict[int, int]) -> tuple[int, ...]:
    n = max(TIME_DIM, max(shape_by_dim)) + 1
    return tuple(shape_by_dim.get(d, 1) for d in range(n))


def to_bart(
    kspace: np.ndarray, trajectory: np.ndarray, coil_maps: np.ndarray, n_readout: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Binned series ``kspace[F, C, S*R]``, ``trajectory[F, S*R, 2]``, maps -> BART arrays."""
    F, C, K = kspace.shape
    R = n_readout
    S = K // R
    ny, nx = coil_maps.shape[1:]
    ksp = kspace.reshape(F, C, S, R).transpose(3, 2, 1, 0)  # [R, S, C, F]
    ksp = ksp.reshape(_dims({1: R, 2: S, 3: C, TIME_DIM: F}))
    t = trajectory.reshape(F, S, R, 2).astype(np.float64)
    traj = np.zeros((3, R, S, F))
    traj[0] = (t[..., 0] * ny / (2 * np.pi)).transpose(2, 1, 0)
    traj[1] = (t[..., 1] * nx / (2 * np.pi)).transpose(2, 1, 0)
    traj = traj.reshape(_dims({0: 3, 1: R, 2: S, TIME_DIM: F}))
    sens = coil_maps.transpose(1, 2, 0).reshape(_dims({0: ny, 1: nx, COIL_DIM: C}))
    return ksp, traj, sens


def bart_pics(
    kspace: np.ndarray,
    trajectory: np.ndarray,
    coil_maps: np.ndarray,
    n_readout: int,
    lam: float,
    iters: int = 30,
    extra: tuple[str, ...] = (),
    workdir: str | Path | None = None,
) -> tuple[np.ndarray, float]:
    """``bart pics -S -i iters -R T:1024:0:lam`` -> (frames ``[F, ny, nx]`` complex64, seconds)."""
    if not have_bart():
        raise RuntimeError("bart is not on PATH (apt-get install bart)")
    ksp, traj, sens = to_bart(kspace, trajectory, coil_maps, n_readout)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        p = Path(tmp)
        write_cfl(p / "k", ksp)
        write_cfl(p / "t", traj)
        write_cfl(p / "s", sens)
        cmd = [
            "bart",
            "pics",
            "-S",
            "-i",
            str(iters),
            "-R",
            f"T:{1 << TIME_DIM}:0:{lam:g}",
            *extra,
            "-t",
            str(p / "t"),
            str(p / "k"),
            str(p / "s"),
            str(p / "x"),
        ]
        t0 = time.perf_counter()
        run = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if run.returncode != 0:
            raise RuntimeError(f"bart pics failed ({run.returncode}): {run.stderr.strip()[-500:]}")
        x = read_cfl(p / "x")
    F = kspace.shape[0]
    ny, nx = coil_maps.shape[1:]
    frames = x.reshape(ny, nx, F, order="F") if x.size == ny * nx * F else None
    if frames is None:
        raise RuntimeError(f"bart pics returned dims {x.shape}, expected {ny}x{nx}x{F}")
    return np.ascontiguousarray(frames.transpose(2, 0, 1)), seconds


def check_conventions(series, coil_maps: np.ndarray) -> float:
    """Relative difference of BART's forward NUFFT and ours on frame 0 of ``series``."""
    import torch

    from dainr.physics.operator import RadialOperator

    ny, nx = series.image_shape
    rng = np.random.default_rng(0)
    img = (rng.standard_normal((ny, nx)) + 1j * rng.standard_normal((ny, nx))).astype(np.complex64)
    from scipy.ndimage import gaussian_filter

    img = gaussian_filter(img.real, 2) + 1j * gaussian_filter(img.imag, 2)  # band-limited
    om = series.trajectory[:1]
    op = RadialOperator(om, (ny, nx), coil_maps)
    with torch.no_grad():
        ours = op.forward(torch.from_numpy(img[None].astype(np.complex64)))[0].numpy()
    _, traj, sens = to_bart(ours[None], om, coil_maps, series.n_readout)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp)
        write_cfl(p / "t", traj)
        write_cfl(p / "s", sens)
        write_cfl(p / "i", img.reshape(ny, nx))
        subprocess.run(["bart", "fmac", str(p / "i"), str(p / "s"), str(p / "ci")], check=True)
        subprocess.run(["bart", "nufft", str(p / "t"), str(p / "ci"), str(p / "k")], check=True)
        k = read_cfl(p / "k")  # [1, R, S, C]
    R = series.n_readout
    S = om.shape[1] // R
    kb = k.reshape(R, S, -1, order="F").transpose(2, 1, 0).reshape(-1, S * R) * np.sqrt(ny * nx)
    return float(np.linalg.norm(kb - ours) / np.linalg.norm(ours))


def sweep(
    data, spokes: int, maps: np.ndarray, lambdas=DEFAULT_LAMBDAS, iters: int = 30
) -> list[dict]:
    """BART at every lambda: [{lambda, seconds, scores...}] scored against ``data.reference``."""
    from dainr.metrics import score_series

    series = data.binned(spokes)
    out = []
    for lam in lambdas:
        frames, sec = bart_pics(
            series.kspace, series.trajectory, maps, series.n_readout, lam, iters
        )
        s = score_series(frames, series.reference)
        out.append({"lambda": lam, "seconds": sec, **s.as_dict(), "frames": frames})
    return out


def make_case(name: str, spokes: int, seed: int = 0):
    from dainr.simulate.realistic import cine_case, perfusion_case

    if name == "cine-real":
        return cine_case(spokes_per_frame=spokes, seed=seed)
    if name == "perfusion-real":
        return perfusion_case(spokes_per_frame=spokes, seed=seed)
    raise SystemExit(f"unknown case {name!r}: cine-real or perfusion-real")


def case_maps(data, which: str) -> np.ndarray:
    from dainr.physics.coils import estimate_coil_maps

    true = data.coil_maps if data.coil_maps is not None else data.extra["truth/coil_maps"]
    if which == "true":
        return true
    return estimate_coil_maps(data.kspace, data.trajectory, data.image_shape, which)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--case", default="cine-real", choices=("cine-real", "perfusion-real"))
    ap.add_argument("--spokes", type=int, default=13)
    ap.add_argument("--maps", default="true", choices=("true", "espirit", "ratio"))
    ap.add_argument("--lambdas", type=float, nargs="+", default=list(DEFAULT_LAMBDAS))
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", action="store_true", help="only compare BART's NUFFT with ours")
    args = ap.parse_args(argv)
    if not have_bart():
        print("bart is not on PATH: nothing to do", file=sys.stderr)
        return 1
    data = make_case(args.case, args.spokes, args.seed)
    maps = case_maps(data, args.maps)
    if args.check:
        err = check_conventions(data.binned(args.spokes), maps)
        print(f"BART forward NUFFT vs dainr's: relative difference {err:.2e}")
        return 0 if err < 0.05 else 1
    print(
        f"# {args.case}, {args.spokes} spokes/frame, {args.maps} maps, bart pics -i {args.iters} "
        f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})"
    )
    for r in sweep(data, args.spokes, maps, args.lambdas, args.iters):
        print(
            f"lambda {r['lambda']:<7g} robust PSNR {r['robust_psnr_mean']:.2f} dB  motion "
            f"{r['motion_psnr']:.2f} dB  temporal NRMSE {r['temporal_nrmse']:.3f}  {r['seconds']:.1f} s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
