"""Reconstruction methods: one module each, all driven by :func:`dainr.loop.run_fit`.

Each module defines ``METHOD`` (a :class:`dainr.loop.Method`) and ``CONFIG`` (a frozen
dataclass with the published defaults). Modules are imported on first use so that
asking for the gridding baseline never pays for a network's imports.
"""

from __future__ import annotations

import importlib
import importlib.util

#: name -> module; the order is the order users see them in.
REGISTRY = {
    "dainr": "dainr.methods.dainr",
    "nufft": "dainr.methods.nufft",
    "grasp": "dainr.methods.grasp",
    "tddip": "dainr.methods.tddip",
    "hashinr": "dainr.methods.hashinr",
}
DEFAULT_METHOD = "dainr"


def available_methods() -> list[str]:
    """Registered methods whose module exists in this installation."""
    return [n for n, mod in REGISTRY.items() if importlib.util.find_spec(mod) is not None]


def get_method(name: str):
    """``(MethodClass, ConfigClass)`` for ``name``."""
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}: choose one of {', '.join(available_methods())}")
    try:
        mod = importlib.import_module(REGISTRY[name])
    except ModuleNotFoundError as e:
        if e.name == REGISTRY[name]:
            raise ValueError(f"method {name!r} is not available in this installation") from None
        raise
    return mod.METHOD, mod.CONFIG
