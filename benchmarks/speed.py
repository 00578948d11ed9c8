"""Speed of the operator and of each method's step, side by side as ratios.

    python benchmarks/speed.py [--quick] [--device cpu|cuda] [--json out.json]

Three operator variants run the same data-consistency step (forward NUFFT of one
frame, L1 loss against the measured spokes, backward through the adjoint):

* ``default``   — what ``backend="auto"`` picks (finufft on CPU, cufinufft on CUDA);
* ``tkbn``      — torchkbnufft, complex64, all coils batched;
* ``reference`` — the released DA-INR code's style: torchkbnufft in float64, coil by coil.

Then per-step and whole-fit time of every learned method on a cardiac-sized series,
and how the default step grows with image size, frames and coils.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import date

import numpy as np
import torch

from dainr.physics import RadialOperator, golden_angle_trajectory
from dainr.physics.backends import TorchKbNufftBackend


class ReferenceStyleBackend:
    """The released code's operator: float64 torchkbnufft, one coil at a time."""

    name = "reference"

    def __init__(self, image_shape, device):
        self.inner = TorchKbNufftBackend(image_shape, device)
        self.inner._fwd = self.inner._fwd.double()
        self.inner._adj = self.inner._adj.double()

    def forward(self, x, omega):
        x64, om = x.to(torch.complex128), omega.double()
        out = torch.cat([self.inner.forward(x64[:, c : c + 1], om) for c in range(x.shape[1])], 1)
        return out.to(x.dtype)

    def adjoint(self, y, omega):
        y64, om = y.to(torch.complex128), omega.double()
        out = torch.cat([self.inner.adjoint(y64[:, c : c + 1], om) for c in range(y.shape[1])], 1)
        return out.to(y.dtype)


def make_operator(variant, n, frames, coils, spokes, device):
    traj = golden_angle_trajectory(frames * spokes, 2 * n).reshape(frames, -1, 2)
    rng = np.random.default_rng(0)
    maps = (rng.standard_normal((coils, n, n)) + 1j * rng.standard_normal((coils, n, n))).astype(
        np.complex64
    )
    backend = {"default": "auto", "tkbn": "torchkbnufft", "reference": "torchkbnufft"}[variant]
    op = RadialOperator(traj, (n, n), maps, device=device, backend=backend)
    if variant == "reference":
        op.backend = ReferenceStyleBackend((n, n), op.device)
    return op


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_operator_step(op, repeats, device) -> float:
    """Seconds per data-consistency step on one random frame (forward + L1 + backward)."""
    y = torch.randn(op.n_frames, op.n_coils, op.n_samples, dtype=torch.complex64, device=op.device)
    x = torch.randn(1, *op.image_shape, dtype=torch.complex64, device=op.device, requires_grad=True)
    times = []
    for i in range(repeats + 1):
        f = i % op.n_frames
        _sync(device)
        t = time.perf_counter()
        loss = (op.forward(x, frames=[f]) - y[f : f + 1]).abs().mean()
        loss.backward()
        _sync(device)
        times.append(time.perf_counter() - t)
    return float(np.median(times[1:]))


def operator_table(args) -> list[dict]:
    rows = []
    base = dict(n=128, frames=25, coils=12, spokes=13)
    cases = [base] if args.quick else [base, dict(base, coils=32)]
    for case in cases:
        row = dict(case)
        for variant in ("default", "tkbn", "reference"):
            op = make_operator(variant, device=args.device, **case)
            row[variant] = time_operator_step(op, args.repeats, args.device)
        row["default_backend"] = make_operator("default", device=args.device, **case).backend.name
        rows.append(row)
    return rows


def scaling_table(args) -> list[dict]:
    rows = []
    sizes = [128, 256] if args.quick else [128, 256, 384]
    for n in sizes:
        op = make_operator("default", n, 25, 12, 13, args.device)
        rows.append(
            dict(n=n, frames=25, coils=12, step=time_operator_step(op, args.repeats, args.device))
        )
    for coils in (4, 32):
        op = make_operator("default", 128, 25, coils, 13, args.device)
        rows.append(
            dict(
                n=128,
                frames=25,
                coils=coils,
                step=time_operator_step(op, args.repeats, args.device),
            )
        )
    return rows


