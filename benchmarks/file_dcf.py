"""A file's density weights against the analytic ramp: GRASP's series with each.

The GRASP demo's ``.mat`` files carry ``w = |k|``, exactly zero at the k-space centre and
on their own scale. The engine keeps such weights' shape but takes the ramp's scale and
keeps the centre (``dainr.physics.density.file_dcf``); this prints GRASP's robust PSNR and
the correlation of its mean-signal curve with the truth's for the ramp and for ``|k|``
weights at two scales.

    python benchmarks/file_dcf.py [--size 64] [--coils 3] [--frames 24]
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np


def main() -> None:
    import dainr
    from dainr.simulate.realistic import perfusion_case

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--coils", type=int, default=3)
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--spokes-per-frame", type=int, default=15)
    a = p.parse_args()
    data = perfusion_case(a.spokes_per_frame, coils=a.coils, size=a.size, frames=a.frames, seed=0)
    ref = data.reference
    k = np.sqrt((data.trajectory.astype(np.float64) ** 2).sum(-1))
    print(
        f"perfusion simulated from real images, {a.size}², {a.frames} frames, {a.coils} coils, "
        f"{a.spokes_per_frame} spokes/frame, 1 % noise, true maps"
    )
    print("| weights | robust PSNR dB | mean-signal curve r |")
    print("| --- | --- | --- |")
    for label, weights in (
        ("ramp", None),
        ("k radius / its max", k / k.max()),
        ("k radius x 1000", 1000 * k),
    ):
        d = data if weights is None else dataclasses.replace(data, dcf=weights.astype(np.float32))
        r = dainr.reconstruct(d, "grasp", dcf="ramp" if weights is None else "file", device="cpu")
        s = dainr.score_series(r.frames, ref)
        curve = np.corrcoef(np.abs(r.frames).mean((1, 2)), np.abs(ref).mean((1, 2)))[0, 1]
        print(f"| {label} | {s.robust_psnr_mean:.2f} | {curve:.3f} |", flush=True)


if __name__ == "__main__":
    main()
