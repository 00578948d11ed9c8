"""Volume benchmarks: Dask sizing, DA-INR cost per step by matrix and coils,
coil compression, per-slice scores of a volume output against its simulated truth.

    python benchmarks/volume.py step --sizes 128 256 384 --coils 12 32 --steps 12
    python benchmarks/volume.py compress --size 96 --coils 32 --virtual 8 12 --steps 200
    python benchmarks/volume.py sizing --slices 4 --size 64 --steps 100
    python benchmarks/volume.py scores VOLUME_OUT.h5 INPUT.mrd

Prints markdown table rows; results with date and machine go to benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from dainr.loop import Done, Progress
from dainr.metrics import robust_psnr
from dainr.session import FitSpec, fit_stream
from dainr.simulate import SimulationConfig, simulate_phantom


def dce_slice(size: int, coils: int, frames: int = 16, spf: int = 34, seed: int = 0):
    cfg = SimulationConfig(
        size=size,
        frames=frames,
        coils=coils,
        spokes_per_frame=spf,
        seed=seed,
        coil_maps_in_file=False,
    )
    return simulate_phantom("dce", cfg)


def time_steps(data, steps: int, skip: int = 3, **overrides):
    """(seconds per step after ``skip`` warm-up steps, preparation seconds, peak MiB, result)."""
    spec = FitSpec(method="dainr", overrides={"steps": steps, **overrides}, device="cpu")
    t0 = time.perf_counter()
    prep_s, marks, result = None, {}, None
    for m in fit_stream(data, spec):
        if prep_s is None:
            prep_s = time.perf_counter() - t0
        if isinstance(m, Progress):
            marks[m.step] = m.seconds
        elif isinstance(m, Done):
            result = m.result
    per = (marks[steps] - marks[skip]) / (steps - skip)
    return per, prep_s, result.peak_memory_bytes / 2**20, result


def cmd_step(a):
    print("| matrix | coils | readout | s/step | preparation s | peak MiB |")
    print("|---|---|---|---|---|---|")
    for n in a.sizes:
        for c in a.coils:
            d = dce_slice(n, c, frames=a.frames)
            per, prep, mib, _ = time_steps(d, a.steps)
            print(
                f"| {n}² | {c} | {d.n_readout} | {per:.3f} | {prep:.1f} | {mib:.0f} |", flush=True
            )


def cmd_compress(a):
    from dainr.physics.compress import compress_coils

    d = dce_slice(a.size, a.coils, frames=a.frames)
    ref = d.reference
    print(
        "| coils | compression s | energy kept | gridding rPSNR dB | DA-INR rPSNR dB | DA-INR s/step | fit s |"
    )
    print("|---|---|---|---|---|---|---|")
    for k in [a.coils, *a.virtual]:
        t0 = time.perf_counter()
        dk = compress_coils(d, k) if k < a.coils else d
        tc = time.perf_counter() - t0 if k < a.coils else 0.0
        energy = dk.attrs.get("virtual_coils_energy", 1.0)
        g = _gridding(dk)
        t1 = time.perf_counter()
        per, _, _, r = time_steps(dk, a.steps)
        fit_s = time.perf_counter() - t1
        print(
            f"| {a.coils}→{k} | {tc:.3f} | {energy:.4f} | {np.mean(robust_psnr(g, ref)):.2f} | "
            f"{np.mean(robust_psnr(r.frames, ref)):.2f} | {per:.3f} | {fit_s:.0f} |",
            flush=True,
        )


def _gridding(data):
    from dainr.prepare import prepare_series

    p = prepare_series(data, None, device="cpu")
    return (p.gridding / p.scale).numpy()


def cmd_sizing(a):
    """Wall time of one N-slice volume with LocalClusters of different shapes."""
    from dainr.cluster import close_client, open_client
    from dainr.io.ismrmrd import read_ismrmrd
    from dainr.simulate.ismrmrd_writer import simulate_dce_volume, write_ismrmrd
    from dainr.volume import run_volume

    logging.getLogger("distributed").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "v.mrd"
        write_ismrmrd(
            p,
            simulate_dce_volume(
                a.slices, size=a.size, frames=a.frames, coils=a.coils_n, spokes_per_frame=34
            ),
        )
        vol = read_ismrmrd(p)
        spec = FitSpec(method="dainr", overrides={"steps": a.steps}, device="cpu")
        print("| cluster | startup s | volume wall s | per-slice s (mean) |")
        print("|---|---|---|---|")
        for workers, threads in a.shapes:
            t0 = time.perf_counter()
            client, desc = open_client(None, workers, threads)
            client.wait_for_workers(workers)
            start = time.perf_counter() - t0
            try:
                t1 = time.perf_counter()
                out = Path(tmp) / f"o{workers}x{threads}.h5"
                run_volume(vol, spec, list(range(vol.n_slices)), out, client=client)
                wall = time.perf_counter() - t1
            finally:
                close_client(client)
            from dainr.io.volume_output import read_volume_recon

            secs = read_volume_recon(out).seconds
            print(
                f"| {workers} worker(s) x {threads} thread(s) | {start:.1f} | {wall:.1f} | {np.mean(secs):.1f} |",
                flush=True,
            )


def cmd_scores(a):
    from dainr.io.ismrmrd import read_ismrmrd
    from dainr.io.volume_output import read_volume_recon
    from dainr.simulate.ismrmrd_writer import read_truth
    from dainr.volume import grid_slices

    r = read_volume_recon(a.output)
    ref, _ = read_truth(a.input)
    vol = read_ismrmrd(a.input)
    spf = int(r.attrs.get("spokes_per_frame", 0)) or None
    g = grid_slices(vol, spf, r.slices)
    F = r.frames.shape[0]
    workers = r.attrs.get("workers", "")
    print(f"cluster: {r.attrs.get('cluster')}; workers per slice: {workers}")
    print("| slice | gridding rPSNR dB | recon rPSNR dB | seconds |")
    print("|---|---|---|---|")
    for i, z in enumerate(r.slices):
        rz = ref[:F, z]
        print(
            f"| {z} | {np.mean(robust_psnr(g[:, i], rz)):.2f} | {np.mean(robust_psnr(r.frames[:, i], rz)):.2f} | "
            f"{r.seconds[i]:.1f} |"
        )


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("step")
    s.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 384])
    s.add_argument("--coils", type=int, nargs="+", default=[12, 32])
    s.add_argument("--frames", type=int, default=16)
    s.add_argument("--steps", type=int, default=12)
    s = sub.add_parser("compress")
    s.add_argument("--size", type=int, default=96)
    s.add_argument("--coils", type=int, default=32)
    s.add_argument("--virtual", type=int, nargs="+", default=[12, 8])
    s.add_argument("--frames", type=int, default=16)
    s.add_argument("--steps", type=int, default=200)
    s = sub.add_parser("sizing")
    s.add_argument("--slices", type=int, default=4)
    s.add_argument("--size", type=int, default=64)
    s.add_argument("--frames", type=int, default=8)
    s.add_argument("--coils-n", type=int, default=8)
    s.add_argument("--steps", type=int, default=100)
    s.add_argument(
        "--shapes",
        type=lambda v: tuple(int(x) for x in v.split("x")),
        nargs="+",
        default=[(1, 2), (2, 1)],
        help="WORKERSxTHREADS",
    )
    s = sub.add_parser("scores")
    s.add_argument("output")
    s.add_argument("input")
    a = p.parse_args()
    {"step": cmd_step, "compress": cmd_compress, "sizing": cmd_sizing, "scores": cmd_scores}[a.cmd](
        a
    )


if __name__ == "__main__":
    main()
