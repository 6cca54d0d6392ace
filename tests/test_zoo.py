"""rl-zoo3 trains and evaluates on the glimpse worlds with the hyperparameter files shipped in activevision.zoo,
each run a real `python -m rl_zoo3.train` process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
from stable_baselines3 import DQN, PPO

import activevision
from activevision import zoo


def _zoo(module: str, *args: str, cwd: Path, data: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ACTIVEVISION_DATA": str(data), "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [sys.executable, "-m", f"rl_zoo3.{module}", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def data_root(mnist_dir: Path) -> Path:
    return mnist_dir.parent  # $ACTIVEVISION_DATA/mnist holds the t10k files


@pytest.mark.parametrize("algo", zoo.ALGOS)
def test_every_zoo_file_covers_every_world_in_the_right_mode(algo):
    hyperparams = zoo.load(algo)
    assert "default" in hyperparams and set(hyperparams) <= set(activevision.ENV_IDS) | {"default"}
    module = __import__(f"activevision.zoo.{algo}", fromlist=["hyperparams"])
    assert module.hyperparams == hyperparams
    for settings in hyperparams.values():
        assert settings["env_kwargs"]["action_mode"] == ("continuous" if algo == "sac" else "discrete")
        assert settings["policy"].startswith("MultiInput")
    with pytest.raises(ValueError, match="algo='td3' is not allowed"):
        zoo.config_path("td3")


def test_rl_zoo3_trains_and_enjoys_ppo_on_mnist(tmp_path, data_root):
    """The documented command (docs/integrations.md), with env kwargs from the command line (they replace the
    file's: name the mode too)."""
    world = ["action_mode:'discrete'", "split:'t10k-train'", "download:False"]
    run = _zoo(
        "train",
        "--algo",
        "ppo",
        "--env",
        "GlimpseMNIST-v0",
        "--gym-packages",
        "activevision",
        "--conf-file",
        "activevision.zoo.ppo",
        "-n",
        "512",
        "--device",
        "cpu",
        "--eval-freq",
        "-1",
        "-f",
        "logs",
        "--seed",
        "0",
        "-params",
        "n_envs:2",
        "n_steps:128",
        "batch_size:64",
        "--env-kwargs",
        *world,
        cwd=tmp_path,
        data=data_root,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    model = PPO.load(tmp_path / "logs" / "ppo" / "GlimpseMNIST-v0_1" / "GlimpseMNIST-v0.zip")
    assert model.num_timesteps == 512 and model.action_space == gym.spaces.Discrete(4 * 4 + 10)
    enjoy = _zoo(
        "enjoy",
        "--algo",
        "ppo",
        "--env",
        "GlimpseMNIST-v0",
        "--gym-packages",
        "activevision",
        "-f",
        "logs",
        "--no-render",
        "-n",
        "100",
        "--device",
        "cpu",
        "--env-kwargs",
        *world,
        cwd=tmp_path,
        data=data_root,
    )
    assert enjoy.returncode == 0, enjoy.stderr[-3000:]
    assert "Mean reward" in enjoy.stdout


def test_rl_zoo3_takes_the_world_options_from_the_file(tmp_path, data_root):
    """DQN on the offline house numbers: the file's env_kwargs (discrete mode) reach the env rl-zoo3 builds."""
    run = _zoo(
        "train",
        "--algo",
        "dqn",
        "--env",
        "GlimpseHouseNumbers-v0",
        "--gym-packages",
        "activevision",
        "--conf-file",
        str(zoo.config_path("dqn")),
        "-n",
        "300",
        "--device",
        "cpu",
        "--eval-freq",
        "-1",
        "-f",
        "logs",
        "--seed",
        "0",
        "-params",
        "learning_starts:100",
        cwd=tmp_path,
        data=data_root,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    model = DQN.load(tmp_path / "logs" / "dqn" / "GlimpseHouseNumbers-v0_1" / "GlimpseHouseNumbers-v0.zip")
    assert model.action_space == gym.spaces.Discrete(3 * 3 + 10)
