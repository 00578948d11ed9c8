"""A method's configuration dataclass as a form of magicgui widgets, and back.

Every field of the engine's config gets a control, so the "advanced" section always
matches the engine without the plugin repeating any default. Integers and booleans
get typed controls; floats a text box (exact, any magnitude); anything else (optional
values, tuples) a text box read by the engine's typed parser (``null`` for None).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

from magicgui.widgets import CheckBox, Container, LineEdit, SpinBox, Widget

from dainr.config import coerce_field

#: fields shown elsewhere in the widget, not in the advanced form
MAIN_FIELDS = ("steps",)


def config_fields(config_cls: type) -> list[dataclasses.Field]:
    """The fields the form shows: not those shown elsewhere, nor the config's
    ``RESEARCH_FIELDS`` (switches measured worse, kept for the paper and ablations)."""
    hidden = set(MAIN_FIELDS) | set(getattr(config_cls, "RESEARCH_FIELDS", ()))
    return [f for f in dataclasses.fields(config_cls) if f.name not in hidden]


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _control(name: str, hint: Any, value: Any) -> Widget:
    label = name.replace("_", " ")
    if hint is bool:
        return CheckBox(name=name, label=label, value=bool(value))
    if hint is int:
        # Config ints span seeds (2^31) and table sizes: no artificial cap below that.
        return SpinBox(name=name, label=label, value=int(value), min=-(2**31), max=2**31 - 1)
    if hint is float:
        # Text, not a spin box: defaults like 1e-15 would be rounded away by fixed decimals.
        return LineEdit(name=name, label=label, value=repr(float(value)))
    if hint is str:
        return LineEdit(name=name, label=label, value=str(value))
    # Optional values and tuples: text in the syntax the engine's typed parser reads
    # (``null`` for None, a JSON list for a tuple).
    if value is None:
        text = "null"
    elif isinstance(value, (list, tuple)):
        text = json.dumps(list(value))
    else:
        text = str(value)
    return LineEdit(name=name, label=label, value=text)


def build_form(config_cls: type | None) -> Container:
    """A labelled form with one control per config field (empty for None)."""
    form = Container(labels=True)
    if config_cls is None:
        return form
    hints = typing.get_type_hints(config_cls)
    for f in config_fields(config_cls):
        form.append(_control(f.name, hints.get(f.name), _default(f)))
    return form


def read_overrides(form: Container, config_cls: type | None) -> dict[str, Any]:
    """Fields whose control differs from the config's default, as ``make_method`` overrides.

    Raises :class:`dainr.config.ConfigError` (a ValueError) naming the field, the value
    and the expected type when a text control holds something else.
    """
    if config_cls is None:
        return {}
    out: dict[str, Any] = {}
    for f in config_fields(config_cls):
        w = getattr(form, f.name, None)
        if w is None:
            continue
        # The engine's typed parser: the same field, value and type errors as ``--set``.
        value = coerce_field(config_cls, f.name, w.value)
        if value != _default(f):
            out[f.name] = value
    return out


def has_steps(config_cls: type | None) -> bool:
    """Whether the method's config has a ``steps`` field (iterative and learned methods)."""
    return config_cls is not None and any(f.name == "steps" for f in dataclasses.fields(config_cls))


def default_steps(config_cls: type | None) -> int | None:
    """The config's ``steps`` default; None where there is none or the method derives it."""
    if not has_steps(config_cls):
        return None
    value = _default(next(f for f in dataclasses.fields(config_cls) if f.name == "steps"))
    return None if value is None else int(value)
