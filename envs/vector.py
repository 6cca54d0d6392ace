"""``GlimpseVectorEnv``: thousands of glimpse worlds as one batched torch computation on any device.

The same worlds as ``GlimpseEnv`` (same ``WorldSpec``, same ``rules``), for training on a GPU: the images are read
by a glimpse source on the device (``activevision.envs.sources``: in memory, integral images built once on the
device), so a reset only draws indices and a step is a handful of batched tensor ops with no Python loop over
envs. Observations, rewards, flags and infos are torch tensors on the device (infos follow Gymnasium's vector
convention: full-batch values with ``_key`` masks).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from activevision.checks import check_bool, check_device, check_int
from activevision.data.base import ImageDataset
from activevision.envs import rules
from activevision.envs.inputs import batched_actions, batched_mask, batched_reset_options, check_seed
from activevision.envs.sources import open_source
from activevision.envs.spec import WorldSpec
from activevision.render import draw_episode

__all__ = ["GlimpseVectorEnv"]

AUTORESET_MODES = (AutoresetMode.SAME_STEP.value, AutoresetMode.NEXT_STEP.value)
# More envs than any device holds the per-env state of (it grows with num_envs x n_glimpses): a clear error, not
# an allocator's.
MAX_ENVS = 1 << 24


class GlimpseVectorEnv(VectorEnv):
    """``num_envs`` copies of a glimpse world over one dataset, batched on ``device``.

    Takes every ``GlimpseEnv`` option (``patch``, ``scales``, ``n_glimpses``, ``action_mode``, ...), plus
    ``device`` and ``autoreset_mode`` ("SameStep", default: an ended env's next episode starts in the same step,
    its last observation and info in ``info["final_obs"]`` / ``info["final_info"]``; or "NextStep", Gymnasium's
    default: the step after the end resets it and ignores its action). In "sequential" order env ``j`` shows
    images ``j, j + num_envs, ...`` (``stride`` defaults to ``num_envs``), so a batch sweeps a dataset once.
    ``compile=True`` compiles the whole-batch glimpse with ``torch.compile`` (fixed shapes, so it compiles once:
    tens of seconds at start, then a glimpse about 3x faster on CPU).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4, "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self,
        dataset: ImageDataset,
        num_envs: int,
        *,
        device: str | torch.device = "cpu",
        autoreset_mode: str | AutoresetMode = "SameStep",
        render_mode: str | None = None,
        compile: bool = False,
        **world_options: Any,
    ) -> None:
        check_int("num_envs", num_envs, 1, MAX_ENVS)
        device = check_device(device)
        mode = autoreset_mode.value if isinstance(autoreset_mode, AutoresetMode) else autoreset_mode
        if mode not in AUTORESET_MODES:
            raise ValueError(f"autoreset_mode={autoreset_mode!r} is not allowed: choose one of {AUTORESET_MODES}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r} is not allowed: choose None or 'rgb_array'")
        world_options.setdefault("stride", int(num_envs))
        self.world = world = WorldSpec.build(dataset, **world_options)
        check_bool("compile", compile)
        # What reads the images (in memory, a blank canvas with one image, tables on disk): the one place that
        # knows the kind of store.
        self.device = torch.device(device)
        self.source = open_source(
            dataset, world.geometry, shift=world.shift, context_size=world.context_size, device=self.device
        )
        self.num_envs = int(num_envs)
        self.render_mode = render_mode
        self.autoreset_mode = AutoresetMode(mode)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.dataset = dataset
        self.single_observation_space: spaces.Dict = world.observation_space()
        self.single_action_space = world.action_space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        self.labels = self.source.labels()
        n = self.num_envs
        self._arange = torch.arange(n, device=self.device)
        self.index = torch.zeros(n, dtype=torch.long, device=self.device)
        self.label = torch.zeros(n, dtype=torch.long, device=self.device)
        self.steps = torch.zeros(n, dtype=torch.long, device=self.device)
        self.glimpses = torch.zeros(n, dtype=torch.long, device=self.device)
        self.locs = torch.zeros((n, world.n_glimpses, 2), dtype=torch.float32, device=self.device)
        self.shift = torch.zeros((n, 2), dtype=torch.long, device=self.device)  # (dx, dy) of each env's image
        patch, scales = world.geometry.patch, world.geometry.scales
        self.glimpse = torch.zeros((n, scales, world.channels, patch, patch), device=self.device)
        self.context = None  # with context_size: each env's image (at its shift) area-averaged, made at reset
        if world.context_size is not None:
            size = world.context_size
            self.context = torch.zeros((n, world.channels, size, size), device=self.device)
        self._next_index = self._arange % len(dataset)
        self._needs_reset = torch.zeros(n, dtype=torch.bool, device=self.device)
        # The whole-batch glimpse has fixed shapes: compiled once when asked, static (faster than dynamic; torch
        # recompiles for each new batch shape up to its recompile limit, then runs eagerly); subsets of envs stay
        # eager. The coverage rule stays eager: compiled it was slower (benchmarks/results/design_measurements.md).
        self._read_all = torch.compile(self.source.glimpses, dynamic=False) if compile else self.source.glimpses
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(int(np.random.SeedSequence().generate_state(1)[0]))
        self.started = False  # until the first reset

    # ------------------------------------------------------------------ Gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """Start every env: ``seed`` seeds the batch's generator; ``options={"index": (num_envs,) ints}`` pins
        the images of this episode (and, in sequential order, the start of each env's sweep);
        ``options={"shift": (num_envs, 2) ints}`` pins their shifts (worlds with ``shift`` > 0)."""
        seed = check_seed(seed)
        index, shift = batched_reset_options(options, self.num_envs, len(self.dataset), self.world.shift, self.device)
        if seed is not None:  # only once every option is known to be good: a refused reset changes nothing
            self._generator.manual_seed(seed)
        self._needs_reset.zero_()
        self._reset_envs(self._arange, index, shift)
        self.started = True
        return self._observation(), {"index": self.index.clone(), "_index": torch.ones_like(self._needs_reset)}

    def reset_envs(self, mask: Any) -> dict[str, torch.Tensor]:
        """New episodes for the envs where ``mask`` (``(num_envs,)`` bools) is true, the others going on: the
        observations of every env. For libraries that reset envs one by one (TorchRL's ``_reset`` mask)."""
        if not self.started:
            raise ValueError("reset_envs() was called before reset(): call reset() first")
        mask = batched_mask(mask, self.num_envs, self.device)
        ids = mask.nonzero().squeeze(1)
        if len(ids):
            self._reset_envs(ids, None)
            self._needs_reset = self._needs_reset & ~mask
        return self._observation()

    def step(self, actions: Any) -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """One step of every env; see the class docstring for the autoreset modes."""
        if not self.started:
            raise ValueError("step() was called before reset(): call reset() first")
        actions = batched_actions(actions, self.world, self.num_envs, self.device)
        world, info = self.world, dict[str, Any]()
        resetting = None  # NextStep only: envs whose previous step ended start anew now, ignoring their action
        if self.autoreset_mode == AutoresetMode.NEXT_STEP and bool(self._needs_reset.any()):
            resetting = self._needs_reset
            self._reset_envs(resetting.nonzero().squeeze(1), None)
            info.update({"index": torch.where(resetting, self.index, 0), "_index": resetting})
        self.steps += 1 if resetting is None else ~resetting
        if world.action_mode == "continuous":
            prediction = actions[:, 2:].argmax(1)
            last = rules.continuous_step(self.steps, world.n_glimpses, world.start == "choose")
            glimpsed = ~last
            loc = actions[:, :2].clamp(-1.0, 1.0)
        else:
            answered, prediction, glimpsed, last = rules.discrete_step(
                actions, world.cells, self.glimpses, world.n_glimpses
            )
            loc = rules.cell_centres(actions.clamp(max=world.cells - 1), world.grid).float()
        correct = prediction == self.label
        if resetting is not None:  # their actions are ignored: no glimpse, no end, no reward
            last, glimpsed = last & ~resetting, glimpsed & ~resetting
        if world.action_mode == "continuous":
            reward = rules.continuous_reward(correct, last, world.reward_mode, world.n_glimpses).float()
        else:
            reward = rules.discrete_reward(answered, correct, glimpsed, world.glimpse_cost).float()
        if resetting is not None:
            reward = reward * ~resetting
        if bool(glimpsed.all()):
            self._look(self._arange, loc)
        elif bool(glimpsed.any()):
            ids = glimpsed.nonzero().squeeze(1)
            self._look(ids, loc[ids])
        obs = self._observation()
        terminated, truncated = last, torch.zeros_like(last)
        if bool(last.any()):
            final = self._final_info(last, prediction, correct)
            if self.autoreset_mode == AutoresetMode.SAME_STEP:
                info.update({"final_obs": obs, "_final_obs": last, "final_info": final, "_final_info": last})
                self._reset_envs(last.nonzero().squeeze(1), None)
                obs = self._observation()
                info.update({"index": torch.where(last, self.index, 0), "_index": last})
            else:
                info.update(final)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._needs_reset = last  # these envs start their next episode at the next step
        return obs, reward, terminated, truncated, info

    def render(self) -> tuple[np.ndarray, ...] | None:
        """Frames of the first (up to 4) envs: image, current glimpse's squares, path of earlier glimpses."""
        if self.render_mode is None:
            return None
        frames = []
        for env in range(min(4, self.num_envs)):
            locs = self.locs[env, : int(self.glimpses[env])].double().cpu().numpy()
            picture = self.source.picture(int(self.index[env]), tuple(self.shift[env].tolist()))
            frames.append(draw_episode(picture, self.world.geometry, locs, self.world.height, self.world.width))
        return tuple(frames)

    # ------------------------------------------------------------------ pieces
    def memory_bytes(self) -> dict[str, int]:
        """Device memory of what every env shares (the source's images, tables and labels: a huge-image world's
        images and tables stay on disk) and of each env's own state."""
        per_env = [
            self.index,
            self.label,
            self.steps,
            self.glimpses,
            self.locs,
            self.shift,
            self.glimpse,
            self._next_index,
            self._needs_reset,
        ] + ([self.context] if self.context is not None else [])
        size = lambda tensors: sum(t.numel() * t.element_size() for t in tensors)  # noqa: E731
        return {"dataset": self.source.memory_bytes(), "per_env": size(per_env) // self.num_envs}

    def _reset_envs(self, ids: torch.Tensor, index: torch.Tensor | None, shift: torch.Tensor | None = None) -> None:
        """New episodes for envs ``ids``: draw (or take) images and shifts, first glimpse."""
        if index is None:
            if self.world.order == "sequential":
                index = self._next_index[ids]
            else:
                index = torch.randint(len(self.dataset), (len(ids),), generator=self._generator, device=self.device)
        else:
            index = index.long()
        self._next_index[ids] = (index + self.world.stride) % len(self.dataset)
        self.index[ids], self.label[ids] = index, self.labels[index]
        self.steps[ids] = 0
        self.glimpses[ids] = 0
        if shift is not None:
            self.shift[ids] = shift.long()
        elif self.world.shift:
            limit = self.world.shift
            self.shift[ids] = torch.randint(
                -limit, limit + 1, (len(ids), 2), generator=self._generator, device=self.device
            )
        if self.context is not None and self.world.context_size is not None:  # replaced, never written in place
            context = self.context.clone() if len(ids) < self.num_envs else torch.empty_like(self.context)
            context[ids] = self.source.contexts(index, self.shift[ids], self.world.context_size)
            self.context = context
        if len(ids) == self.num_envs:
            ids = self._arange  # lets _look take its whole-batch path
        if self.world.start == "choose":  # no glimpse yet: a blank one (replaced, never written in place)
            glimpse = torch.zeros_like(self.glimpse) if len(ids) == self.num_envs else self.glimpse.clone()
            glimpse[ids] = 0.0
            self.glimpse = glimpse
            return
        if self.world.start == "center":
            loc = torch.zeros((len(ids), 2), device=self.device)
        else:
            loc = torch.rand((len(ids), 2), generator=self._generator, device=self.device) * 2.0 - 1.0
        self._look(ids, loc)

    def _look(self, ids: torch.Tensor, loc: torch.Tensor) -> None:
        """Envs ``ids`` (with budget left) take a glimpse at ``loc`` (one row per id).

        The glimpse batch is replaced, never written in place, so observations already returned never change.
        """
        loc = loc.double()  # one dtype into the (compiled) read, whatever the caller's precision
        if len(ids) == self.num_envs:  # every env (the common case): no gathers or scatters of rows
            self.glimpse = self._read_all(loc, self.index, self.shift)
            self.locs[self._arange, self.glimpses] = loc.float()
            self.glimpses += 1
            return
        glimpse = self.glimpse.clone()
        glimpse[ids] = self.source.glimpses(loc, self.index[ids], self.shift[ids])
        self.glimpse = glimpse
        self.locs[ids, self.glimpses[ids]] = loc.float()
        self.glimpses[ids] += 1

    def _observation(self) -> dict[str, torch.Tensor]:
        obs = {
            "glimpse": self.glimpse,  # replaced after every glimpse, never written in place
            "loc": self.locs[self._arange, (self.glimpses - 1).clamp(min=0)] * (self.glimpses > 0)[:, None],
            "t": (self.glimpses.float() / self.world.n_glimpses)[:, None],
        }
        if self.context is not None:
            obs["context"] = self.context
        return obs

    def _final_info(self, last: torch.Tensor, prediction: torch.Tensor, correct: torch.Tensor) -> dict:
        """Episode-end info of the envs in ``last``, Gymnasium vector style (values, ``_key`` masks)."""
        ids = last.nonzero().squeeze(1)
        world = self.world
        boxes = world.geometry.boxes(self.locs[ids].double(), world.height, world.width)[..., 0, :]  # finest scale
        seen = torch.zeros(self.num_envs, dtype=torch.float64, device=self.device)
        seen[ids] = rules.covered_fraction(boxes, self.glimpses[ids], world.height, world.width)
        values = {
            "label": self.label,
            "prediction": prediction,
            "correct": correct,
            "pixels_seen": seen,
            "glimpses": self.glimpses,
        }
        info = {}
        for key, value in values.items():
            info[key] = torch.where(last, value, torch.zeros_like(value))
            info[f"_{key}"] = last
        return info
