"""DA-INR (dynamic-aware implicit neural representation): deformation + hash grid + features."""

from __future__ import annotations

from .method import DainrConfig, DainrMethod

METHOD = DainrMethod
CONFIG = DainrConfig

__all__ = ["CONFIG", "METHOD", "DainrConfig", "DainrMethod"]
