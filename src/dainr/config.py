"""Configuration as data: frozen dataclasses that round-trip to JSON, and one typed parser.

Every entry point sets config fields the same way: the CLI's ``--set FIELD=VALUE``, the
plugin's advanced form and the Python API's keywords all go through
:func:`coerce_field`, which checks the value against the field's annotation and says
which field, which value and which type when they disagree.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config field set to a value of the wrong type, or a field that does not exist."""


def to_dict(cfg) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def field_types(cls: type) -> dict[str, Any]:
    """Field name -> resolved annotation of a config dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "null"
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if typing.get_origin(hint) is tuple:
        return "a list"
    return getattr(hint, "__name__", str(hint))


def _coerce(hint: Any, value: Any) -> Any:
    """``value`` as ``hint``, parsing strings; raise TypeError/ValueError when it is not one."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if type(None) in options and (
            value is None
            or (isinstance(value, str) and value.strip().lower() in ("none", "null", ""))
        ):
            return None
        for opt in options:
            if opt is type(None):
                continue
            try:
                return _coerce(opt, value)
            except (TypeError, ValueError):
                continue
        raise ValueError
    if hint is type(None):
        if value is None:
            return None
        raise ValueError
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in (
            "true",
            "1",
            "yes",
            "on",
            "false",
            "0",
            "no",
            "off",
        ):
            return value.strip().lower() in ("true", "1", "yes", "on")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError
    if hint is int:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            f = float(value)  # accepts "1e3"; ValueError otherwise
            if not f.is_integer():
                raise ValueError
            return int(f)
        raise ValueError
    if hint is float:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            return float(value)
        raise ValueError
    if hint is str:
        if isinstance(value, str):
            return value
        raise ValueError
    if origin is tuple:
        if isinstance(value, str):
            value = json.loads(value)
        if not isinstance(value, (list, tuple)):
            raise ValueError
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return tuple(_coerce(item, v) for v in value)
    return value


def coerce_field(cls: type, name: str, value: Any) -> Any:
    """``value`` for field ``name`` of ``cls``, typed; strings are parsed (``"1e-3"``, ``"null"``)."""
    hints = field_types(cls)
    if name not in hints:
        raise ConfigError(
            f"unknown {cls.__name__} field {name!r}; known: {', '.join(sorted(hints))}"
        )
    hint = hints[name]
    try:
        return _coerce(hint, value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{cls.__name__}.{name}: {value!r} is not a valid {_type_name(hint)}"
        ) from None


def parse_assignments(cls: type, items: Iterable[str]) -> dict[str, Any]:
    """``["lr=1e-3", "features=off"]`` -> typed overrides for ``cls`` (the CLI's ``--set``)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects FIELD=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        name = k.strip().replace("-", "_")
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] == '"':  # a JSON string literal, as older docs wrote them
            v = json.loads(v)
        out[name] = coerce_field(cls, name, v)
    return out


def from_dict(cls: type[T], d: Mapping[str, Any]) -> T:
    """Build ``cls`` from ``d``; unknown keys and mistyped values are errors naming them."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(
            f"unknown {cls.__name__} field(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}"
        )
    return cls(**{k: coerce_field(cls, k, v) for k, v in d.items()})


def build_config(cls: type[T], config: Any = None, overrides: Mapping[str, Any] | None = None) -> T:
    """The config of a fit: ``config`` (object, dict or None = defaults) with ``overrides`` set."""
    if config is None:
        base = cls()
    elif isinstance(config, Mapping):
        base = from_dict(cls, config)
    elif isinstance(config, cls):
        base = config
    else:
        raise ConfigError(
            f"expected a {cls.__name__} or a dict of its fields, got {type(config).__name__}"
        )
    if not overrides:
        return base
    return from_dict(cls, to_dict(base) | dict(overrides))


def replace(cfg: T, **changes) -> T:
    """``dataclasses.replace`` that ignores ``None`` values (unset CLI flags)."""
    return dataclasses.replace(cfg, **{k: v for k, v in changes.items() if v is not None})


def to_json(cfg) -> str:
    return json.dumps(to_dict(cfg), sort_keys=True)
