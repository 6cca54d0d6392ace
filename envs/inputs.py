"""What the envs accept from a caller, checked the same way by the single and the batched env before any state
changes: actions as plain arrays or tensors, reset seeds and reset options, and their batched forms."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from activevision.checks import check_int
from activevision.envs.spec import WorldSpec

__all__ = [
    "RESET_OPTIONS",
    "plain_action",
    "plain_array",
    "plain_tensor",
    "check_seed",
    "check_options",
    "batched_reset_options",
    "batched_mask",
    "batched_actions",
]

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


def batched_reset_options(
    options: Any, num_envs: int, size: int, shift_limit: int, device: torch.device
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The batched env's reset options as integer tensors on ``device``: ``index`` (``(num_envs,)`` in [0, size))
    and ``shift`` (``(num_envs, 2)`` within the world's shift), each None when not given."""
    options = check_options(options)
    index, shift = options.get("index"), options.get("shift")
    if index is not None:
        index = _integer_option("index", index, f"{num_envs} integers in [0, {size})", device)
        if index.shape != (num_envs,) or bool(((index < 0) | (index >= size)).any()):
            raise ValueError(
                f"options['index'] is not allowed: use {num_envs} integers in [0, {size}), got "
                f"{index.tolist() if index.numel() < 20 else index}"
            )
    if shift is not None:
        help_text = f"{num_envs} pairs of integers (dx, dy) in [-{shift_limit}, {shift_limit}] (the world's shift)"
        shift = _integer_option("shift", shift, help_text, device)
        if shift.shape != (num_envs, 2) or bool((shift.abs() > shift_limit).any()):
            raise ValueError(f"options['shift'] is not allowed: use {help_text}")
    return index, shift


def _integer_option(name: str, value: Any, help_text: str, device: torch.device) -> torch.Tensor:
    """A reset option as an integer tensor on the device, or a ValueError naming it."""
    tensor = plain_tensor(value, help_text, f"options[{name!r}]", device)
    if tensor.dtype.is_floating_point or tensor.dtype in (torch.bool, torch.complex64, torch.complex128):
        raise ValueError(f"options[{name!r}] of dtype {tensor.dtype} is not allowed: use {help_text}")
    return tensor


def batched_mask(mask: Any, num_envs: int, device: torch.device) -> torch.Tensor:
    """``(num_envs,)`` bools on ``device``, or a ValueError naming what was given."""
    mask = plain_tensor(mask, f"{num_envs} bools", "mask", device)
    if mask.dtype != torch.bool or tuple(mask.shape) != (num_envs,):
        raise ValueError(
            f"mask of dtype {mask.dtype} and shape {tuple(mask.shape)} is not allowed: use {num_envs} bools"
        )
    return mask


def batched_actions(actions: Any, world: WorldSpec, num_envs: int, device: torch.device) -> torch.Tensor:
    """A batch of actions as a tensor on ``device``, or a ValueError naming the bad value and what is allowed.
    Continuous actions keep float64 when given so (the answer is the argmax at the precision given, as in the
    single env)."""
    help_text = f"a batch of {num_envs} actions, each {world.action_help()}"
    actions = plain_tensor(actions, help_text, "action", device)
    if world.action_mode == "continuous":
        if not actions.dtype.is_floating_point or tuple(actions.shape) != (num_envs, 2 + world.num_classes):
            raise ValueError(
                f"actions of dtype {actions.dtype} and shape {tuple(actions.shape)} are not allowed: use {help_text}"
            )
        if not bool(torch.isfinite(actions).all()):
            env = int((~torch.isfinite(actions).all(1)).nonzero()[0])
            raise ValueError(
                f"action of env {env} {actions[env].tolist()} is not allowed: every entry must be finite "
                "(no NaN or inf)"
            )
        return actions if actions.dtype == torch.float64 else actions.float()
    integer = not (actions.dtype.is_floating_point or actions.dtype.is_complex or actions.dtype == torch.bool)
    if not integer or actions.shape != (num_envs,):
        raise ValueError(
            f"actions of dtype {actions.dtype} and shape {tuple(actions.shape)} are not allowed: use {help_text}"
        )
    actions = actions.long()
    bad = (actions < 0) | (actions >= world.cells + world.num_classes)
    if bool(bad.any()):
        env = int(bad.nonzero()[0])
        raise ValueError(f"action {int(actions[env])} of env {env} is not allowed: use {help_text}")
    return actions


def _short(value: Any, limit: int = 120) -> str:
    """``repr(value)``, cut to ``limit`` characters (an error message must stay one readable line)."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."
