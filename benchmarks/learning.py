"""Learning benchmark, protocol "t10k split": train on MNIST t10k's first 8,000 images, test on its last 2,000
(translated and cluttered worlds built from those), and on the synthetic house numbers (their 10,000 test images).

Every run starts from the agent's recipe (``TrainConfig.from_recipe``; ``--recipe paper`` for the papers' own
settings) and is tested by the one protocol: the mean location path, one sampled path and ``--mc`` sampled paths
averaged. One line per run, then the gaps: RAM over its random-location baseline (RAM's networks, locations drawn
at random) and every other agent against RAM, per seed and, with several seeds, their mean and range.

Targets (seed 0, 3,000 updates of 128 episodes, mean path): RAM on ``GlimpseMNIST-v0`` >= 96.5 %, GAM on
``GlimpseHouseNumbers-v0`` >= 97 %, the top-down agent >= 15 points above RAM on ``GlimpseClutteredMNIST100-v0``.
Runs go ``--jobs`` at a time (default 2, one core and one torch thread each); each line's wall time is that run's
own under that sharing. ``--scale`` multiplies every budget (say so when you change it); ``--set KEY=VALUE``
overrides a recipe value in every run (for trying a change).

    python benchmarks/learning.py [--worlds mnist translated cluttered cluttered100 house]
                                  [--agents ram gam ppo-ram ppo-gam topdown] [--policies learned random]
                                  [--recipe tuned] [--scale 1.0] [--jobs 2] [--mc 10] [--seed 0 [1 ...]]
                                  [--set KEY=VALUE ...] [--only WORLD:AGENT:POLICY ...]

The recipes' targets in one run (about 21 minutes): ``--worlds mnist house cluttered100 --agents ram gam topdown
--only mnist:ram:learned mnist:ram:random house:gam:learned cluttered100:ram:learned cluttered100:topdown:learned``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from activevision.agents import AGENTS, TrainConfig, Trainer
from activevision.agents.evaluation import protocol
from activevision.agents.recipe import RECIPES

MNIST_DIR = str(Path(__file__).resolve().parents[1] / "tests" / "data" / "mnist")
T10K = dict(data_dir=MNIST_DIR, split="t10k-train", download=False)  # the recipes add each world's own options
BATCH = 128  # episodes per update
WORLDS = {  # name: (env id, world options, test split, updates at scale 1)
    "mnist": ("GlimpseMNIST-v0", T10K, "t10k-test", 3000),
    "translated": ("GlimpseTranslatedMNIST-v0", T10K, "t10k-test", 3000),
    "cluttered": ("GlimpseClutteredMNIST-v0", T10K, "t10k-test", 3000),
    "cluttered100": ("GlimpseClutteredMNIST100-v0", T10K, "t10k-test", 3000),
    "house": ("GlimpseHouseNumbers-v0", {}, "test", 3000),
}
# Config values every run gets from the benchmark (its protocol), so ``--set`` may not change them.
SET_BY_BENCHMARK = {"env_kwargs", "eval_split", "policy", "steps", "batch", "seed", "device", "eval_every"}
COST = {"gam": 3, "ppo-ram": 6, "ppo-gam": 12, "topdown": 3}  # a run's time against RAM's: longest go first


def train_and_test(
    agent: str,
    env_id: str,
    options: dict[str, Any],
    split: str,
    policy: str,
    steps: int,
    seed: int,
    folder: str | Path,
    *,
    recipe: str = "tuned",
    device: str = "auto",
    mc: int = 10,
    limit: int | None = None,
    evals: int = 4,
    overrides: dict[str, Any] | None = None,
) -> tuple[dict[str, float], Trainer]:
    """One benchmark run (this one and agents.py): ``agent`` from its recipe on ``env_id`` (``options`` over the
    recipe's world options), ``steps`` updates of ``BATCH`` episodes with ``evals`` evaluations along the way, then
    the protocol's three accuracies on ``split`` (its first ``limit`` images if given); and the trainer."""
    config = TrainConfig.from_recipe(
        agent,
        env_id,
        recipe=recipe,
        env_kwargs=dict(options),
        eval_split=split,
        policy=policy,
        steps=steps,
        batch=BATCH,
        seed=seed,
        device=device,
        eval_every=max(steps // evals, 1),
        checkpoint_every=steps,
        **(overrides or {}),
    )
    trainer = Trainer(config, folder)
    trainer.run(progress=False)
    return protocol(trainer.agent, trainer.config, trainer.device, split=split, mc=mc, limit=limit), trainer


def workers(jobs: int) -> tuple[ProcessPoolExecutor, int]:
    """``jobs`` worker processes sharing the cores (each with its share of torch threads), and that share."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    spawn = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(jobs, mp_context=spawn, initializer=torch.set_num_threads, initargs=(threads,)), threads


def run(
    world: str, agent: str, policy: str, seed: int, args: argparse.Namespace, overrides: dict[str, Any]
) -> dict[str, float]:
    """Train and test one agent on one world from its recipe; print its line; return the protocol's figures."""
    env_id, options, split, updates = WORLDS[world]
    steps = max(1, int(updates * args.scale))
    folder = Path(args.out) / f"seed{seed}" / f"{world}-{agent}-{policy}"
    start = time.perf_counter()
    result, _ = train_and_test(
        agent,
        env_id,
        options,
        split,
        policy,
        steps,
        seed,
        folder,
        recipe=args.recipe,
        device=args.device,
        mc=args.mc,
        overrides=overrides,
    )
    wall = time.perf_counter() - start
    changed = "".join(f" {key}={json.dumps(value)}" for key, value in overrides.items())
    print(
        f"learning world={env_id} agent={agent} recipe={args.recipe}{changed} policy={policy} "
        f"mean_path={result['mean_path']:.4f} sampled={result['sampled']:.4f} mc{args.mc}={result['mc_paths']:.4f} "
        f"pixels_seen={result['pixels_seen']:.3f} test_images={result['images']} updates={steps} "
        f"episodes={steps * BATCH} seed={seed} wall_s={wall:.0f}",
        flush=True,
    )
    return result


def print_gaps(label: str, env_id: str, pairs: list[tuple[int, dict, dict]], mc: int) -> None:
    """``first - second`` in points for each seed (three figures), then their mean and range over the seeds."""
    keys = ("mean_path", "sampled", "mc_paths")
    gaps = []
    for seed, first, second in pairs:
        gap = [100 * (first[key] - second[key]) for key in keys]
        gaps.append(gap)
        print(
            f"learning world={env_id} seed={seed} {label}={gap[0]:+.2f} points (mean path; sampled {gap[1]:+.2f}, "
            f"mc{mc} {gap[2]:+.2f})",
            flush=True,
        )
    if len(gaps) > 1:
        paths = [gap[0] for gap in gaps]
        print(
            f"learning world={env_id} seeds={len(gaps)} {label}_mean={statistics.mean(paths):+.2f} points (mean path; "
            f"per seed {min(paths):+.2f} to {max(paths):+.2f}; sampled {statistics.mean(g[1] for g in gaps):+.2f}, "
            f"mc{mc} {statistics.mean(g[2] for g in gaps):+.2f})",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", nargs="+", default=["mnist", "house"], choices=list(WORLDS))
    parser.add_argument("--agents", nargs="+", default=["ram"], choices=sorted(AGENTS))
    parser.add_argument(
        "--policies",
        nargs="+",
        default=["learned", "random"],
        choices=["learned", "random"],
        help="learned locations and/or RAM's random-location baseline",
    )
    parser.add_argument("--recipe", default="tuned", choices=RECIPES)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every update budget")
    parser.add_argument("--mc", type=int, default=10, help="sampled location paths averaged (the third figure)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, the cores shared among them")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, nargs="+", default=[0])
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override a recipe value (JSON)")
    parser.add_argument(
        "--only", nargs="*", default=[], metavar="WORLD:AGENT:POLICY", help="of the runs chosen, only these"
    )
    parser.add_argument("--out", default="runs/learning")
    args = parser.parse_args()
    if args.jobs < 1 or args.scale <= 0 or args.mc < 1:
        raise SystemExit(f"--jobs {args.jobs} / --scale {args.scale} / --mc {args.mc}: use jobs, mc >= 1, scale > 0")
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r} is not allowed: use KEY=VALUE (VALUE as JSON, or a plain string)")
        if key in SET_BY_BENCHMARK:
            raise SystemExit(f"--set {key}=... is not allowed: the benchmark sets {sorted(SET_BY_BENCHMARK)} itself")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    seeds = list(dict.fromkeys(args.seed))
    runs = [(world, agent, "learned") for world in args.worlds for agent in args.agents if "learned" in args.policies]
    runs += [(world, "ram", "random") for world in args.worlds if "random" in args.policies]
    if args.only:
        runs = [item for item in runs if ":".join(item) in args.only]
    runs = sorted(((*item, seed) for seed in seeds for item in runs), key=lambda item: -COST.get(item[1], 1))
    start = time.perf_counter()
    pool, threads = workers(args.jobs)
    with pool:
        futures = {item: pool.submit(run, *item, args, overrides) for item in runs}
        results = {item: future.result() for item, future in futures.items()}
    for world in args.worlds:
        env_id = WORLDS[world][0]
        for agent, policy in [("ram", "random")] + [(agent, "learned") for agent in args.agents if agent != "ram"]:
            pairs = [
                (seed, results[(world, "ram", "learned", seed)], results[(world, agent, policy, seed)])
                for seed in seeds
                if (world, "ram", "learned", seed) in results and (world, agent, policy, seed) in results
            ]
            if policy == "random":
                print_gaps("gap_ram_minus_random", env_id, pairs, args.mc)
            else:
                print_gaps(f"gap_{agent}_minus_ram", env_id, [(s, them, ram) for s, ram, them in pairs], args.mc)
    print(
        f"learning total_wall_s={time.perf_counter() - start:.0f} jobs={args.jobs} threads_per_job={threads}",
        flush=True,
    )


if __name__ == "__main__":
    main()
