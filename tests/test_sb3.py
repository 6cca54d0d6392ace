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
    model = RecurrentPPO(
        "MultiInputLstmPolicy",
        env,
        n_steps=64,
        batch_size=32,
        n_epochs=2,
        seed=0,
        device="cpu",
        policy_kwargs=dict(lstm_hidden_size=32),
    ).learn(300)
    obs, _ = env.reset(seed=0)
    state, start = None, np.ones((1,), dtype=bool)
    for _ in range(8):
        action, state = model.predict(obs, state=state, episode_start=start, deterministic=True)
        obs, _, terminated, truncated, _ = env.step(action)
        start = np.array([terminated or truncated])
        if start[0]:
            obs, _ = env.reset()
    assert model.num_timesteps >= 300


# ---------------------------------------------------------------- SB3 over the batched world
def test_sb3_vecenv_adapter_semantics(world_kwargs):
    import activevision.sb3

    venv = activevision.sb3.VecEnv(gym.make_vec("GlimpseMNIST-v0", num_envs=8, **world_kwargs("GlimpseMNIST-v0")))
    venv.seed(3)
    obs = venv.reset()
    assert isinstance(obs["glimpse"], np.ndarray) and obs["glimpse"].shape == (8, 1, 1, 8, 8)
    for _ in range(6):
        venv.step_async(np.zeros((8, 12), np.float32))
        obs, rewards, dones, infos = venv.step_wait()
    assert dones.all() and rewards.dtype == np.float32
    for info in infos:
        assert info["terminal_observation"]["t"][0] == 1.0 and info["TimeLimit.truncated"] is False
        assert isinstance(info["label"], int) and isinstance(info["correct"], bool) and info["glimpses"] == 6
    assert np.allclose(obs["t"], 1 / 6)  # SB3 sees the next episode's first observation
    with pytest.raises(ValueError, match="SameStep"):
        activevision.sb3.VecEnv(
            gym.make_vec("GlimpseMNIST-v0", num_envs=2, autoreset_mode="NextStep", **world_kwargs("GlimpseMNIST-v0"))
        )


@pytest.mark.parametrize("algo,mode", [(PPO, "continuous"), (DQN, "discrete")])
def test_sb3_trains_on_the_batched_world(algo, mode, world_kwargs):
    import activevision.sb3

    envs = gym.make_vec("GlimpseMNIST-v0", num_envs=64, action_mode=mode, **world_kwargs("GlimpseMNIST-v0"))
    kwargs = dict(n_steps=8, batch_size=128, n_epochs=1) if algo is PPO else dict(learning_starts=64, batch_size=64)
    model = algo("MultiInputPolicy", activevision.sb3.VecEnv(envs), seed=0, device="cpu", **kwargs).learn(1024)
    assert model.num_timesteps >= 1024
    obs = activevision.sb3.VecEnv(envs).reset()
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape[0] == 64


def test_dqn_on_the_discrete_mode_learns_above_chance(mnist_dir):
    """The plain DQN baseline (SB3's, unchanged) on the batched world's discrete mode (look at a cell or answer):
    60k env steps, then ``activevision.sb3.evaluate`` on 1,000 test images: above chance (10 %), stopping learned
    (fewer glimpses than the budget of 6 plus the answer)."""
    import activevision.sb3

    world = dict(data_dir=mnist_dir, download=False, action_mode="discrete")
    envs = gym.make_vec("GlimpseMNIST-v0", num_envs=64, split="t10k-train", **world)
    model = DQN(
        "MultiInputPolicy",
        activevision.sb3.VecEnv(envs),
        learning_rate=5e-4,
        learning_starts=1000,
        batch_size=128,
        target_update_interval=500,
        exploration_fraction=0.3,
        seed=0,
        device="cpu",
    )
    model.learn(60_000)
    test = gym.make_vec("GlimpseMNIST-v0", num_envs=1000, split="t10k-test", **world)
    result = activevision.sb3.evaluate(model, test)
    assert result["images"] == 1000 and result["accuracy"] > 0.2, result
    assert 1.0 <= result["glimpses"] < 6.0, result
