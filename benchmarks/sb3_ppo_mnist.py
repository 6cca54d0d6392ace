"""Learning check: SB3 PPO, unchanged, on GlimpseMNIST-v0 in discrete mode (look at a grid cell or answer).

Protocol "t10k split": train on MNIST t10k's first 8,000 images, test on its last 2,000 (the deterministic
policy, every test image once). Chance is 10 %. One result line.

    python benchmarks/sb3_ppo_mnist.py [--steps 200000] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import gymnasium as gym
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

import activevision  # noqa: F401

MNIST_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "mnist"


def evaluate(model: PPO, env: gym.Env) -> tuple[float, float, float]:
    """Accuracy, mean glimpses and mean pixels seen over every test image once."""
    correct, glimpses, seen = 0, 0, 0.0
    n = len(env.unwrapped.dataset)
    for index in range(n):
        obs, _ = env.reset(seed=index, options={"index": index})
        while True:
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                correct += info["correct"]
                glimpses += info["glimpses"]
                seen += info["pixels_seen"]
                break
    return correct / n, glimpses / n, seen / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    world = dict(data_dir=MNIST_DIR, download=False, action_mode="discrete")
    envs = make_vec_env("GlimpseMNIST-v0", n_envs=16, seed=args.seed, env_kwargs=dict(world, split="t10k-train"))
    model = PPO(
        "MultiInputPolicy",
        envs,
        n_steps=128,
        batch_size=512,
        n_epochs=4,
        learning_rate=3e-4,
        ent_coef=0.01,
        gamma=1.0,
        seed=args.seed,
        device="cpu",
        policy_kwargs=dict(net_arch=dict(pi=[256, 256], vf=[256, 256])),
    )
    start = time.perf_counter()
    model.learn(args.steps)
    train_time = time.perf_counter() - start
    accuracy, glimpses, seen = evaluate(model, gym.make("GlimpseMNIST-v0", **world, split="t10k-test"))
    print(
        f"sb3_ppo_mnist id=GlimpseMNIST-v0 mode=discrete env_steps={args.steps} train_s={train_time:.0f} "
        f"test_accuracy={accuracy:.3f} chance=0.100 mean_glimpses={glimpses:.2f} pixels_seen={seen:.3f}"
    )


if __name__ == "__main__":
    main()
