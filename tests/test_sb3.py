"""Real Stable-Baselines3 (and sb3-contrib) algorithms run unchanged on the glimpse worlds."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from sb3_contrib import RecurrentPPO
from stable_baselines3 import A2C, DQN, PPO, SAC

import activevision  # noqa: F401  (registers the ids)

CASES = [
    (PPO, "continuous", dict(n_steps=64, batch_size=32, n_epochs=2)),
    (PPO, "discrete", dict(n_steps=64, batch_size=32, n_epochs=2)),
    (A2C, "continuous", dict(n_steps=8)),
    (A2C, "discrete", dict(n_steps=8)),
    (SAC, "continuous", dict(learning_starts=50, batch_size=32, buffer_size=1000)),
    (DQN, "discrete", dict(learning_starts=50, batch_size=32, buffer_size=1000)),
]


@pytest.mark.parametrize("algo,mode,kwargs", CASES, ids=[f"{a.__name__}-{m}" for a, m, _ in CASES])
def test_sb3_algorithms_learn_and_predict(algo, mode, kwargs, world_kwargs):
    env = gym.make("GlimpseMNIST-v0", action_mode=mode, **world_kwargs("GlimpseMNIST-v0"))
    model = algo("MultiInputPolicy", env, seed=0, device="cpu", **kwargs).learn(300)
    assert model.num_timesteps >= 300
    obs, _ = env.reset(seed=1)
    for _ in range(12):
        action, _ = model.predict(obs, deterministic=True)
        assert env.action_space.contains(action.astype(env.action_space.dtype))
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()


def test_recurrent_ppo(world_kwargs):
    env = gym.make("GlimpseHouseNumbers-v0", action_mode="discrete", **world_kwargs("GlimpseHouseNumbers-v0"))
    model = RecurrentPPO("MultiInputLstmPolicy", env, n_steps=64, batch_size=32, n_epochs=2, seed=0,
                         device="cpu", policy_kwargs=dict(lstm_hidden_size=32)).learn(300)
    obs, _ = env.reset(seed=0)
    state, start = None, np.ones((1,), dtype=bool)
    for _ in range(8):
        action, state = model.predict(obs, state=state, episode_start=start, deterministic=True)
        obs, _, terminated, truncated, _ = env.step(action)
        start = np.array([terminated or truncated])
        if start[0]:
            obs, _ = env.reset()
    assert model.num_timesteps >= 300
