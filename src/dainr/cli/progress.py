"""Draining a fit in a terminal: a progress bar, Ctrl-C as a cooperative stop."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator

from tqdm import tqdm

from ..loop import Done, Message, Progress, StopRequest
from ..result import Reconstruction


def drain_with_progress(messages: Iterator[Message], stop: StopRequest, quiet: bool = False) -> tuple[Reconstruction, bool]:
    """Run ``messages`` to :class:`Done`; the first Ctrl-C requests a stop, a second aborts.

    Returns the result and whether the user interrupted.
    """
    interrupted = False

    def on_sigint(signum, frame):
        nonlocal interrupted
        if interrupted:
            raise KeyboardInterrupt
        interrupted = True
        stop.request()
        print("\nstopping after this step (Ctrl-C again to abort without saving)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    bar = None
    try:
        for m in messages:
            if isinstance(m, Progress):
                if bar is None:
                    bar = tqdm(total=m.total, initial=m.step - 1, disable=quiet, unit="step", dynamic_ncols=True, file=sys.stderr)
                bar.update(m.step - bar.n)
                bar.set_postfix_str(f"loss {m.loss:.4g}")
            elif isinstance(m, Done):
                return m.result, interrupted
    finally:
        if bar is not None:
            bar.close()
        signal.signal(signal.SIGINT, previous)
    raise RuntimeError("fit ended without a result")
