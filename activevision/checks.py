"""Argument checks shared by every layer: a ValueError naming the bad value and what is allowed."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "check_int",
    "check_bool",
    "check_choice",
    "check_number",
    "check_device",
    "check_field_types",
    "setting",
    "check_settings",
]


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int if it is an integer (not a bool) >= ``low`` (and <= ``high`` when given)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < low
        or (high is not None and value > high)
    ):
        allowed = f"in [{low}, {high:,}]" if high is not None else f">= {low}"
        raise ValueError(f"{name}={value!r} is not allowed: it must be an integer {allowed}")
    return int(value)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is True or False (not 0, 1 or a string)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name}={value!r} is not allowed: use True or False")
    return value


def check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> Any:
    """``value`` if it is one of ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed: choose one of {', '.join(map(repr, allowed))}")
    return value


def check_number(name: str, value: Any, low: float = -math.inf, high: float = math.inf) -> float:
    """``value`` as a float if it is a finite real number (not a bool) in ``[low, high]``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise ValueError(f"{name}={value!r} is not allowed: it must be a finite number in [{low}, {high}]")
    return float(value)


def check_device(device: Any) -> torch.device:
    """``device`` as a ``torch.device`` this process can use: "cpu", "cuda" or "cuda:N" (string or torch.device)."""
    import torch

    help_text = "use 'cpu', 'cuda' or 'cuda:N' (a string or a torch.device)"
    if isinstance(device, torch.device):
        resolved = device
    elif isinstance(device, str):
        try:
            resolved = torch.device(device)
        except RuntimeError:
            raise ValueError(f"device={device!r} is not allowed: {help_text}") from None
    else:
        raise ValueError(f"device={device!r} is not allowed: {help_text}")
    if resolved.type == "cpu":
        return resolved
    if resolved.type != "cuda":
        raise ValueError(f"device={device!r} is not allowed: {help_text}")
    if not torch.cuda.is_available():
        raise ValueError(f"device={device!r} is not allowed here: this torch has no CUDA device; use 'cpu'")
    if resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ValueError(
            f"device={device!r} is not allowed: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    return resolved


def check_field_types(instance: Any, coerce: bool = True) -> None:
    """Every field of a dataclass ``instance`` of the type its annotation gives (a JSON file or a caller may hold
    anything): a bool is never taken for a number, a float field takes a finite int or float (stored as float
    unless ``coerce`` is False)."""
    hints = typing.get_type_hints(type(instance))
    for item in dataclasses.fields(instance):
        value, hint = getattr(instance, item.name), hints[item.name]
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        kinds = typing.get_args(hint) if union else (hint,)
        if value is None and type(None) in kinds:
            continue
        if isinstance(value, bool) != (bool in kinds):
            ok = False
        elif float in kinds:
            ok = isinstance(value, (int, float)) and math.isfinite(value)
        else:
            ok = isinstance(value, tuple(typing.get_origin(kind) or kind for kind in kinds))
        if not ok:
            names = " or ".join(
                "None" if kind is type(None) else (typing.get_origin(kind) or kind).__name__ for kind in kinds
            )
            raise ValueError(f"{item.name}={value!r} is not allowed: use {names}")
        if coerce and float in kinds and isinstance(value, int):
            setattr(instance, item.name, float(value))


def setting(
    default: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
    below: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A dataclass field with the values it allows (``check_settings`` checks them): integers and numbers in
    ``[low, high]``, numbers ``> above`` and ``< below``, or one of ``choices``."""
    rules = {"low": low, "high": high, "above": above, "below": below, "choices": choices}
    return dataclasses.field(default=default, metadata={k: v for k, v in rules.items() if v is not None})


def check_settings(instance: Any) -> None:
    """Every field of a dataclass ``instance``: its type (``check_field_types``, changing nothing) and the values
    its ``setting`` allows; a ValueError naming the first bad one."""
    check_field_types(instance, coerce=False)
    for item in dataclasses.fields(instance):
        value, rules = getattr(instance, item.name), item.metadata
        if value is None or not rules:
            continue
        if "choices" in rules:
            check_choice(item.name, value, rules["choices"])
        elif isinstance(value, int) and not isinstance(value, bool) and "above" not in rules and "below" not in rules:
            check_int(item.name, value, int(rules.get("low", -(2**63))), rules.get("high"))
        else:
            check_number(item.name, value, rules.get("low", -math.inf), rules.get("high", math.inf))
            if "above" in rules and not value > rules["above"]:
                raise ValueError(f"{item.name}={value!r} is not allowed: it must be > {rules['above']}")
            if "below" in rules and not value < rules["below"]:
                raise ValueError(f"{item.name}={value!r} is not allowed: it must be < {rules['below']}")
