"""``WorldSpec``: the validated options of a glimpse world and its spaces, shared by the single and batched envs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from activevision.checks import check_choice as _check_choice
from activevision.checks import check_int as _check_int
from activevision.checks import check_number
from activevision.data.base import ImageDataset
from activevision.envs import rules
from activevision.sensor import GlimpseGeometry

__all__ = ["WorldSpec", "MAX_GLIMPSES"]

# The largest glimpse budget: an episode's coverage is exact at O(T^3) per env, and the batched env keeps every
# location (num_envs x T x 2), so budgets beyond this would cost more than any policy could use.
MAX_GLIMPSES = 1024


@dataclass(frozen=True)
class WorldSpec:
    """Everything that defines a glimpse world besides its images; built by ``WorldSpec.build``."""

    geometry: GlimpseGeometry
    height: int
    width: int
    channels: int
    num_classes: int
    n_glimpses: int
    action_mode: str
    grid: int
    glimpse_cost: float
    reward_mode: str
    start: str
    context_size: int | None
    order: str
    stride: int
    shift: int

    @classmethod
    def build(
        cls,
        dataset: ImageDataset,
        *,
        patch: int = 8,
        scales: int = 1,
        scale_factor: int = 2,
        n_glimpses: int = 6,
        action_mode: str = "continuous",
        grid: int | None = None,
        glimpse_cost: float = 0.0,
        reward_mode: str = "final",
        start: str = "center",
        context_size: int | None = None,
        order: str = "random",
        stride: int = 1,
        shift: int = 0,
    ) -> WorldSpec:
        """Check every option, naming the bad value and what is allowed."""
        if not isinstance(dataset, ImageDataset):
            raise ValueError(
                f"dataset={type(dataset).__name__} is not allowed: pass an activevision ImageDataset, "
                "e.g. ArrayDataset(images, labels)"
            )
        geometry = GlimpseGeometry(patch, scales, scale_factor)
        height, width, channels = dataset.shape
        if min(height, width) < patch:
            raise ValueError(
                f"images of {height}x{width} are smaller than the finest patch ({patch} pixels): "
                f"use patch <= {min(height, width)}"
            )
        _check_choice("action_mode", action_mode, rules.ACTION_MODES)
        _check_choice("reward_mode", reward_mode, rules.REWARD_MODES)
        if action_mode == "discrete" and reward_mode != "final":
            raise ValueError(
                f"reward_mode={reward_mode!r} is not allowed with action_mode='discrete': "
                "there the episode ends at the answer, so use 'final' (and glimpse_cost)"
            )
        cost = check_number("glimpse_cost", glimpse_cost, low=0.0)
        shift = _check_int("shift", shift, 0)
        if shift >= min(height, width):
            raise ValueError(
                f"shift={shift} is not allowed for {height}x{width} images: use 0 <= shift < {min(height, width)}"
            )
        if context_size is not None and _check_int("context_size", context_size, 1) > min(height, width):
            raise ValueError(
                f"context_size={context_size} is not allowed for {height}x{width} images: use "
                f"1 <= context_size <= {min(height, width)} (the context shrinks the whole image)"
            )
        return cls(
            geometry=geometry,
            height=height,
            width=width,
            channels=channels,
            num_classes=int(dataset.num_classes),
            n_glimpses=_check_int("n_glimpses", n_glimpses, 1, MAX_GLIMPSES),
            action_mode=action_mode,
            grid=_check_int("grid", rules.default_grid(height, width, patch) if grid is None else grid, 1),
            glimpse_cost=cost,
            reward_mode=reward_mode,
            start=_check_choice("start", start, rules.STARTS),
            context_size=None if context_size is None else _check_int("context_size", context_size, 1),
            order=_check_choice("order", order, rules.ORDERS),
            stride=_check_int("stride", stride, 1),
            shift=shift,
        )

    @property
    def cells(self) -> int:
        """Discrete mode: how many glimpse actions (grid cells) come before the answers."""
        return self.grid * self.grid

    def observation_space(self) -> spaces.Dict:
        """Dict of ``glimpse``, ``loc``, ``t`` and, with ``context_size``, ``context``."""
        patch, scales = self.geometry.patch, self.geometry.scales
        obs: dict[str, spaces.Space] = {
            "glimpse": spaces.Box(0.0, 1.0, (scales, self.channels, patch, patch), np.float32),
            "loc": spaces.Box(-1.0, 1.0, (2,), np.float32),
            "t": spaces.Box(0.0, 1.0, (1,), np.float32),
        }
        if self.context_size is not None:
            obs["context"] = spaces.Box(0.0, 1.0, (self.channels, self.context_size, self.context_size), np.float32)
        return spaces.Dict(obs)

    def action_space(self) -> spaces.Space:
        """Box(-1, 1, (2 + K,)) in continuous mode, Discrete(G*G + K) in discrete mode."""
        if self.action_mode == "continuous":
            return spaces.Box(-1.0, 1.0, (2 + self.num_classes,), np.float32)
        return spaces.Discrete(self.cells + self.num_classes)

    def action_help(self) -> str:
        """What an action must be, for error messages."""
        if self.action_mode == "continuous":
            return f"floats of shape {(2 + self.num_classes,)} (x, y, then {self.num_classes} class scores)"
        return (
            f"an integer in [0, {self.cells + self.num_classes}) ({self.cells} grid cells, "
            f"then {self.num_classes} answers)"
        )
