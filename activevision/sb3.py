"""Stable-Baselines3 ``VecEnv`` over a batched glimpse world, so SB3 trains on thousands of worlds at once.

    from stable_baselines3 import PPO
    import activevision.sb3
    PPO("MultiInputPolicy", activevision.sb3.VecEnv(gym.make_vec("GlimpseMNIST-v0", num_envs=64))).learn(...)

SB3 wants numpy batches and resets an ended env in the same step, with its last observation in
``info["terminal_observation"]``: exactly the batched env's "SameStep" autoreset, converted to numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv as _SB3VecEnv

__all__ = ["VecEnv", "evaluate"]


def _numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


class VecEnv(_SB3VecEnv):
    """SB3's ``VecEnv`` interface over a batched glimpse world (``gym.make_vec(id, num_envs, ...)``).

    Episode-end infos carry ``terminal_observation``, ``TimeLimit.truncated`` and the world's final info
    (``label``, ``prediction``, ``correct``, ``pixels_seen``, ``glimpses``) as plain Python values.
    """

    def __init__(self, envs: gym.vector.VectorEnv) -> None:
        mode = envs.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(
                f"autoreset_mode={mode!r} is not allowed: SB3 resets in the same step, so make the "
                "batched env with autoreset_mode='SameStep' (its default)"
            )
        self.envs = envs
        super().__init__(envs.num_envs, envs.single_observation_space, envs.single_action_space)
        self._actions: Any = None

    def reset(self) -> dict[str, np.ndarray]:
        seed = self._seeds[0] if self._seeds and self._seeds[0] is not None else None
        options = self._options[0] if self._options and self._options[0] else None
        obs, _ = self.envs.reset(seed=seed, options=options)
        self._reset_seeds()
        self._reset_options()
        return {key: _numpy(value) for key, value in obs.items()}

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        obs, reward, terminated, truncated, info = self.envs.step(self._actions)
        obs = {key: _numpy(value) for key, value in obs.items()}
        terminated, truncated = _numpy(terminated), _numpy(truncated)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            final_obs = {key: _numpy(value) for key, value in info["final_obs"].items()}
            final = {key: _numpy(value) for key, value in info["final_info"].items() if not key.startswith("_")}
            for env in np.flatnonzero(dones):
                infos[env] = {key: value[env].item() for key, value in final.items()}
                infos[env]["terminal_observation"] = {key: value[env] for key, value in final_obs.items()}
                infos[env]["TimeLimit.truncated"] = bool(truncated[env] and not terminated[env])
        return obs, _numpy(reward).astype(np.float32), dones, infos

    def close(self) -> None:
        self.envs.close()

    def render(self, mode: str | None = None) -> np.ndarray | None:
        frames: Any = self.envs.render()  # a tuple of frames, one per env (up to 4), or None
        return None if frames is None else frames[0]

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames: Any = self.envs.render()
        return [None] * self.num_envs if frames is None else list(frames)

    # The batched world is one object, not a list of envs: attributes are the batch's.
    def get_attr(self, attr_name: str, indices: None | int | Iterable[int] = None) -> list[Any]:
        return [getattr(self.envs, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: None | int | Iterable[int] = None) -> None:
        setattr(self.envs, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: None | int | Iterable[int] = None, **method_kwargs: Any
    ) -> list[Any]:
        result = getattr(self.envs, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: None | int | Iterable[int] = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


def evaluate(model: Any, envs: gym.vector.VectorEnv, deterministic: bool = True) -> dict[str, float]:
    """Test an SB3 model on a batched glimpse world, one episode per env on images ``0 .. num_envs - 1`` (make the
    world with as many envs as test images): accuracy, mean glimpses taken and mean pixels seen. Works in both
    action modes; in the discrete one episodes end when the agent answers, so their lengths differ."""
    n = envs.num_envs
    obs, _ = envs.reset(options={"index": np.arange(n)})
    done = np.zeros(n, dtype=bool)
    results = {key: np.zeros(n) for key in ("correct", "glimpses", "pixels_seen")}
    while not done.all():
        action, _ = model.predict({key: _numpy(value) for key, value in obs.items()}, deterministic=deterministic)
        obs, _, terminated, truncated, info = envs.step(action)
        ended = (_numpy(terminated) | _numpy(truncated)) & ~done
        if ended.any():
            for key, values in results.items():
                values[ended] = _numpy(info["final_info"][key])[ended]
            done |= ended
    return {
        "accuracy": float(results["correct"].mean()),
        "glimpses": float(results["glimpses"].mean()),
        "pixels_seen": float(results["pixels_seen"].mean()),
        "images": n,
    }
