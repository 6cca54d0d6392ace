"""TorchRL adapter: any glimpse world as a batched TorchRL ``EnvBase`` whose tensors stay on its device.

``GlimpseTorchRLEnv("GlimpseMNIST-v0", num_envs=1024, device="cuda")`` wraps the batched ``GlimpseVectorEnv``:
batch size ``(num_envs,)``, specs from the world's spaces (``Bounded`` observations, ``Bounded`` continuous or
``Categorical`` discrete actions), ``reward``/``done``/``terminated``/``truncated`` of shape ``(num_envs, 1)``.
Finished envs are reset one by one through TorchRL's ``_reset`` mask. Needs the ``torchrl`` extra.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

import activevision  # noqa: F401  (registers the ids)
from activevision.checks import check_device
from activevision.envs.vector import GlimpseVectorEnv

__all__ = ["GlimpseTorchRLEnv"]


class GlimpseTorchRLEnv(EnvBase):
    """``num_envs`` copies of registered world ``env_id`` (every world option, e.g. ``action_mode="discrete"``) as
    one TorchRL environment on ``device``."""

    def __init__(
        self, env_id: str, num_envs: int = 1, device: str | torch.device = "cpu", **world_options: Any
    ) -> None:
        device = check_device(device)
        # NextStep: an ended env waits for TorchRL's reset (never reset behind its back within a step).
        envs = gym.make_vec(env_id, num_envs=num_envs, device=device, autoreset_mode="NextStep", **world_options)
        if not isinstance(envs, GlimpseVectorEnv):
            raise ValueError(f"env_id={env_id!r} is not allowed: use the id of an activevision world")
        super().__init__(device=device, batch_size=torch.Size([envs.num_envs]))
        self.envs, self.env_id = envs, env_id
        n = (envs.num_envs,)
        specs = {}
        for key, space in envs.single_observation_space.spaces.items():
            assert isinstance(space, gym.spaces.Box)  # every observation of a world is a Box
            low, high = float(space.low.min()), float(space.high.max())
            specs[key] = Bounded(low=low, high=high, shape=n + space.shape, dtype=torch.float32, device=device)
        self.observation_spec = Composite(specs, shape=n)
        action = envs.single_action_space
        if isinstance(action, gym.spaces.Discrete):
            self.action_spec = Categorical(int(action.n), shape=n, device=device)
        else:
            shape = n + tuple(action.shape or ())
            self.action_spec = Bounded(low=-1.0, high=1.0, shape=shape, dtype=torch.float32, device=device)
        self.reward_spec = Unbounded(shape=n + (1,), dtype=torch.float32, device=device)
        self.done_spec = Composite(
            {
                key: Categorical(2, shape=n + (1,), dtype=torch.bool, device=device)
                for key in ("done", "terminated", "truncated")
            },
            shape=n,
        )

    def _observations(
        self, obs: dict[str, torch.Tensor], done: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor
    ) -> TensorDict:
        return TensorDict(
            {**obs, "done": done[:, None], "terminated": terminated[:, None], "truncated": truncated[:, None]},
            batch_size=self.batch_size,
            device=self.device,
        )

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs: Any) -> TensorDict:
        mask = None if tensordict is None else tensordict.get("_reset", None)
        if mask is None or not self.envs.started or bool(mask.all()):
            obs, _ = self.envs.reset()
        else:
            obs = self.envs.reset_envs(mask.reshape(-1))
        flags = torch.zeros(self.batch_size, dtype=torch.bool, device=self.device)
        return self._observations(obs, flags, flags, flags)

    def _step(self, tensordict: TensorDictBase) -> TensorDict:
        obs, reward, terminated, truncated, _ = self.envs.step(tensordict.get("action"))
        out = self._observations(obs, terminated | truncated, terminated, truncated)
        out.set("reward", reward.float()[:, None])
        return out

    def _set_seed(self, seed: int | None) -> None:
        self.envs.reset(seed=seed)
