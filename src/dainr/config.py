"""Configuration as data: frozen dataclasses that round-trip to JSON."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

T = TypeVar("T")


def to_dict(cfg) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], d: dict[str, Any]) -> T:
    """Build ``cls`` from ``d``; unknown keys are an error naming them (typos must not pass)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in d:
            v = d[f.name]
            kwargs[f.name] = tuple(v) if isinstance(v, list) else v
    return cls(**kwargs)


def replace(cfg: T, **changes) -> T:
    """``dataclasses.replace`` that ignores ``None`` values (unset CLI flags)."""
    return dataclasses.replace(cfg, **{k: v for k, v in changes.items() if v is not None})


def to_json(cfg) -> str:
    return json.dumps(to_dict(cfg), sort_keys=True)
