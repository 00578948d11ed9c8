"""The phases of ``benchmarks/gpu_check.sh``: each prints as it goes and merges its
results into one JSON file, so a phase that fails or times out loses only itself.

    python benchmarks/gpu_check.py PHASE --json out.json [--device cuda] [--dry-run]

PHASE: ``env`` (versions, GPU, which backends ``auto`` picks), ``smoke`` (every method a
few steps on the device: stop, checkpoint, resume, compare with an uninterrupted run;
render at r = 1.5), ``operators`` (each NUFFT backend: error against the direct sum,
adjoint test, time of a data-consistency step), ``fit`` (a whole default DA-INR fit with
time, allocator peak and scores against the phantom). ``--dry-run`` shrinks every size so
that the whole script runs on a CPU in minutes (the install and the code paths are the
same; the numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch


def say(*parts) -> None:
    print(*parts, flush=True)


def merge(path: str, key: str, value) -> None:
    p = Path(path)
    data = json.loads(p.read_text()) if p.exists() else {}
    data[key] = value
    p.write_text(json.dumps(data, indent=2, default=str))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def phantom_data(n: int, frames: int, coils: int, spokes: int = 13):
    from dainr.simulate import birdcage_maps, cardiac_phantom
    from dainr.simulate.acquire import acquire_series

    ref = cardiac_phantom(n=n, n_frames=frames)
    return ref, acquire_series(ref, birdcage_maps(coils, (n, n)), spokes, noise_level=0.01)


# ----------------------------------------------------------------------------- phases


def phase_env(args, device: torch.device) -> dict:
    import dainr
    from dainr.methods import available_methods
    from dainr.methods.dainr.config import DainrConfig
    from dainr.methods.dainr.hashgrid import tcnn_available
    from dainr.methods.dainr.method import native_bf16, resolve_config
    from dainr.physics.backends import available_backends

    out = {
        "python": platform.python_version(),
        "versions": dainr.versions(),
        "device": str(device),
        "methods": available_methods(),
        "nufft_backends": available_backends(device),
        "tcnn": tcnn_available(),
        "native_bf16": native_bf16(device),
    }
    cfg = resolve_config(DainrConfig(), device)
    out["dainr_auto"] = {"hash_backend": cfg.hash_backend, "mlp_precision": cfg.mlp_precision}
    if device.type == "cuda":
        from dainr.physics.backends import cufinufft_problem

        p = torch.cuda.get_device_properties(device)
        out["gpu"] = {
            "name": p.name,
            "capability": f"{p.major}.{p.minor}",
            "memory_gib": round(p.total_memory / 2**30, 1),
            "multiprocessors": p.multi_processor_count,
            "cuda": torch.version.cuda,
        }
        out["cufinufft_problem"] = cufinufft_problem(device.index or 0)
    for k, v in out.items():
        say(f"{k}: {v}")
    return out


def _run(data, name, device, stop_after, overrides, checkpoint=None, resume=None):
    """A fit of ``name`` stopped after ``stop_after`` steps: (method, result, seconds)."""
    from dainr.loop import Done, Progress, RunOptions, StopRequest
    from dainr.session import FitSpec, Prepared, fit_stream

    stop = StopRequest()
    method = result = None
    t = time.perf_counter()
    stream = fit_stream(
        data,
        FitSpec(method=name, overrides=overrides, device=str(device), seed=0),
        RunOptions(checkpoint=checkpoint, resume=resume),
        stop=stop,
    )
    for m in stream:
        if isinstance(m, Prepared):
            method = m.method
        elif isinstance(m, Progress) and m.step >= stop_after:
            stop.request()
        elif isinstance(m, Done):
            result = m.result
    return method, result, time.perf_counter() - t


def phase_smoke(args, device: torch.device) -> dict:
    import dataclasses

    from dainr.methods import available_methods, get_method
    from dainr.render import render, supports_render

    n, frames, coils, k = (32, 4, 2, 2) if args.dry_run else (64, 8, 4, 5)
    _, data = phantom_data(n, frames, coils)
    out = {"size": [n, frames, coils], "steps_each_part": k}
    for name in available_methods():
        row: dict = {}
        over = {}
        fields = {f.name for f in dataclasses.fields(get_method(name)[1])}
        if args.dry_run and "hash_log2_size" in fields:  # 2^24-row tables crawl on a CPU
            over["hash_log2_size"] = 14
        try:
            with tempfile.TemporaryDirectory() as tmp:
                ck = Path(tmp) / "ck.pt"
                m, first, sec = _run(data, name, device, k, over, checkpoint=ck)
                row.update(
                    steps=first.steps_done,
                    seconds=round(sec, 2),
                    finite=bool(np.isfinite(first.frames).all()),
                )
                if getattr(m, "iterative", True) and first.steps_done < m.total_steps:
                    _, resumed, _ = _run(data, name, device, 2 * k, over, resume=ck)
                    _, straight, _ = _run(data, name, device, 2 * k, over)
                    a, b = resumed.frames, straight.frames
                    row["resumed_steps"] = resumed.steps_done
                    row["resume_vs_straight_rel"] = float(
                        np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)
                    )
                if supports_render(m):
                    img = render(m, upscale=1.5)
                    row["render_1.5"] = list(img.shape)
                    row["render_finite"] = bool(np.isfinite(img).all())
            row["ok"] = True
        except Exception as e:  # report and go on with the next method
            row.update(ok=False, error=f"{type(e).__name__}: {e}")
            traceback.print_exc()
        out[name] = row
        say(f"smoke {name}: {row}")
        merge(args.json, args.key or "smoke", {"ok": None, **out})  # kept if a later one hangs
    return out


def _step_time(op, device, repeats) -> float:
    y = torch.randn(op.n_frames, op.n_coils, op.n_samples, dtype=torch.complex64, device=device)
    x = torch.randn(1, *op.image_shape, dtype=torch.complex64, device=device, requires_grad=True)
    times = []
    for i in range(repeats + 2):
        f = i % op.n_frames
        sync(device)
        t = time.perf_counter()
        loss = (op.forward(x, frames=[f]) - y[f : f + 1]).abs().mean()
        loss.backward()
        sync(device)
        times.append(time.perf_counter() - t)
    return float(np.median(times[2:]))


def phase_operators(args, device: torch.device) -> dict:
    from dainr.physics import RadialOperator, direct_forward, golden_angle_trajectory
    from dainr.physics.backends import available_backends

    names = available_backends(device)
    sizes = [(48, 4)] if args.dry_run else [(128, 12), (384, 12)]
    repeats = 2 if args.dry_run else 20
    rng = np.random.default_rng(0)
    out = {"backends": names, "rows": []}
    img = (rng.standard_normal((24, 20)) + 1j * rng.standard_normal((24, 20))).astype(np.complex64)
    maps = (rng.standard_normal((3, 24, 20)) + 1j * rng.standard_normal((3, 24, 20))).astype(
        np.complex64
    )
    traj = golden_angle_trajectory(5, 48).reshape(1, -1, 2)
    ref = direct_forward(img, traj[0], maps)
    for name in names:
        op = RadialOperator(traj, (24, 20), maps, device=device, backend=name)
        y = op.forward(torch.from_numpy(img).to(device)[None])[0].cpu().numpy()
        yy = torch.randn(1, 3, op.n_samples, dtype=torch.complex64, device=device)
        xx = torch.randn(1, 24, 20, dtype=torch.complex64, device=device)
        lhs = torch.vdot(op.forward(xx).flatten(), yy.flatten())
        rhs = torch.vdot(xx.flatten(), op.adjoint(yy).flatten())
        acc = {
            "backend": name,
            "rel_error_vs_direct_sum": float(np.linalg.norm(y - ref) / np.linalg.norm(ref)),
            "adjoint_rel": float(abs(lhs - rhs) / abs(lhs)),
        }
        say(f"accuracy {acc}")
        out.setdefault("accuracy", []).append(acc)
    for n, coils in sizes:
        traj = golden_angle_trajectory(25 * 13, 2 * n).reshape(25, -1, 2)
        m = (rng.standard_normal((coils, n, n)) + 1j * rng.standard_normal((coils, n, n))).astype(
            np.complex64
        )
        row = {"n": n, "coils": coils, "frames": 25, "spokes": 13}
        for name in names:
            op = RadialOperator(traj, (n, n), m, device=device, backend=name)
            row[name] = _step_time(op, device, repeats)
        out["rows"].append(row)
        say("operator step (fwd + L1 + bwd, one frame), s: " + json.dumps(row))
    return out


def phase_fit(args, device: torch.device) -> dict:
    import dainr
    from dainr.metrics import score_series

    n, frames, coils = args.n, args.frames, args.coils
    steps = args.steps
    if args.dry_run:
        n, frames, coils, steps = min(n, 48), min(frames, 4), min(coils, 2), min(steps, 10)
    t = time.perf_counter()
    ref, data = phantom_data(n, frames, coils)
    sim_s = time.perf_counter() - t
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    t = time.perf_counter()
    r = dainr.reconstruct(data, "dainr", device=str(device), steps=steps)
    wall = time.perf_counter() - t
    out = {
        "size": [n, frames, coils, 13],
        "steps": r.steps_done,
        "fit_seconds": round(r.seconds, 2),
        "wall_seconds": round(wall, 2),
        "simulate_seconds": round(sim_s, 2),
        "peak_memory_mib": round(r.peak_memory_bytes / 2**20, 1),
        "config": {k: r.config.get(k) for k in ("hash_backend", "mlp_precision", "steps")},
        "preparation": r.attrs.get("preparation"),
    }
    if device.type == "cuda":
        out["max_memory_allocated_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    scores = score_series(r.frames, ref).as_dict()
    out["scores"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}
    say(json.dumps(out, indent=1))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("phase", choices=["env", "smoke", "operators", "fit"])
    p.add_argument("--json", required=True, help="the results file to merge into")
    p.add_argument("--key", help="name of this result in the file (default: the phase)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--n", type=int, default=128)
    p.add_argument("--frames", type=int, default=25)
    p.add_argument("--coils", type=int, default=12)
    p.add_argument("--steps", type=int, default=1000)
    args = p.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.INFO, format="  [%(name)s] %(message)s")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        say("no CUDA device: nothing to check")
        merge(args.json, args.key or args.phase, {"ok": False, "error": "no CUDA device"})
        return 1
    t = time.perf_counter()
    phase = {
        "env": phase_env,
        "smoke": phase_smoke,
        "operators": phase_operators,
        "fit": phase_fit,
    }[args.phase]
    try:
        result = phase(args, device)
        ok = True
    except Exception as e:
        traceback.print_exc()
        result, ok = {"error": f"{type(e).__name__}: {e}"}, False
    result = {"ok": ok, "phase_seconds": round(time.perf_counter() - t, 2), **result}
    merge(args.json, args.key or args.phase, result)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
