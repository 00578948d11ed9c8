"""Checkpoints of a fit and the random state they carry, so that a resumed fit equals
an uninterrupted one."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .config import to_dict

if TYPE_CHECKING:
    from .methods.base import Method


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    s = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def set_rng_state(s: dict[str, Any]) -> None:
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def mismatch_message(path: str | os.PathLike, saved: dict[str, Any], method: Method) -> str:
    """Why a checkpoint's state does not load: the configuration fields that differ."""
    now = to_dict(method.config)
    diff = sorted(k for k in set(now) | set(saved) if now.get(k) != saved.get(k))
    fields = ", ".join(f"{k} {saved.get(k)!r} -> {now.get(k)!r}" for k in diff[:6])
    return (
        f"{path}: the checkpoint's state does not fit this {method.name} configuration"
        + (f" (it was written with {fields})" if fields else "")
        + "; resume with the configuration it was written with"
    )


def save_checkpoint(
    path: str | os.PathLike,
    method: Method,
    step: int,
    losses: list[float],
    selection: dict[str, Any] | None = None,
) -> None:
    """Model, optimiser, RNG, step and held-out bookkeeping, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    torch.save(
        {
            "method": method.name,
            "config": to_dict(method.config),
            "step": step,
            "losses": list(losses),
            "state": method.state_dict(),
            "rng": rng_state(),
            "selection": selection,
        },
        tmp,
    )
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    from .errors import InputError

    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "no such checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise InputError(
            path, None, f"not a readable checkpoint ({e.__class__.__name__})"
        ) from None


__all__ = [
    "load_checkpoint",
    "mismatch_message",
    "rng_state",
    "save_checkpoint",
    "seed_everything",
    "set_rng_state",
]
