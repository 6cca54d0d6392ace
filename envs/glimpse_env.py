"""``GlimpseEnv``: an image as a partially observable world that the agent sees through foveated glimpses.

Each episode draws one image. The agent sees only glimpses (a few square patches around a location, each
coarser than the last), picks where to look next, and says what the image shows. See the README for the full
observation / action / reward specification.
"""

from __future__ import annotations

from typing import Any

import cv2
import gymnasium as gym
import numpy as np
from gymnasium import spaces

from activevision.data.base import ImageDataset
from activevision.render import draw_glimpses
from activevision.sensor import NumpySensor
from activevision.envs import rules

__all__ = ["GlimpseEnv", "ResetNeeded"]


class ResetNeeded(gym.error.ResetNeeded, ValueError):
    """``step`` was called before ``reset`` or after the episode ended (a ValueError, and Gymnasium's error)."""


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= {low}")
    return int(value)


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed: choose one of {', '.join(map(repr, allowed))}")
    return value


class GlimpseEnv(gym.Env):
    """A glimpse world over any ``ImageDataset`` (e.g. ``ArrayDataset(images, labels)``).

    Args:
        dataset: images and labels.
        patch: side of every glimpse patch in output pixels.
        scales: patches per glimpse; patch ``s`` covers ``patch * scale_factor**s`` image pixels.
        scale_factor: integer zoom between consecutive scales.
        n_glimpses: the glimpse budget T (the first glimpse is taken at reset).
        action_mode: "continuous" (location + class scores every step) or "discrete" (a grid cell or an answer).
        grid: discrete grid cells per side (default: finest patches needed to tile the image side).
        glimpse_cost: discrete mode, subtracted from the reward for every glimpse taken by a step.
        reward_mode: continuous mode, "final" (1 for a right last answer) or "dense" (1/T per right step).
        start: first glimpse at the "center" or at a "random" location.
        context_size: if set, observations also hold the whole image area-averaged to this size.
        render_mode: None or "rgb_array".
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, dataset: ImageDataset, *, patch: int = 8, scales: int = 1, scale_factor: int = 2,
                 n_glimpses: int = 6, action_mode: str = "continuous", grid: int | None = None,
                 glimpse_cost: float = 0.0, reward_mode: str = "final", start: str = "center",
                 context_size: int | None = None, render_mode: str | None = None) -> None:
        if not isinstance(dataset, ImageDataset):
            raise ValueError(f"dataset={type(dataset).__name__} is not allowed: pass an activevision ImageDataset, "
                             "e.g. ArrayDataset(images, labels)")
        self.dataset = dataset
        self.sensor = NumpySensor(patch, scales, scale_factor)
        self.n_glimpses = _check_int("n_glimpses", n_glimpses, 1)
        self.action_mode = _check_choice("action_mode", action_mode, rules.ACTION_MODES)
        self.reward_mode = _check_choice("reward_mode", reward_mode, rules.REWARD_MODES)
        self.start = _check_choice("start", start, rules.STARTS)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode={render_mode!r} is not allowed: choose None or 'rgb_array'")
        self.render_mode = render_mode
        if action_mode == "discrete" and reward_mode != "final":
            raise ValueError(f"reward_mode={reward_mode!r} is not allowed with action_mode='discrete': "
                             "there the episode ends at the answer, so use 'final' (and glimpse_cost)")
        glimpse_cost = float(glimpse_cost)
        if not np.isfinite(glimpse_cost) or glimpse_cost < 0:
            raise ValueError(f"glimpse_cost={glimpse_cost!r} is not allowed: it must be a finite number >= 0")
        self.glimpse_cost = glimpse_cost

        height, width, channels = dataset.shape
        if min(height, width) < patch:
            raise ValueError(f"images of {height}x{width} are smaller than the finest patch ({patch} pixels): "
                             f"use patch <= {min(height, width)}")
        self.height, self.width, self.channels = height, width, channels
        self.num_classes = int(dataset.num_classes)
        if grid is None:
            grid = rules.default_grid(height, width, patch)
        self.grid = _check_int("grid", grid, 1)
        self._cells = [tuple(c) for c in rules.grid_centres(self.grid).tolist()]
        self.context_size = None if context_size is None else _check_int("context_size", context_size, 1)

        obs = {
            "glimpse": spaces.Box(0.0, 1.0, (scales, channels, patch, patch), np.float32),
            "loc": spaces.Box(-1.0, 1.0, (2,), np.float32),
            "t": spaces.Box(0.0, 1.0, (1,), np.float32),
        }
        if self.context_size is not None:
            obs["context"] = spaces.Box(0.0, 1.0, (channels, self.context_size, self.context_size), np.float32)
        self.observation_space = spaces.Dict(obs)
        if self.action_mode == "continuous":
            self.action_space = spaces.Box(-1.0, 1.0, (2 + self.num_classes,), np.float32)
        else:
            self.action_space = spaces.Discrete(self.grid * self.grid + self.num_classes)
        self._boxes_of = self.sensor.geometry.boxes
        self._active = False
        self._state = None

    # ------------------------------------------------------------------ episode
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """Draw an image (or ``options={"index": i}``), take the first glimpse at ``start``, return it."""
        super().reset(seed=seed)
        index = None if options is None else options.get("index")
        if index is None:
            index = int(self.np_random.integers(len(self.dataset)))
        elif isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(self.dataset):
            raise ValueError(f"options['index']={index!r} is not allowed: use an integer in [0, {len(self.dataset)})")
        image, self._label = self.dataset.get(int(index))
        self._image, self._index = image, int(index)
        self._state = self.sensor.prepare(image)
        if self.start == "center":
            loc = (0.0, 0.0)
        else:
            loc = tuple(self.np_random.uniform(-1.0, 1.0, 2).tolist())
        self._context = None
        if self.context_size is not None:
            values = image.astype(np.float32) * np.float32(1.0 / 255.0 if image.dtype == np.uint8 else 1.0)
            small = cv2.resize(values, (self.context_size, self.context_size), interpolation=cv2.INTER_AREA)
            self._context = np.ascontiguousarray(
                small.reshape(self.context_size, self.context_size, self.channels).transpose(2, 0, 1))
        self._steps = 0
        self._locs = []
        self._seen = np.zeros((self.height, self.width), dtype=bool)
        self._active = True
        self._look(loc)
        return self._observation(), {"index": self._index}

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        if not self._active:
            raise ResetNeeded("step() was called before reset() or after the episode ended: call reset() first")
        if self.action_mode == "continuous":
            return self._step_continuous(self._check_continuous(action))
        return self._step_discrete(self._check_discrete(action))

    def _step_continuous(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        self._steps += 1
        prediction = int(action[2:].argmax())
        correct = prediction == self._label
        last = self._steps >= self.n_glimpses
        reward = float(rules.continuous_reward(correct, last, self.reward_mode, self.n_glimpses))
        if not last:
            x, y = float(action[0]), float(action[1])
            self._look((min(max(x, -1.0), 1.0), min(max(y, -1.0), 1.0)))
            return self._observation(), reward, False, False, {}
        return self._observation(repeat=True), reward, True, False, self._final_info(prediction)

    def _step_discrete(self, action: int) -> tuple[dict, float, bool, bool, dict]:
        self._steps += 1
        cells = self.grid * self.grid
        answered = action >= cells
        prediction = action - cells if answered else -1
        glimpsed = not answered and len(self._locs) < self.n_glimpses
        if glimpsed:
            self._look(self._cells[action])
        reward = float(rules.discrete_reward(answered, prediction == self._label, glimpsed, self.glimpse_cost))
        if glimpsed:
            return self._observation(), reward, False, False, {}
        # An answer, or a glimpse asked for with the budget spent: the episode is over (terminated, see README).
        return self._observation(repeat=True), reward, True, False, self._final_info(prediction)

    # ------------------------------------------------------------------ pieces
    def _look(self, loc: tuple[float, float]) -> None:
        self._glimpse, (x0, y0, x1, y1) = self.sensor.look(self._state, loc)
        self._locs.append(loc)
        self._seen[y0:y1, x0:x1] = True

    def _observation(self, repeat: bool = False) -> dict[str, np.ndarray]:
        """The newest glimpse (a copy when ``repeat``: no new glimpse was taken), where and when it was taken.

        Every call returns arrays of its own, so observations a user keeps never change.
        """
        obs = {
            "glimpse": self._glimpse.copy() if repeat else self._glimpse,
            "loc": np.array(self._locs[-1], dtype=np.float32),
            "t": np.array([len(self._locs) / self.n_glimpses], dtype=np.float32),
        }
        if self._context is not None:
            obs["context"] = self._context.copy()
        return obs

    def _final_info(self, prediction: int) -> dict[str, Any]:
        self._active = False
        return {"label": self._label, "prediction": prediction, "correct": prediction == self._label,
                "pixels_seen": self.pixels_seen(), "glimpses": len(self._locs)}

    def pixels_seen(self) -> float:
        """Fraction of the image's pixels covered by at least one finest-scale patch so far this episode.

        Counted on a per-episode mask (cheapest for one env); equal to ``rules.covered_fraction`` of the
        glimpse boxes, which the batched env uses (``tests/test_envs.py`` checks they agree).
        """
        return float(np.count_nonzero(self._seen)) / self._seen.size

    def _check_continuous(self, action: Any) -> np.ndarray:
        array = np.asarray(action)
        if array.dtype.kind != "f":
            raise ValueError(f"action dtype {array.dtype} is not allowed: use floats, shape {self.action_space.shape} "
                             f"(x, y, then {self.num_classes} class scores)")
        if array.shape != self.action_space.shape:
            raise ValueError(f"action of shape {array.shape} is not allowed: use shape {self.action_space.shape} "
                             f"(x, y, then {self.num_classes} class scores)")
        if not np.isfinite(array).all():
            raise ValueError(f"action {array.tolist()} is not allowed: every entry must be finite (no NaN or inf)")
        return array

    def _check_discrete(self, action: Any) -> int:
        array = np.asarray(action)
        if array.dtype.kind not in "iu" or array.size != 1:
            raise ValueError(f"action {action!r} is not allowed: use one integer in [0, {self.action_space.n})")
        value = int(array.reshape(()))
        if not 0 <= value < self.action_space.n:
            raise ValueError(f"action {value} is not allowed: use an integer in [0, {self.action_space.n}) "
                             f"({self.grid * self.grid} grid cells, then {self.num_classes} answers)")
        return value

    # ------------------------------------------------------------------ pictures
    def render(self) -> np.ndarray | None:
        """The image with each scale's square of the current glimpse and the path of earlier glimpses."""
        if self.render_mode is None:
            gym.logger.warn("render() was called with render_mode=None; pass render_mode='rgb_array' to get frames")
            return None
        if self._state is None:
            raise ResetNeeded("render() was called before reset(): call reset() first")
        boxes = self._boxes_of(np.array(self._locs[-1]), self.height, self.width)
        centres = [((x + 1.0) * self.width / 2.0, (y + 1.0) * self.height / 2.0) for x, y in self._locs]
        return draw_glimpses(self._image, boxes, centres)
