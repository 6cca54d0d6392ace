"""``GlimpseEnv``: an image as a partially observable world that the agent sees through foveated glimpses.

Each episode draws one image. The agent sees only glimpses (a few square patches around a location, each
coarser than the last), picks where to look next, and says what the image shows. See docs/spec.md for the full
observation / action / reward specification.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from activevision.data.base import ImageDataset
from activevision.envs import rules
from activevision.envs.inputs import check_options, check_seed, plain_array
from activevision.envs.sources import ImageView, open_source
from activevision.envs.spec import WorldSpec
from activevision.render import draw_episode

__all__ = ["GlimpseEnv", "ResetNeeded"]


class ResetNeeded(gym.error.ResetNeeded, ValueError):
    """``step`` was called before ``reset`` or after the episode ended (a ValueError, and Gymnasium's error)."""


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
        start: first glimpse at the "center" or at a "random" location, or "choose": no glimpse at reset (a blank
            one, loc (0, 0), t 0), the first action's location takes it (continuous mode: T + 1 steps).
        context_size: if set, observations also hold the whole image area-averaged to this size.
        order: "random" (seeded draws) or "sequential" (image ``i``, then ``i + stride``, ... from
            ``reset(options={"index": i})``, 0 by default): for sweeps that see every image once.
        stride: step between the images of consecutive episodes in sequential order.
        shift: training augmentation: every episode moves its image by whole pixels ``(dx, dy)``, each drawn
            uniformly from ``[-shift, shift]`` (zero fill); ``reset(options={"shift": (dx, dy)})`` pins it.
        render_mode: None or "rgb_array".
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
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
        render_mode: str | None = None,
    ) -> None:
        self.world = WorldSpec.build(
            dataset,
            patch=patch,
            scales=scales,
            scale_factor=scale_factor,
            n_glimpses=n_glimpses,
            action_mode=action_mode,
            grid=grid,
            glimpse_cost=glimpse_cost,
            reward_mode=reward_mode,
            start=start,
            context_size=context_size,
            order=order,
            stride=stride,
            shift=shift,
        )
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode={render_mode!r} is not allowed: choose None or 'rgb_array'")
        world = self.world
        # What reads the images (in memory, a blank canvas with one image, tables on disk): the one place that
        # knows the kind of store.
        self.source = open_source(dataset, world.geometry, shift=world.shift, context_size=world.context_size)
        self.render_mode = render_mode
        self.dataset = dataset
        self.n_glimpses, self.action_mode, self.grid = world.n_glimpses, world.action_mode, world.grid
        self.height, self.width, self.channels = world.height, world.width, world.channels
        self.num_classes, self.context_size = world.num_classes, world.context_size
        self.observation_space: gym.spaces.Dict = world.observation_space()
        self.action_space = world.action_space()
        self._next_index = 0
        self._active = False
        self._view: ImageView | None = None  # the episode's image, from reset on

    # ------------------------------------------------------------------ episode
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """Draw an image (or ``options={"index": i}``) and its shift (or ``options={"shift": (dx, dy)}``), take
        the first glimpse at ``start``, return it. Every argument is checked before anything changes: a refused
        reset leaves the episode in progress and the generator as they were."""
        seed = check_seed(seed)
        options = check_options(options)
        index, pinned = options.get("index"), self._check_shift(options.get("shift"))
        if index is not None:
            size = len(self.dataset)
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < size:
                raise ValueError(f"options['index']={index!r} is not allowed: use an integer in [0, {size})")
            index = int(index)
        super().reset(seed=seed)
        if index is None and self.world.order == "sequential":
            index = self._next_index
        elif index is None:
            index = int(self.np_random.integers(len(self.dataset)))
        self._next_index = (index + self.world.stride) % len(self.dataset)
        shift = self._draw_shift() if pinned is None else pinned
        self._index = int(index)
        self._view = self.source.view(self._index, shift)
        self._label = self._view.label
        loc = None  # start "choose": the first action places the first glimpse
        if self.world.start == "center":
            loc = (0.0, 0.0)
        elif self.world.start == "random":
            loc = tuple(self.np_random.uniform(-1.0, 1.0, 2).tolist())
        self._context = None if self.context_size is None else self._view.context(self.context_size)
        self._steps = 0
        self._locs: list[tuple[float, float]] = []
        self._active = True
        if loc is None:
            patch, scales = self.world.geometry.patch, self.world.geometry.scales
            self._glimpse = np.zeros((scales, self.channels, patch, patch), dtype=np.float32)
        else:
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
        last = rules.continuous_step(self._steps, self.n_glimpses, self.world.start == "choose")
        reward = float(rules.continuous_reward(correct, last, self.world.reward_mode, self.n_glimpses))
        if not last:
            x, y = float(action[0]), float(action[1])
            self._look((min(max(x, -1.0), 1.0), min(max(y, -1.0), 1.0)))
            return self._observation(), reward, False, False, {}
        return self._observation(repeat=True), reward, True, False, self._final_info(prediction)

    def _step_discrete(self, action: int) -> tuple[dict, float, bool, bool, dict]:
        self._steps += 1
        answered, prediction, glimpsed, done = rules.discrete_step(
            action, self.world.cells, len(self._locs), self.n_glimpses
        )
        if glimpsed:
            self._look(tuple(rules.cell_centres(action, self.grid).tolist()))
        reward = float(rules.discrete_reward(answered, prediction == self._label, glimpsed, self.world.glimpse_cost))
        if not done:
            return self._observation(), reward, False, False, {}
        # An answer, or a glimpse asked for with the budget spent: the episode is over (terminated, see docs/spec.md).
        return self._observation(repeat=True), reward, True, False, self._final_info(prediction)

    # ------------------------------------------------------------------ pieces
    def _check_shift(self, pinned: Any) -> tuple[int, int] | None:
        """``options["shift"]`` as ``(dx, dy)`` within the world's shift, or None when not given."""
        if pinned is None:
            return None
        limit = self.world.shift
        array = plain_array(pinned, f"two integers (dx, dy) in [-{limit}, {limit}]", "options['shift']")
        if array.shape != (2,) or array.dtype.kind not in "iu" or bool((np.abs(array) > limit).any()):
            raise ValueError(
                f"options['shift']={pinned!r} is not allowed: use two integers (dx, dy) in "
                f"[-{limit}, {limit}] (the world's shift)"
            )
        return int(array[0]), int(array[1])

    def _draw_shift(self) -> tuple[int, int]:
        """This episode's ``(dx, dy)``, drawn (``(0, 0)`` when the world's shift is 0)."""
        limit = self.world.shift
        if not limit:
            return 0, 0
        dx, dy = self.np_random.integers(-limit, limit + 1, 2).tolist()
        return dx, dy

    def _look(self, loc: tuple[float, float]) -> None:
        assert self._view is not None  # a glimpse is taken in an episode only
        self._locs.append(loc)
        self._glimpse = self._view.look(loc)

    def _observation(self, repeat: bool = False) -> dict[str, np.ndarray]:
        """The newest glimpse (a copy when ``repeat``: no new glimpse was taken), where and when it was taken.

        Every call returns arrays of its own, so observations a user keeps never change.
        """
        obs: dict[str, np.ndarray] = {
            "glimpse": self._glimpse.copy() if repeat else self._glimpse,
            "loc": np.array(self._locs[-1] if self._locs else (0.0, 0.0), dtype=np.float32),
            "t": np.array([len(self._locs) / self.n_glimpses], dtype=np.float32),
        }
        if self._context is not None:
            obs["context"] = self._context.copy()
        return obs

    def _final_info(self, prediction: int) -> dict[str, Any]:
        self._active = False
        return {
            "label": self._label,
            "prediction": prediction,
            "correct": prediction == self._label,
            "pixels_seen": self.pixels_seen(),
            "glimpses": len(self._locs),
        }

    def pixels_seen(self) -> float:
        """Fraction of the image's pixels covered by at least one finest-scale patch so far this episode (equal to
        ``rules.covered_fraction`` of the glimpse boxes, which the batched env uses: ``tests/test_envs.py``)."""
        return 0.0 if self._view is None else self._view.pixels_seen()

    def _check_continuous(self, action: Any) -> np.ndarray:
        array = action if type(action) is np.ndarray else plain_array(action, self.world.action_help())
        if array.dtype.kind != "f" or array.shape != self.action_space.shape:
            raise ValueError(
                f"action of dtype {array.dtype} and shape {array.shape} is not allowed: use {self.world.action_help()}"
            )
        if not np.isfinite(array).all():
            raise ValueError(f"action {array.tolist()} is not allowed: every entry must be finite (no NaN or inf)")
        return array

    def _check_discrete(self, action: Any) -> int:
        if isinstance(action, (int, np.integer)) and not isinstance(action, bool):  # the common case: no array
            value = int(action)
        else:
            array = plain_array(action, self.world.action_help())
            value = int(array) if array.dtype.kind in "iu" and array.shape == () else -1
        if not 0 <= value < self.world.cells + self.num_classes:
            raise ValueError(
                f"action {action!r} is not allowed: use {self.world.action_help()} (one integer, shape ())"
            )
        return value

    # ------------------------------------------------------------------ pictures
    def render(self) -> np.ndarray | None:
        """The image with each scale's square of the current glimpse and the path of earlier glimpses."""
        if self.render_mode is None:
            gym.logger.warn("render() was called with render_mode=None; pass render_mode='rgb_array' to get frames")
            return None
        if self._view is None:
            raise ResetNeeded("render() was called before reset(): call reset() first")
        locs = np.array(self._locs, dtype=np.float64).reshape(-1, 2)
        return draw_episode(self._view.picture(), self.world.geometry, locs, self.height, self.width)
