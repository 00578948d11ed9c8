"""``dainr recon``: reconstruct a k-space file with any method, write the output contract."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..methods import DEFAULT_METHOD, REGISTRY


def register(sub) -> None:
    p = sub.add_parser("recon", help="reconstruct a k-space file", description=__doc__)
    p.add_argument(
        "input",
        type=Path,
        help="k-space file (.h5 contract, .mat layout, ISMRMRD .mrd/.h5, BART .cfl)",
    )
    p.add_argument(
        "--method",
        default=DEFAULT_METHOD,
        choices=list(REGISTRY),
        help="reconstruction method (default %(default)s)",
    )
    p.add_argument(
        "--out", type=Path, help="output .h5 (default: INPUT_<method>.h5 beside the input)"
    )
    p.add_argument("--steps", type=int, help="optimisation steps (learned and iterative methods)")
    p.add_argument("--spokes-per-frame", type=int, help="binning (default: the file's, else 13)")
    p.add_argument(
        "--coil-maps", type=Path, help=".h5 with /coil_maps overriding the file's or estimated maps"
    )
    p.add_argument(
        "--dcf",
        default="auto",
        choices=["auto", "ramp", "pipe-menon", "file"],
        help="density compensation: auto = the file's /dcf when present, else ramp (default %(default)s)",
    )
    p.add_argument(
        "--delays",
        default="off",
        choices=["off", "auto"],
        help="radial gradient delays: auto = estimate them from the data (RING) and correct "
        "the trajectory (default %(default)s)",
    )
    p.add_argument(
        "--upscale",
        type=float,
        default=1.0,
        help="render at r times the matrix (continuous methods)",
    )
    p.add_argument(
        "--frames-between",
        type=int,
        default=0,
        metavar="M",
        help="render M extra frames between acquired frames (continuous methods)",
    )
    p.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:1, mps (default %(default)s)"
    )
    p.add_argument(
        "--backend", default="auto", help="NUFFT backend: auto, finufft, cufinufft, torchkbnufft"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--checkpoint",
        type=Path,
        help="write a resumable checkpoint here (at the end, and every --checkpoint-every steps)",
    )
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    p.add_argument(
        "--resume",
        type=Path,
        help="continue from this checkpoint (a volume: finish the volume output OUT.h5)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="any config field of the method (JSON value), repeatable",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    g = p.add_argument_group("held-out spokes and ensembles (iterative methods)")
    g.add_argument(
        "--holdout",
        type=float,
        metavar="FRACTION",
        help="fraction of the spokes kept out of the fit (one in each of a spread set of frames) to choose the returned step and stop early (default 0 = off: the last step is returned; e.g. 0.05)",
    )
    g.add_argument(
        "--holdout-every",
        type=int,
        metavar="N",
        help="steps between held-out evaluations (default: steps/20, rounded up)",
    )
    g.add_argument(
        "--early-stop",
        type=int,
        metavar="N",
        help="stop after N held-out evaluations without a better loss (default 10; 0 = never)",
    )
    g.add_argument(
        "--ensemble",
        type=int,
        default=1,
        metavar="K",
        help="fit K seeds (--seed .. --seed+K-1); write their mean and a per-pixel std series /std",
    )
    g.add_argument(
        "--ensemble-parallel",
        action="store_true",
        help="run the K fits on a local Dask cluster (default: one after the other, unless several GPUs)",
    )
    from .volume_recon import add_volume_arguments

    add_volume_arguments(p)
    p.set_defaults(func=run)


#: recon flags that are FitSpec fields of the same name
CLI_SPEC_FIELDS = (
    "spokes_per_frame", "coil_maps", "dcf", "delays", "device", "backend", "seed",
    "holdout", "holdout_every", "early_stop",
)  # fmt: skip


def wants_volume(args: argparse.Namespace) -> bool:
    """Whether volume flags ask for the volume path even for a one-slice input."""
    return args.slices is not None or bool(args.scheduler) or bool(args.workers)


def run(args: argparse.Namespace) -> int:
    from ..config import parse_assignments
    from ..data import KSpaceVolume
    from ..errors import FitError, FitStopped
    from ..io import load_kspace_or_volume, write_recon_h5
    from ..loop import RunOptions, StopRequest
    from ..methods import get_method
    from ..render import check_render_request
    from ..session import FitSpec, Prepared, fit_stream
    from .progress import StopOnCtrlC, drain_showing_progress

    out = args.out or args.input.with_name(f"{args.input.stem}_{args.method}.h5")
    if out.resolve() == args.input.resolve():
        raise ValueError(f"{out}: the output would overwrite the input; choose another --out")
    method_cls, config_cls = get_method(args.method)
    # before the fit: a long run must not end with a render request it cannot honour
    check_render_request(method_cls, args.upscale, args.frames_between)
    overrides = parse_assignments(config_cls, args.set)
    if args.steps is not None:
        overrides["steps"] = args.steps
    spec = FitSpec.from_options(
        args.method,
        overrides=overrides,
        **{k: getattr(args, k) for k in CLI_SPEC_FIELDS},
    )
    data = load_kspace_or_volume(args.input, spokes_per_frame=args.spokes_per_frame)
    volume = isinstance(data, KSpaceVolume)
    if wants_volume(args) or (volume and data.n_slices > 1):
        from .volume_recon import run_volume_cli

        vol = data if volume else KSpaceVolume.from_kspace(data)
        return run_volume_cli(args, spec, vol, out)
    if volume:
        data = data.slice(0)
    if args.virtual_coils:
        from ..physics.compress import compress_coils

        data = compress_coils(data, args.virtual_coils)
    if args.ensemble != 1:
        return _run_ensemble(args, spec, data, out)
    stop = StopRequest()
    # a periodic snapshot is what a fault (NaN loss, out of memory) can still save
    run = RunOptions(
        snapshot_seconds=30.0,
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
    )
    # Ctrl-C and SIGTERM stop cooperatively from the start: during the preparation and
    # DA-INR's GRASP prior as during the steps (a background job ignores SIGINT unless
    # a handler is installed, so one is, whatever the shell did)
    message = "stopping (Ctrl-C again to abort without saving)"
    with StopOnCtrlC(stop, message) as ctrl_c:
        if not args.quiet:
            print(
                f"preparing {args.method}: binning, coil maps, density…",
                file=sys.stderr,
                flush=True,
            )
        built: list = []  # the method, to render it after the fit

        def announced(stream):
            for m in stream:
                if isinstance(m, Prepared):
                    built.append(m.method)
                    if not args.quiet:
                        secs = m.method.prep.settings.get("seconds", 0.0)
                        print(f"prepared in {secs:.1f} s", file=sys.stderr, flush=True)
                yield m

        try:
            stream = fit_stream(data, spec, run, stop=stop)
            result = drain_showing_progress(announced(stream), quiet=args.quiet)
        except FitStopped as e:
            print(f"dainr recon: {e}; nothing written", file=sys.stderr)
            return 130
        except FitError as e:
            if e.partial is not None:
                write_recon_h5(out, e.partial, input_path=args.input)
                raise FitError(
                    f"{e} (partial result of step {e.partial.steps_done} written to {out})"
                ) from None
            raise
    if args.upscale != 1.0 or args.frames_between:
        from ..render import render_result

        result = render_result(
            built[0], result, upscale=args.upscale, frames_between=args.frames_between
        )
    write_recon_h5(out, result, input_path=args.input)
    _report(args, result, out)
    return 130 if ctrl_c.interrupted else 0


def _report(args: argparse.Namespace, result, out: Path) -> None:
    state = "partial result (interrupted)" if result.partial else "result"
    if result.ensemble > 1:
        state = f"mean of {result.ensemble} seeds" + (" (partial)" if result.partial else "")
    chosen = ""
    if result.chosen_step is not None and result.history is not None and len(result.history):
        ran = int(result.history[-1, 0])
        chosen = f", state of step {result.chosen_step} of {ran}"
        chosen += " (best held-out loss)" if result.heldout_spokes is not None else ""
        chosen += ", stopped early" if result.early_stopped else ""
    print(
        f"{args.method}: {state} of {result.frames.shape[0]} frames {result.frames.shape[1]}x{result.frames.shape[2]} "
        f"in {result.seconds:.1f} s{chosen} -> {out}",
        file=sys.stderr,
    )


def _run_ensemble(args: argparse.Namespace, spec, source, out: Path) -> int:
    """``--ensemble K``: the members one after the other (a bar each) or on Dask; mean + /std."""

    from ..ensemble import MemberDone, ensemble_stream
    from ..io import write_recon_h5
    from ..loop import StopRequest
    from .progress import StopOnCtrlC, drain_showing_progress

    if args.ensemble < 2:
        raise ValueError(f"--ensemble {args.ensemble}: needs at least 2 fits (1 is a plain fit)")
    for flag, value in (("--checkpoint", args.checkpoint), ("--resume", args.resume)):
        if value is not None:
            raise ValueError(f"{flag} is per fit: leave it out with --ensemble")
    if args.upscale != 1.0 or args.frames_between:
        raise ValueError(
            "--upscale / --frames-between render one fit's model: leave them out with --ensemble"
        )
    stop = StopRequest()

    def announced(stream):
        for m in stream:
            if isinstance(m, MemberDone):
                r = m.result
                print(
                    f"fit {m.index + 1}/{m.count} (seed {args.seed + m.index}) done in {r.seconds:.1f} s, "
                    f"state of step {r.chosen_step}",
                    file=sys.stderr,
                )
            yield m

    message = "stopping: the ensemble keeps the fits finished so far (Ctrl-C again to abort)"
    with StopOnCtrlC(stop, message) as ctrl_c:
        stream = ensemble_stream(
            source,
            spec,
            args.ensemble,
            stop=stop,
            parallel=True if args.ensemble_parallel else None,
        )
        result = drain_showing_progress(announced(stream), quiet=args.quiet)
    write_recon_h5(out, result, input_path=args.input)
    _report(args, result, out)
    return 130 if ctrl_c.interrupted else 0
