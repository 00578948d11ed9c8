"""``dainr recon`` on a volume: one Dask task per slice, a progress bar over slices.

Called by :mod:`dainr.cli.recon_cmd` when the input holds several slices (ISMRMRD
stack-of-stars or multi-slice, BART with slices) or when ``--slices``,
``--scheduler`` or ``--workers`` ask for the volume path (:func:`dainr.cli.recon_cmd.wants_volume`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm


def add_volume_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("volumes (ISMRMRD stack-of-stars / multi-slice, BART slices)")
    g.add_argument("--slices", help="slices to reconstruct, e.g. 3,5-9 (default: all)")
    g.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="a Dask scheduler you started (default: a LocalCluster on this machine)",
    )
    g.add_argument(
        "--workers",
        type=int,
        help="LocalCluster size (default: one worker per GPU, else one worker per 4 cores)",
    )
    g.add_argument(
        "--virtual-coils",
        type=int,
        metavar="K",
        help="compress the coils to K virtual coils (SVD, per slice, before coil-map estimation)",
    )


def run_volume_cli(args: argparse.Namespace, spec, vol, out: Path) -> int:
    from ..loop import StopRequest
    from ..volume import SliceFailed, SliceResult, VolumeStarted, parse_slices, run_volume

    if args.coil_maps is not None:
        raise ValueError(
            "--coil-maps holds one slice's maps: volumes estimate maps per slice (leave it out)"
        )
    if args.upscale != 1.0 or args.frames_between:
        raise ValueError(
            "--upscale / --frames-between render one slice: reconstruct the volume, then render a slice"
        )
    if args.checkpoint is not None:
        raise ValueError(
            "--checkpoint is per fit: a volume keeps finished slices in its output instead (--resume OUT.h5)"
        )
    if not getattr(args, "verbose", False):
        # distributed logs every worker start and stop at INFO: the CLI shows one progress bar
        logging.getLogger("distributed").setLevel(logging.ERROR)
    resume = args.resume is not None
    if resume:
        out = args.resume
    slices = parse_slices(args.slices, vol.n_slices, vol.source)
    stop = StopRequest()

    bar = None
    failed: list[int] = []

    def on_event(ev):
        nonlocal bar
        if isinstance(ev, VolumeStarted):
            print(f"{len(ev.slices)} slices of {vol.n_slices} on {ev.cluster}", file=sys.stderr)
            bar = tqdm(
                total=len(ev.slices),
                disable=args.quiet,
                unit="slice",
                dynamic_ncols=True,
                file=sys.stderr,
            )
        elif isinstance(ev, SliceResult):
            bar.update(1)
            bar.set_postfix_str(f"slice {ev.index} {ev.seconds:.0f} s on {ev.worker}")
        elif isinstance(ev, SliceFailed):
            what = "retrying" if ev.retrying else "giving up"
            (bar.write if bar else print)(
                f"slice {ev.index} failed (try {ev.attempt}): {ev.error}; {what}"
            )
            if not ev.retrying:
                failed.append(ev.index)

    message = "stopping: pending slices cancelled, finished ones kept (Ctrl-C again to abort)"
    from .progress import StopOnCtrlC  # imports torch: not at `dainr recon --help`

    with StopOnCtrlC(stop, message) as ctrl_c:
        try:
            path, complete, _ = run_volume(
                vol,
                spec,
                slices,
                out,
                resume=resume,
                scheduler=args.scheduler,
                workers=args.workers,
                virtual_coils=args.virtual_coils,
                stop=stop,
                input_path=args.input,
                on_event=on_event,
            )
        finally:
            if bar is not None:
                bar.close()
    state = "volume" if complete else "partial volume (run again with --resume to finish it)"
    print(
        f"{spec.method}: {state} -> {path}" + (f"; failed slices: {failed}" if failed else ""),
        file=sys.stderr,
    )
    if ctrl_c.interrupted:
        return 130
    return 0 if complete else 1
