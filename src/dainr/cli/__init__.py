"""The ``dainr`` command: one module per subcommand, each with ``register(subparsers)``.

The CLI owns the terminal: one progress bar, one-line errors, ``--verbose`` for more.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

#: subcommand -> its line in ``dainr --help``, in that order. Each lives in the module
#: ``dainr.cli.<name>_cmd`` (``register(subparsers)`` adds its parser with this help), which
#: is imported only when that subcommand runs: ``dainr --help`` imports none of them.
SUBCOMMANDS = {
    "recon": "reconstruct a k-space file",
    "simulate": "simulate a radial k-space file",
    "eval": "score a reconstruction against a reference",
    "info": "describe a k-space or reconstruction file",
    "maps": "estimate a file's coil maps",
    "demo": "reconstruct the bundled sample (and show it in napari)",
}


def _command_in(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (the top level's options take no values)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: the subcommand it names in full, the others as names only."""
    from dainr import __version__

    chosen = _command_in(sys.argv[1:] if argv is None else argv)

    p = argparse.ArgumentParser(
        prog="dainr",
        description="Dynamic MRI reconstruction from golden-angle radial k-space (DA-INR and baselines).",
    )
    p.add_argument("--version", action="version", version=f"dainr {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log details and show tracebacks")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, line in SUBCOMMANDS.items():
        if name == chosen:
            importlib.import_module(f"dainr.cli.{name}_cmd").register(sub)
        else:
            sub.add_parser(name, help=line)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from dainr.errors import DainrError

    try:
        return int(args.func(args) or 0)
    except (DainrError, ValueError, FileNotFoundError, PermissionError) as e:
        if args.verbose:
            raise
        print(f"dainr {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dainr {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a fault we did not foresee still gets one line, not a traceback
        if args.verbose:
            raise
        print(
            f"dainr {args.command}: unexpected error: {e.__class__.__name__}: {e} "
            "(run with --verbose for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
