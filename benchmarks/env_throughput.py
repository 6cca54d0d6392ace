"""Env-steps/s of the glimpse worlds with random actions, one result line per figure.

- single env (``gym.make``), against a baseline measured in the same run: the same env with the plain
  reference sensor (zero-padded crop + cv2.resize per scale per step), i.e. a straightforward glimpse env;
- batched env (``gym.make_vec``) on the CPU at 1, 64, 1024 and 4096 envs (ratio: against the single env),
  on CUDA at 4096 and 65,536 envs when a GPU is present (a line says so otherwise);
- scaling with image size: 256 batched envs (eager), one digit on a blank 64^2 / 1024^2 / 4096^2 canvas, and
  the step time ratio 4096^2 / 64^2;
- memory: bytes of the shared dataset and per env.

Actions are drawn up front (so the figure is the env's cost, not the sampler's); datasets are made first.
Each figure is the best of several repeats (this VM's CPU time is noisy); batched runs are 240 steps each,
after a warm-up episode (which also compiles the glimpse: ``--no-compile`` for the eager figures).

    python benchmarks/env_throughput.py [--steps 60000] [--repeats 5] [--only single|batched|scaling]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import activevision  # noqa: F401
from activevision.data import MNIST, TranslatedDataset
from activevision.envs.vector import GlimpseVectorEnv
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


WORLDS = {"GlimpseMNIST-v0": dict(data_dir=MNIST_DIR, split="test", download=False), "GlimpseHouseNumbers-v0": dict()}


def single(args) -> dict[str, float]:
    """Single-env figures; returns continuous-mode steps/s per world (the batched figures' baseline)."""
    rates = {}
    for env_id, kwargs in WORLDS.items():
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
            baseline_env.unwrapped.source.sensor = ReferenceSensor(baseline_env.unwrapped.world.geometry)
            baseline = steps_per_second(baseline_env, actions[: args.steps // 4], max(2, args.repeats // 2))
            rates.setdefault(env_id, ours)
            print(
                f"env_throughput id={env_id} mode={mode} envs=1 steps_per_s={ours:,.0f} "
                f"naive_crop_resize_baseline={baseline:,.0f} ratio={ours / baseline:.1f}x target>=30,000",
                flush=True,
            )
    return rates


def batched_steps_per_second(envs, steps: int, repeats: int) -> float:
    """Best-of-``repeats`` env-steps/s of a batched env with uniform random continuous actions."""
    generator = torch.Generator(device=envs.device).manual_seed(0)
    shape = (steps, envs.num_envs, envs.single_action_space.shape[0])
    actions = torch.rand(shape, generator=generator, device=envs.device) * 2.0 - 1.0
    envs.reset(seed=0)
    for action in actions[: 2 * envs.world.n_glimpses]:  # warm up (and compile) every path of an episode
        envs.step(action)
    best = 0.0
    for _ in range(repeats):
        if envs.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for action in actions:
            envs.step(action)
        if envs.device.type == "cuda":
            torch.cuda.synchronize()
        best = max(best, steps * envs.num_envs / (time.perf_counter() - start))
    return best


def batched(args, single_rates: dict[str, float]) -> None:
    devices = [("cpu", (1, 64, 1024, 4096))]
    if torch.cuda.is_available():
        devices.append(("cuda", (4096, 65_536)))
    else:
        print("env_throughput device=cuda skipped: no CUDA device on this machine", flush=True)
    for device, sizes in devices:
        for env_id, kwargs in WORLDS.items():
            for n in sizes:
                envs = gym.make_vec(env_id, num_envs=n, device=device, compile=args.compile, **kwargs)
                rate = batched_steps_per_second(envs, 240, args.repeats)
                versus = f" vs_single_env={rate / single_rates[env_id]:.1f}x" if env_id in single_rates else ""
                target = (
                    " target>=700,000"
                    if device == "cpu" and n == 1024
                    else (" target>=50,000,000(H100)" if n == 65_536 else "")
                )
                memory = envs.memory_bytes()
                print(
                    f"env_throughput id={env_id} mode=continuous device={device} envs={n} compile={args.compile} "
                    f"steps_per_s={rate:,.0f}{versus}{target}",
                    flush=True,
                )
                if n == sizes[-1]:
                    print(
                        f"env_memory id={env_id} device={device} dataset_bytes={memory['dataset']:,} "
                        f"bytes_per_env={memory['per_env']:,}",
                        flush=True,
                    )


def scaling(args) -> None:
    base = MNIST("t10k-train", data_dir=MNIST_DIR, download=False)
    times = {}
    for side in (64, 1024, 4096):
        world = TranslatedDataset(base, canvas=side, seed=0)
        envs = GlimpseVectorEnv(world, 256, patch=12, scales=3, n_glimpses=8)  # eager: the ratio is the point
        rate = batched_steps_per_second(envs, 120, args.repeats)
        times[side] = 256 / rate
        memory = envs.memory_bytes()
        print(
            f"env_scaling canvas={side}x{side} envs=256 step_ms={times[side] * 1e3:.3f} "
            f"dataset_bytes={memory['dataset']:,} bytes_per_env={memory['per_env']:,}",
            flush=True,
        )
    print(f"env_scaling step_time_ratio_4096^2/64^2={times[4096] / times[64]:.2f} target<=1.25", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=["single", "batched", "scaling"])
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="torch.compile the batched env's whole-batch paths (default; --no-compile: eager)",
    )
    args = parser.parse_args()
    rates = single(args) if args.only in (None, "single") else {}
    if args.only in (None, "batched"):
        batched(args, rates)
    if args.only in (None, "scaling"):
        scaling(args)


if __name__ == "__main__":
    sys.exit(main())
