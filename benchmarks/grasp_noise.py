"""GRASP's lambda against the data's noise: robust PSNR over lambda scales, per case.

For the cine and perfusion cases at three noise levels and two coil counts, prints the
noise ratio the engine estimates from the data (``preparation.noise.image_ratio``: a
gridding image's noise over its peak) and GRASP's robust PSNR at multiples of its
default lambda. The question it answers: does the best lambda follow the noise?

    python benchmarks/grasp_noise.py [--size 128] [--scales 1 2 4 8]
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    import dainr
    from dainr.simulate.realistic import cine_case, perfusion_case

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--scales", type=float, nargs="+", default=[1.0, 2.0, 4.0, 8.0])
    p.add_argument("--coils", type=int, nargs="+", default=[4, 12])
    p.add_argument("--noise", type=float, nargs="+", default=[0.003, 0.01, 0.03])
    a = p.parse_args()
    head = " | ".join(f"λ × {s:g}" for s in a.scales)
    print(f"| case | coils | noise | image noise / peak | {head} |")
    print("| --- " * (4 + len(a.scales)) + "|")
    for case in ("cine", "perfusion"):
        for coils in a.coils:
            for noise in a.noise:
                if case == "cine":
                    d = cine_case(13, coils=coils, size=a.size, noise=noise, with_maps=False)
                else:
                    frames = 24 if a.size <= 64 else 40
                    d = perfusion_case(
                        16, coils=coils, size=a.size, frames=frames, noise=noise, with_maps=False
                    )
                cells, ratio = [], None
                for s in a.scales:
                    r = dainr.reconstruct(d, "grasp", lambda_scale=s, device="cpu")
                    cells.append(dainr.score_series(r.frames, d.reference).robust_psnr_mean)
                    ratio = json.loads(r.attrs["preparation"])["noise"]["image_ratio"]
                best = max(range(len(cells)), key=cells.__getitem__)
                text = " | ".join(
                    f"**{c:.2f}**" if i == best else f"{c:.2f}" for i, c in enumerate(cells)
                )
                print(
                    f"| {case} | {coils} | {noise:g} | {ratio:.4f} | {text} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
