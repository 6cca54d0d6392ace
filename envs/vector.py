"""``GlimpseVectorEnv``: thousands of glimpse worlds as one batched torch computation on any device.

The same worlds as ``GlimpseEnv`` (same ``WorldSpec``, same ``rules``), for training on a GPU: the dataset is put
on the device once (uint8) with its integral images (built once on the device, exact: float32 or int32, i.e.
``4 * C * (H + 1) * (W + 1)`` bytes per image), so a reset only draws indices and a step is a handful of
batched tensor ops with no Python loop over envs. Observations, rewards, flags and infos are torch
tensors on the device (infos follow Gymnasium's vector convention: full-batch values with ``_key`` masks).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from activevision.checks import check_bool, check_device, check_int
from activevision.data.base import ImageDataset
from activevision.data.large import LargeImageDataset
from activevision.envs import rules
from activevision.envs.inputs import check_options, check_seed, plain_tensor
from activevision.envs.spec import WorldSpec
from activevision.render import draw_glimpses, draw_on_overview
from activevision.sensor import SensorState, TorchSensor, context_batch, translate

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
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        self.render_mode = render_mode
        self.autoreset_mode = AutoresetMode(mode)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.dataset = dataset
        self.single_observation_space = world.observation_space()
        self.single_action_space = world.action_space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        geometry = world.geometry
        # A LargeImageDataset stays on disk: glimpses are read from its summed-area tables' memmap on the CPU
        # (only the entries they need), then moved to the device.
        self._large = isinstance(dataset, LargeImageDataset)
        sensor_device = torch.device("cpu") if self._large else self.device
        self.sensor = TorchSensor(geometry.patch, geometry.scales, geometry.scale_factor, device=sensor_device)
        # A blank canvas with one image at an offset (TranslatedDataset) is read from that image directly, so
        # the cost per glimpse and the memory do not grow with the canvas; other worlds are stored whole.
        self._sparse = bool(getattr(dataset, "sparse", False)) and world.context_size is None
        if self._large:
            images, labels = None, dataset.labels
        elif self._sparse:
            pieces, piece_labels = dataset.base.arrays()
            which, offsets = dataset.layout()
            images, labels = pieces, piece_labels[which]
            self._piece = torch.as_tensor(which, device=self.device)
            self._offset = torch.as_tensor(offsets, device=self.device)
        else:
            images, labels = dataset.arrays()
        self.images = None if self._large else torch.as_tensor(images, device=self.device)  # uint8 stays uint8
        self.labels = torch.as_tensor(labels, dtype=torch.long, device=self.device)

        n = self.num_envs
        if self._large:
            self._state = self.sensor.wrap(dataset.tables, world.height, world.width)
        else:
            self._state = self._integral_images()
        self._arange = torch.arange(n, device=self.device)
        self.index = torch.zeros(n, dtype=torch.long, device=self.device)
        self.label = torch.zeros(n, dtype=torch.long, device=self.device)
        self.steps = torch.zeros(n, dtype=torch.long, device=self.device)
        self.glimpses = torch.zeros(n, dtype=torch.long, device=self.device)
        self.locs = torch.zeros((n, world.n_glimpses, 2), dtype=torch.float32, device=self.device)
        self.shift = torch.zeros((n, 2), dtype=torch.long, device=self.device)  # (dx, dy) of each env's image
        self.glimpse = torch.zeros((n, *self.single_observation_space["glimpse"].shape), device=self.device)
        self.context = None  # with context_size: each env's image (at its shift) area-averaged, made at reset
        if world.context_size is not None:
            self.context = torch.zeros((n, *self.single_observation_space["context"].shape), device=self.device)
        self._next_index = self._arange % len(dataset)
        self._needs_reset = torch.zeros(n, dtype=torch.bool, device=self.device)
        check_bool("compile", compile)
        # The whole-batch glimpse has fixed shapes: compiled once when asked, static (faster than dynamic; torch
        # recompiles for each new batch shape up to its recompile limit, then runs eagerly); subsets of envs stay
        # eager. The coverage rule stays eager: compiled it was slower (benchmarks/results/design_measurements.md).
        self._read_all = torch.compile(self._read, dynamic=False) if compile else self._read
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(int(np.random.SeedSequence().generate_state(1)[0]))
        self._started = False

    # ------------------------------------------------------------------ Gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """Start every env: ``seed`` seeds the batch's generator; ``options={"index": (num_envs,) ints}`` pins
        the images of this episode (and, in sequential order, the start of each env's sweep);
        ``options={"shift": (num_envs, 2) ints}`` pins their shifts (worlds with ``shift`` > 0)."""
        seed = check_seed(seed)
        options = check_options(options)
        index, shift = options.get("index"), options.get("shift")
        if index is not None:
            index = self._option_tensor("index", index, f"{self.num_envs} integers in [0, {len(self.dataset)})")
            if index.shape != (self.num_envs,) or bool(((index < 0) | (index >= len(self.dataset))).any()):
                raise ValueError(
                    f"options['index'] is not allowed: use {self.num_envs} integers in "
                    f"[0, {len(self.dataset)}), got {index.tolist() if index.numel() < 20 else index}"
                )
        if shift is not None:
            limit = self.world.shift
            help_text = f"{self.num_envs} pairs of integers (dx, dy) in [-{limit}, {limit}] (the world's shift)"
            shift = self._option_tensor("shift", shift, help_text)
            if shift.shape != (self.num_envs, 2) or bool((shift.abs() > limit).any()):
                raise ValueError(f"options['shift'] is not allowed: use {help_text}")
        if seed is not None:  # only once every option is known to be good: a refused reset changes nothing
            self._generator.manual_seed(seed)
        self._needs_reset.zero_()
        self._reset_envs(self._arange, index, shift)
        self._started = True
        return self._observation(), {"index": self.index.clone(), "_index": torch.ones_like(self._needs_reset)}

    def reset_envs(self, mask: Any) -> dict[str, torch.Tensor]:
        """New episodes for the envs where ``mask`` (``(num_envs,)`` bools) is true, the others going on: the
        observations of every env. For libraries that reset envs one by one (TorchRL's ``_reset`` mask)."""
        if not self._started:
            raise ValueError("reset_envs() was called before reset(): call reset() first")
        mask = plain_tensor(mask, f"{self.num_envs} bools", "mask", self.device)
        if mask.dtype != torch.bool or tuple(mask.shape) != (self.num_envs,):
            raise ValueError(
                f"mask of dtype {mask.dtype} and shape {tuple(mask.shape)} is not allowed: use {self.num_envs} bools"
            )
        ids = mask.nonzero().squeeze(1)
        if len(ids):
            self._reset_envs(ids, None)
            self._needs_reset = self._needs_reset & ~mask
        return self._observation()

    def _option_tensor(self, name: str, value: Any, help_text: str) -> torch.Tensor:
        """A reset option as an integer tensor on the device, or a ValueError naming it."""
        tensor = plain_tensor(value, help_text, f"options[{name!r}]", self.device)
        if tensor.dtype.is_floating_point or tensor.dtype in (torch.bool, torch.complex64, torch.complex128):
            raise ValueError(f"options[{name!r}] of dtype {tensor.dtype} is not allowed: use {help_text}")
        return tensor

    def step(self, actions: Any) -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """One step of every env; see the class docstring for the autoreset modes."""
        if not self._started:
            raise ValueError("step() was called before reset(): call reset() first")
        actions = self._check(actions)
        world, info = self.world, {}
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
        height, width = self.world.height, self.world.width
        for env in range(min(4, self.num_envs)):
            count = int(self.glimpses[env])
            locs = self.locs[env, :count].double().cpu().numpy()
            boxes = self.world.geometry.boxes(locs[-1], height, width) if count else ()
            centres = [((x + 1.0) * width / 2.0, (y + 1.0) * height / 2.0) for x, y in locs.tolist()]
            index = int(self.index[env])
            if self._large:  # drawn on a small overview of the canvas
                frames.append(draw_on_overview(self.dataset.overview(index), boxes, centres))
                continue
            image = self.dataset.canvas_of(index) if self._sparse else self.images[index].cpu().numpy()
            if self.world.shift:
                image = translate(image, *self.shift[env].tolist())
            frames.append(draw_glimpses(image, boxes, centres))
        return tuple(frames)

    # ------------------------------------------------------------------ pieces
    def _integral_images(self, chunk: int = 4096) -> SensorState:
        """Integral images of the whole dataset, built on the device in chunks (int32 where sums fit)."""
        _, height, width, _ = self.images.shape
        integer = self.images.dtype == torch.uint8
        # Sums of uint8 pixels are exact in float32 below 2^24 (images up to 256 x 256), else in int32/int64.
        dtype = (
            torch.float32
            if integer and 255 * height * width < 2**24
            else torch.int32
            if integer and 255 * height * width < 2**31
            else None
        )
        parts = []
        for start in range(0, len(self.images), chunk):
            state = self.sensor.prepare(self.images[start : start + chunk])
            parts.append(state.table if dtype is None else state.table.to(dtype))
        return SensorState(torch.cat(parts), state.divisor, height, width)

    def _read(self, loc: torch.Tensor, index: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """Glimpses at ``loc`` of dataset images ``index``, each moved by ``shift`` pixels."""
        frame = (self.world.height, self.world.width)
        if self._large:
            return self.sensor.glimpse(self._state, loc.double(), index).to(self.device)
        if self._sparse:
            return self.sensor.glimpse(
                self._state, loc.double(), self._piece[index], self._offset[index] + shift, frame
            )
        if self.world.shift:  # the image at its shift in a frame of its own size: zero fill for free
            return self.sensor.glimpse(self._state, loc.double(), index, shift, frame)
        return self.sensor.glimpse(self._state, loc.double(), index)

    def memory_bytes(self) -> dict[str, int]:
        """Device memory of the shared dataset (images, integral images, labels) and per env (a large world's
        images and tables stay on disk: only its labels count)."""
        shared = [self.labels] if self._large else [self.images, self.labels, self._state.table]
        if self._sparse:
            shared += [self._piece, self._offset]
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
        return {"dataset": size(shared), "per_env": size(per_env) // self.num_envs}

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
        if self.context is not None:  # replaced, never written in place (observations already returned stay)
            context = self.context.clone() if len(ids) < self.num_envs else torch.empty_like(self.context)
            context[ids] = context_batch(self.images[index], self.world.context_size, self.shift[ids], self.world.shift)
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
        glimpse[ids] = self._read(loc, self.index[ids], self.shift[ids])
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

    def _check(self, actions: Any) -> torch.Tensor:
        """Actions as a tensor on the device, or a ValueError naming the bad value and what is allowed. Continuous
        actions keep float64 when given so (the answer is the argmax at the precision given, as in the single env);
        tensors are cut from autograd, so the env never holds a caller's graph."""
        world = self.world
        actions = plain_tensor(actions, self._help(), "action", self.device)
        if world.action_mode == "continuous":
            if not actions.dtype.is_floating_point or tuple(actions.shape) != (self.num_envs, 2 + world.num_classes):
                raise ValueError(
                    f"actions of dtype {actions.dtype} and shape {tuple(actions.shape)} are not "
                    f"allowed: use {self._help()}"
                )
            if not bool(torch.isfinite(actions).all()):
                env = int((~torch.isfinite(actions).all(1)).nonzero()[0])
                raise ValueError(
                    f"action of env {env} {actions[env].tolist()} is not allowed: every entry must be "
                    "finite (no NaN or inf)"
                )
            return actions if actions.dtype == torch.float64 else actions.float()
        if (
            actions.dtype.is_floating_point
            or actions.dtype.is_complex
            or actions.dtype == torch.bool
            or actions.shape != (self.num_envs,)
        ):
            raise ValueError(
                f"actions of dtype {actions.dtype} and shape {tuple(actions.shape)} are not allowed: use {self._help()}"
            )
        actions = actions.long()
        bad = (actions < 0) | (actions >= world.cells + world.num_classes)
        if bool(bad.any()):
            env = int(bad.nonzero()[0])
            raise ValueError(f"action {int(actions[env])} of env {env} is not allowed: use {self._help()}")
        return actions

    def _help(self) -> str:
        return f"a batch of {self.num_envs} actions, each {self.world.action_help()}"
