"""Env-steps/s of ``gym.make(id)`` with random actions, one result line per figure.

Actions are drawn up front with numpy (so the figure is the env's cost, not the sampler's); datasets are
materialised first. Each figure is the best of several repeats (this VM's CPU time is noisy). The baseline,
measured in the same run, is the same env with the plain reference sensor (zero-padded crop + cv2.resize per
scale per step), i.e. what a straightforward glimpse env does.

    python benchmarks/env_throughput.py [--steps 60000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import activevision  # noqa: F401
from activevision.sensor import reference_glimpse

MNIST_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "mnist"


class ReferenceSensor:
    """The naive baseline: keeps the image, crops and resizes at every glimpse."""

    def __init__(self, geometry) -> None:
        self.geometry = geometry

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return image

    def look(self, image: np.ndarray, loc: tuple[float, float]):
        height, width, _ = image.shape
        x0, y0, x1, y1 = self.geometry.boxes(np.array(loc), height, width)[0].tolist()
        box = (max(x0, 0), max(y0, 0), min(x1, width), min(y1, height))
        return reference_glimpse(image, loc, self.geometry), box


def steps_per_second(env: gym.Env, actions: np.ndarray, repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        env.reset(seed=0)
        start = time.perf_counter()
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        best = max(best, len(actions) / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    worlds = {"GlimpseMNIST-v0": dict(data_dir=MNIST_DIR, split="test", download=False),
              "GlimpseHouseNumbers-v0": dict()}
    for env_id, kwargs in worlds.items():
        for mode in ("continuous", "discrete"):
            env = gym.make(env_id, action_mode=mode, **kwargs)
            env.unwrapped.dataset.arrays()  # materialise generated worlds before timing
            rng = np.random.default_rng(0)
            if mode == "continuous":
                actions = rng.uniform(-1, 1, (args.steps, *env.action_space.shape)).astype(np.float32)
            else:
                actions = rng.integers(0, env.action_space.n, args.steps)
            ours = steps_per_second(env, actions, args.repeats)
            baseline_env = gym.make(env_id, action_mode=mode, **kwargs)
            baseline_env.unwrapped.sensor = ReferenceSensor(baseline_env.unwrapped.sensor.geometry)
            baseline = steps_per_second(baseline_env, actions[: args.steps // 4], max(2, args.repeats // 2))
            print(f"env_throughput id={env_id} mode={mode} envs=1 steps_per_s={ours:,.0f} "
                  f"naive_crop_resize_baseline={baseline:,.0f} ratio={ours / baseline:.1f}x target>=30,000", flush=True)


if __name__ == "__main__":
    sys.exit(main())
