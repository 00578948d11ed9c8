"""Draining a fit in a terminal: a progress bar, Ctrl-C as a cooperative stop.

On a terminal the bar redraws in place (tqdm). Written to a log file or a pipe, every
redraw would append a carriage return and the bar again (a 1000-step fit left a single
~110 kB line in a redirected log); there a plain line is written instead whenever the
fit passes another tenth of its steps or :data:`LINE_SECONDS` have gone by.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from typing import IO

from tqdm import tqdm

from ..loop import Done, Message, Progress, Stage, StopRequest
from ..result import Reconstruction

#: a log line at least this often (seconds), besides one per tenth of the steps
LINE_SECONDS = 10.0


class LineProgress:
    """tqdm's small interface used here (``n``, ``update``, ``set_postfix_str``, ``close``),
    written as one short line at a time for files and pipes."""

    def __init__(
        self,
        total: int,
        initial: int = 0,
        file: IO[str] | None = None,
        disable: bool = False,
        every_seconds: float = LINE_SECONDS,
        label: str = "step",
    ):
        self.label = label
        self.total = max(int(total), 1)
        self.n = int(initial)
        self.file = file if file is not None else sys.stderr
        self.disable = disable
        self.every_seconds = every_seconds
        self.postfix = ""
        self._start = self._last_time = time.monotonic()
        self._start_n = self.n
        self._last_tenth = self._tenth(self.n)
        self._written_n = None

    def _tenth(self, n: int) -> int:
        return 10 * n // self.total

    def update(self, k: int = 1) -> None:
        self.n += k
        now = time.monotonic()
        tenth = self._tenth(self.n)
        if tenth > self._last_tenth or now - self._last_time >= self.every_seconds:
            self._last_tenth, self._last_time = tenth, now
            self._write(now)

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def _write(self, now: float) -> None:
        if self.disable or self._written_n == self.n:
            return
        self._written_n = self.n
        elapsed = now - self._start
        done = self.n - self._start_n
        left = elapsed / done * (self.total - self.n) if done > 0 else float("nan")
        eta = f", ~{left:.0f} s left" if left == left and self.n < self.total else ""
        extra = f", {self.postfix}" if self.postfix else ""
        pct = 100 * self.n // self.total
        print(
            f"{self.label} {self.n}/{self.total} ({pct}%){extra}, {elapsed:.0f} s{eta}",
            file=self.file,
            flush=True,
        )

    def close(self) -> None:
        self._write(time.monotonic())  # the last step reached, whether or not it fell on a tenth


def progress_bar(
    total: int,
    initial: int = 0,
    quiet: bool = False,
    file: IO[str] | None = None,
    label: str = "step",
):
    """A tqdm bar on a terminal (or in Jupyter), :class:`LineProgress` lines elsewhere;
    ``label`` names what is counted (``step``, ``prior``)."""
    file = file if file is not None else sys.stderr
    if _is_interactive(file):
        return tqdm(
            total=total,
            initial=initial,
            disable=quiet,
            desc=None if label == "step" else label,
            unit="step" if label == "step" else "it",
            dynamic_ncols=True,
            file=file,
        )
    return LineProgress(total, initial, file=file, disable=quiet, label=label)


def _is_interactive(file: IO[str]) -> bool:
    isatty = getattr(file, "isatty", None)
    if callable(isatty) and isatty():
        return True
    # a notebook's stderr is no tty, but it renders tqdm's redraws as one updating bar
    return "ipykernel" in sys.modules and file in (sys.stderr, sys.stdout)


def progress_text(m: Progress) -> str:
    """``loss L`` and, once the held-out spokes have been scored, ``held-out H, best so far at step N``."""
    text = f"loss {m.loss:.4g}"
    if m.best_step is not None:
        text += f", held-out {m.heldout:.4g}, best so far at step {m.best_step}"
    return text


class StopOnCtrlC:
    """While active, the first Ctrl-C (or SIGTERM, what ``timeout``, ``kill`` and cluster
    schedulers send) requests a cooperative stop and says ``message``; a second aborts.
    ``interrupted`` tells afterwards whether one came."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, stop: StopRequest, message: str):
        self.stop = stop
        self.message = message
        self.interrupted = False
        self._previous: dict = {}

    def _on_sigint(self, signum, frame) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        self.stop.request()
        print(f"\n{self.message}", file=sys.stderr)

    def __enter__(self) -> StopOnCtrlC:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_sigint)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def drain_showing_progress(messages: Iterator[Message], quiet: bool = False) -> Reconstruction:
    """Run ``messages`` to :class:`Done` with a progress display on stderr: a bar for a
    preparation stage ("prior 40/100"), then one for the steps."""
    bar = None
    stage, stage_name = None, None
    try:
        for m in messages:
            if isinstance(m, Stage):
                if m.name != stage_name:
                    if stage is not None:
                        stage.close()
                    stage, stage_name = progress_bar(m.total, quiet=quiet, label=m.name), m.name
                stage.update(m.done - stage.n)
            elif isinstance(m, Progress):
                if stage is not None:
                    stage.close()
                    stage, stage_name = None, None
                if bar is not None and m.step <= bar.n:  # the next fit of an ensemble
                    bar.close()
                    bar = None
                if bar is None:
                    bar = progress_bar(m.total, initial=m.step - 1, quiet=quiet)
                bar.set_postfix_str(progress_text(m), refresh=False)
                bar.update(m.step - bar.n)
            elif isinstance(m, Done):
                return m.result
    finally:
        for b in (stage, bar):
            if b is not None:
                b.close()
    raise RuntimeError("fit ended without a result")
