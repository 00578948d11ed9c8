"""``dainr simulate``: a contract k-space file from a phantom or from your own image series.

Sources: ``cardiac`` (beating-heart cine), ``dce`` (contrast-enhanced abdomen, with
the true ROI curves stored under /roi), the real-anatomy cases ``cine-real`` (the real
short-axis cine sax_cine_data25.mat, MIT, github.com/yhao-z/GIRAF-3d-fast; 12 loop-array
coils) and ``perfusion-real`` (first-pass perfusion on that anatomy, LV/RV/myocardium
ROIs under /roi), or a file: ``.npy`` or ``.h5`` holding frames [F, ny, nx], magnitude
or complex. The frames are stored as /reference, the true coil maps as /coil_maps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("simulate", help="simulate a radial k-space file", description=__doc__)
    p.add_argument(
        "source",
        help="cardiac, dce, cine-real, perfusion-real, or an image series IMAGES.npy / IMAGES.h5",
    )
    p.add_argument("--out", type=Path, required=True, help="output k-space .h5")
    p.add_argument(
        "--size",
        type=int,
        help="matrix n x n (phantoms: default 128; images: rescale the longer side to this)",
    )
    p.add_argument(
        "--frames",
        type=int,
        help="frames (default: cardiac 24, dce 16, cine-real 25, perfusion-real 40; "
        "images: all, else the first F)",
    )
    p.add_argument(
        "--coils", type=int, help="coils (default: 8 birdcage; cine-real/perfusion-real 12 loops)"
    )
    p.add_argument(
        "--spokes-per-frame",
        type=int,
        help="golden-angle spokes per frame (default: cardiac 13, dce 34, images 13, "
        "cine-real 13, perfusion-real 16)",
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
        help="dce: seconds per frame (default: dce 4, perfusion-real 1)",
    )
    p.add_argument(
        "--image",
        type=Path,
        help="cine-real/perfusion-real: path of sax_cine_data25.mat "
        "(default: $DAINR_REAL_CINE or shared/data beside the checkout)",
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
    p.add_argument(
        "--gradient-delay",
        type=_delay,
        metavar="SX,SY[,SXY]",
        help="radial gradient delays in readout samples: the k-space is sampled where a "
        "scanner with them would, the file keeps the nominal trajectory (recon --delays auto "
        "estimates them)",
    )
    p.add_argument(
        "--slices",
        type=int,
        help="dce: a golden-angle stack-of-stars volume of N slices (needs --format ismrmrd)",
    )
    p.add_argument(
        "--format",
        choices=["h5", "ismrmrd"],
        default="h5",
        help="h5: the k-space contract; ismrmrd: raw data as a scanner converter writes it "
        "(default %(default)s)",
    )
    p.set_defaults(func=run)


def _delay(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) not in (2, 3) or not all(abs(v) < 1e6 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected SX,SY or SX,SY,SXY (finite numbers of samples), got {text!r}"
        )
    return values


def run(args: argparse.Namespace) -> int:
    if args.format == "ismrmrd" or args.slices is not None:
        if args.gradient_delay is not None:
            raise ValueError(
                "--gradient-delay: only h5 files simulate gradient delays, not --format ismrmrd"
            )
        return run_volume(args)
    from ..simulate import (
        PHANTOMS,
        SimulationConfig,
        load_image_series,
        simulate_images,
        simulate_phantom,
    )
    from ..simulate.realistic import REALISTIC_CASES

    for name, value, low in (("--size", args.size, 8), ("--frames", args.frames, 1)):
        if value is not None and value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if args.source in REALISTIC_CASES:
        kw = dict(
            size=args.size or 128,
            coils=args.coils or 12,
            noise=args.noise,
            seed=args.seed,
            with_maps=not args.no_coil_maps,
            image=args.image,
            readout_oversampling=args.readout_oversampling,
            gradient_delay=args.gradient_delay,
        )
        for key, value in (
            ("spokes_per_frame", args.spokes_per_frame),
            ("frames", args.frames),
            ("frame_seconds", args.frame_seconds),
        ):
            if value is not None and not (key == "frame_seconds" and args.source == "cine-real"):
                kw[key] = value
        data = REALISTIC_CASES[args.source](**kw)
        return _write(args, data)
    cfg = SimulationConfig(
        size=args.size,
        frames=args.frames,
        coils=args.coils or 8,
        spokes_per_frame=args.spokes_per_frame,
        readout_oversampling=args.readout_oversampling,
        noise=args.noise,
        seed=args.seed,
        coil_radius=args.coil_radius,
        coil_maps_in_file=not args.no_coil_maps,
        frame_seconds=args.frame_seconds or 4.0,
        gradient_delay=args.gradient_delay,
    )
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
    return _write(args, data)


def _write(args: argparse.Namespace, data) -> int:
    from ..io import write_kspace_h5

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


def run_volume(args: argparse.Namespace) -> int:
    """``dainr simulate dce --slices N --format ismrmrd``: a stack-of-stars DCE phantom."""
    from ..simulate.ismrmrd_writer import simulate_dce_volume, write_ismrmrd

    if args.source != "dce":
        raise ValueError(
            f"--format ismrmrd / --slices: only the dce phantom is a volume, got {args.source!r}"
        )
    if args.format != "ismrmrd":
        raise ValueError("--slices writes raw stack-of-stars data: add --format ismrmrd")
    for name, value, low in (
        ("--size", args.size, 16),
        ("--frames", args.frames, 1),
        ("--coils", args.coils, 1),
    ):
        if value is not None and value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    raw = simulate_dce_volume(
        args.slices or 1,
        size=args.size or 128,
        frames=args.frames or 16,
        coils=args.coils or 8,
        spokes_per_frame=args.spokes_per_frame or 34,
        noise=args.noise,
        seed=args.seed,
        readout_oversampling=args.readout_oversampling,
        frame_seconds=args.frame_seconds or 4.0,
    )
    write_ismrmrd(args.out, raw)
    P, C, S, R = raw.partitions.shape
    print(
        f"simulate: dce stack-of-stars -> {args.out}: {P} partitions x {C} coils x {S} spokes x {R} samples, "
        f"{raw.reference.shape[0]} frames {raw.reference.shape[-2]}x{raw.reference.shape[-1]} at "
        f"{raw.spokes_per_frame} spokes/frame (ISMRMRD)",
        file=sys.stderr,
    )
    return 0
