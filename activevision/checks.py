"""Argument checks shared by every layer: a ValueError naming the bad value and what is allowed."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_int", "check_choice"]


def check_int(name: str, value: Any, low: int) -> int:
    """``value`` as an int if it is an integer (not a bool) >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= {low}")
    return int(value)


def check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> Any:
    """``value`` if it is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed: choose one of {', '.join(map(repr, allowed))}")
    return value