def method_table(args) -> list[dict]:
    """Per-step and whole-fit time of each learned method, with each operator variant for DA-INR."""
    from dainr.api import make_method
    from dainr.loop import drain, run_fit
    from dainr.methods import available_methods
    from dainr.simulate import birdcage_maps, cardiac_phantom
    from dainr.simulate.acquire import acquire_series

    n, frames, coils = (96, 12, 8) if args.quick else (128, 25, 12)
    series = cardiac_phantom(n=n, n_frames=frames)
    data = acquire_series(series, birdcage_maps(coils, (n, n)), 13, noise_level=0.01)
    rows = []
    for name in [m for m in ("dainr", "hashinr", "tddip", "grasp") if m in available_methods()]:
        variants = ("default", "tkbn", "reference") if name == "dainr" else ("default",)
        for variant in variants:
            steps = args.fit_steps if variant == "default" else min(args.fit_steps, 30)
            m = make_method(data, name, device=args.device, steps=steps)
            if variant != "default":
                ref = make_operator(variant, n, frames, coils, 13, args.device)
                m.prep.op.backend = ref.backend
            t = time.perf_counter()
            res = drain(run_fit(m))
            wall = time.perf_counter() - t
            rows.append(
                dict(
                    method=name,
                    operator=variant,
                    steps=steps,
                    step_s=wall / steps,
                    fit_s=res.seconds,
                    peak_mib=res.peak_memory_bytes / 2**20,
                )
            )
    return rows


def print_tables(op_rows, scale_rows, method_rows) -> None:
    print(
        "\n## Operator step (forward + L1 + backward, one frame), seconds; ratio = reference / default"
    )
    print(
        f"{'image':>7} {'frames':>6} {'coils':>5} {'default':>10} {'tkbn':>10} {'reference':>10} {'tkbn/def':>9} {'ref/def':>8}  backend"
    )
    for r in op_rows:
        print(
            f"{r['n']:>5}^2 {r['frames']:>6} {r['coils']:>5} {r['default']:>10.4f} {r['tkbn']:>10.4f} "
            f"{r['reference']:>10.4f} {r['tkbn'] / r['default']:>8.1f}x {r['reference'] / r['default']:>7.1f}x  {r['default_backend']}"
        )
    print("\n## Default operator step vs size and coils, seconds")
    for r in scale_rows:
        print(f"{r['n']:>5}^2 frames {r['frames']:>3} coils {r['coils']:>3}: {r['step']:.4f}")
    if method_rows:
        print("\n## Methods: step and whole fit")
        print(
            f"{'method':>8} {'operator':>10} {'steps':>6} {'s/step':>8} {'fit s':>8} {'peak MiB':>9}"
        )
        base = {r["method"]: r["step_s"] for r in method_rows if r["operator"] == "default"}
        for r in method_rows:
            ratio = r["step_s"] / base[r["method"]]
            print(
                f"{r['method']:>8} {r['operator']:>10} {r['steps']:>6} {r['step_s']:>8.3f} {r['fit_s']:>8.1f} "
                f"{r['peak_mib']:>9.0f}   ({ratio:.1f}x the default step)"
            )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="fewer cases and steps (minutes on 2 cores)"
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument(
        "--fit-steps",
        type=int,
        default=None,
        help="steps of each whole fit (default 1000, 100 with --quick)",
    )
    p.add_argument("--no-methods", action="store_true", help="operator tables only")
    p.add_argument("--json", help="also write the rows as JSON here")
    args = p.parse_args(argv)
    args.fit_steps = args.fit_steps or (100 if args.quick else 1000)
    print(
        f"# speed, {date.today()}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, device {args.device}, torch {torch.__version__}"
    )
    op_rows = operator_table(args)
    scale_rows = scaling_table(args)
    method_rows = [] if args.no_methods else method_table(args)
    print_tables(op_rows, scale_rows, method_rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(operator=op_rows, scaling=scale_rows, methods=method_rows), f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
