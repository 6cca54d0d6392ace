"""What the envs accept from a caller, checked the same way by the single and the batched env before any state
changes: actions as plain arrays or tensors, reset seeds and reset options."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from activevision.checks import check_int

__all__ = ["RESET_OPTIONS", "plain_action", "plain_array", "plain_tensor", "check_seed", "check_options"]

RESET_OPTIONS = ("index", "shift")


def plain_action(value: Any, help_text: str, what: str = "action") -> np.ndarray | torch.Tensor:
    """An action (or a batch, or another array-like input named ``what``) as a numpy array, or as a dense torch
    tensor cut from autograd (the env never joins a caller's graph) with half-precision floats widened exactly to
    float32; a ValueError naming the value else."""
    if isinstance(value, torch.Tensor):
        if value.layout != torch.strided or value.device.type == "meta":
            raise ValueError(
                f"{what} in a {value.layout} tensor on {value.device} is not allowed: use {help_text} "
                "(a dense tensor with data, or a numpy array)"
            )
        value = value.detach()
        if value.dtype in (torch.float16, torch.bfloat16):
            value = value.float()
        return value
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):  # ragged nesting, objects numpy cannot hold
        raise ValueError(f"{what} {_short(value)} is not allowed: use {help_text}") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{what} {_short(value)} of dtype {array.dtype} is not allowed: use {help_text}")
    return array


def plain_array(value: Any, help_text: str, what: str = "action") -> np.ndarray:
    """``plain_action`` as a numpy array (the single env's form)."""
    value = plain_action(value, help_text, what)
    return value.cpu().numpy() if isinstance(value, torch.Tensor) else value


def plain_tensor(value: Any, help_text: str, what: str, device: torch.device) -> torch.Tensor:
    """``plain_action`` as a tensor on ``device`` (the batched env's form)."""
    value = plain_action(value, help_text, what)
    tensor = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(value))
    return tensor.to(device)


def check_seed(seed: Any) -> int | None:
    """A reset seed: None or an integer in [0, 2^64) (what numpy's and torch's generators both take)."""
    return None if seed is None else check_int("seed", seed, 0, 2**64 - 1)


def check_options(options: Any) -> dict[str, Any]:
    """Reset options: None or a dict whose keys are among ``RESET_OPTIONS`` (each env checks the values)."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ValueError(
            f"options={_short(options)} is not allowed: use None or a dict with keys among {list(RESET_OPTIONS)}"
        )
    unknown = sorted(map(str, set(options) - set(RESET_OPTIONS)))
    if unknown:
        raise ValueError(f"reset option(s) {unknown} are not allowed: the allowed keys are {list(RESET_OPTIONS)}")
    return options


def _short(value: Any, limit: int = 120) -> str:
    """``repr(value)``, cut to ``limit`` characters (an error message must stay one readable line)."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."
