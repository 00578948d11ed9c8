"""Errors a user can act on: every one names the file, the dataset and what was expected."""

from __future__ import annotations


class DainrError(Exception):
    """Base class of the errors the CLI and the plugin show as one line."""


class InputError(DainrError):
    """A file or array that does not honour the k-space contract."""

    def __init__(self, path: str | None, dataset: str | None, problem: str):
        self.path = path
        self.dataset = dataset
        self.problem = problem
        where = ", ".join(p for p in (str(path) if path else None, dataset) if p)
        super().__init__(f"{where}: {problem}" if where else problem)


class FitError(DainrError):
    """A fit that cannot go on (non-finite loss, out of memory): says what to change.

    ``partial`` holds the last good snapshot as a partial result, when there was one,
    so that callers can still save it.
    """

    def __init__(self, message: str, partial=None):
        super().__init__(message)
        self.partial = partial


class FitStopped(FitError):
    """A stop requested before the first step (during a method's preparation stage):
    there is no result to return."""
