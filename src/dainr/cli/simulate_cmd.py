"""``dainr simulate``: a contract k-space file from a phantom or from your own image series.

Sources: ``cardiac`` (beating-heart cine), ``dce`` (contrast-enhanced abdomen, with
the true ROI curves stored under /roi) or a file: ``.npy`` or ``.h5`` holding frames
[F, ny, nx], magnitude or complex. The frames are stored as /reference, the birdcage
coil maps as /coil_maps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("simulate", help="simulate a radial k-space file", description=__doc__)
    p.add_argument("source", help="cardiac, dce, or an image series IMAGES.npy / IMAGES.h5")
    p.add_argument("--out", type=Path, required=True, help="output k-space .h5")
    p.add_argument(
        "--size",
        type=int,
        help="matrix n x n (phantoms: default 128; images: rescale the longer side to this)",
    )
    p.add_argument(
        "--frames",
        type=int,
        help="frames (default: cardiac 24, dce 16; images: all, else the first F)",
    )
    p.add_argument("--coils", type=int, default=8, help="birdcage coils (default %(default)s)")
    p.add_argument(
        "--spokes-per-frame",
        type=int,
        help="golden-angle spokes per frame (default: cardiac 13, dce 34, images 13)",
    )
    p.add_argument(
        "--readout-oversampling",
        type=float,
        default=2.0,
        help="samples per spoke / matrix (default %(default)s)",
    )
    p.add_argument(
        "--noise",
        type=float,
        default=0.01,
        help="noise std relative to the RMS of the samples (default %(default)s)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="phantom texture, phase and noise (default %(default)s)"
    )
    p.add_argument(
        "--coil-radius",
        type=float,
        default=1.5,
        help="coil ring radius in half-FOVs (default %(default)s)",
    )
    p.add_argument(
        "--frame-seconds",
        type=float,
        default=4.0,
        help="dce: seconds per frame (default %(default)s)",
    )
    p.add_argument(
        "--dataset",
        help="images .h5: the dataset holding the frames (default: /reference, /recon, /images, ...)",
    )
    p.add_argument(
        "--no-coil-maps",
        action="store_true",
        help="leave /coil_maps out (reconstructions then estimate them)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io import write_kspace_h5
    from ..simulate import (
        PHANTOMS,
        SimulationConfig,
        load_image_series,
        simulate_images,
        simulate_phantom,
    )

    cfg = SimulationConfig(
        size=args.size,
        frames=args.frames,
        coils=args.coils,
        spokes_per_frame=args.spokes_per_frame,
        readout_oversampling=args.readout_oversampling,
        noise=args.noise,
        seed=args.seed,
        coil_radius=args.coil_radius,
        coil_maps_in_file=not args.no_coil_maps,
        frame_seconds=args.frame_seconds,
    )
    for name, value, low in (("--size", args.size, 8), ("--frames", args.frames, 1)):
        if value is not None and value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if args.source in PHANTOMS:
        data = simulate_phantom(args.source, cfg)
    else:
        src = Path(args.source)
        if src.suffix.lower() not in (".npy", ".h5", ".hdf5"):
            raise ValueError(
                f"{args.source}: expected a phantom ({', '.join(PHANTOMS)}) or an image series .npy / .h5"
            )
        if src.exists() and args.out.exists() and src.resolve() == args.out.resolve():
            raise ValueError(
                f"{args.out}: the output would overwrite the input; choose another --out"
            )
        frames = load_image_series(src, args.dataset)
        data = simulate_images(frames, cfg, source=str(src))
    data.attrs["created_by"] = (
        f"dainr simulate {args.source}"  # the settings are in attribute simulation
    )
    write_kspace_h5(args.out, data)
    F = data.reference.shape[0] if data.reference is not None else 0
    print(
        f"simulate: {data.attrs.get('phantom')} -> {args.out}: {data.n_coils} coils x {data.n_spokes} spokes x "
        f"{data.n_readout} samples, {F} frames {data.image_shape[0]}x{data.image_shape[1]} "
        f"at {data.spokes_per_frame} spokes/frame",
        file=sys.stderr,
    )
    return 0
