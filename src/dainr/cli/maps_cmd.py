"""``dainr maps``: the coil maps the engine would estimate for a file, written alone.

The maps come from the time-averaged k-space by ESPIRiT, as a reconstruction estimates
them when the file has none. The output holds ``/coil_maps [coils, ny, nx]`` (unit
root-sum-of-squares) in the file contract: inspect them, give them back with
``dainr recon --coil-maps``, or to another tool.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("maps", help="estimate a file's coil maps", description=__doc__)
    p.add_argument("input", type=Path, help="k-space file (.h5 contract, .mat, ISMRMRD, BART)")
    p.add_argument("--out", type=Path, required=True, help="output .h5 with /coil_maps")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    import dainr

    from ..io import atomic_h5, load_kspace
    from ..io.h5contract import FORMAT_VERSION
    from ..physics.coils import estimate_coil_maps

    if args.out.exists() and args.out.resolve() == args.input.resolve():
        raise ValueError(f"{args.out}: the output would overwrite the input; choose another --out")
    data = load_kspace(args.input)
    t0 = time.perf_counter()
    maps = estimate_coil_maps(data.kspace, data.trajectory, data.image_shape)
    seconds = time.perf_counter() - t0
    with atomic_h5(args.out) as f:
        f.create_dataset("coil_maps", data=maps.astype(np.complex64))
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["image_shape"] = np.asarray(data.image_shape, np.int64)
        f.attrs["coil_maps_method"] = "espirit"
        f.attrs["source"] = str(args.input)
        f.attrs["seconds"] = float(seconds)
        f.attrs["versions"] = json.dumps(dainr.versions(), sort_keys=True)
    C, ny, nx = maps.shape
    print(
        f"maps: {C} coils of {ny}x{nx} (ESPIRiT) in {seconds:.1f} s -> {args.out}", file=sys.stderr
    )
    return 0
