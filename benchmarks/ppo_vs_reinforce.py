"""PPO-RAM against RAM-REINFORCE at the same number of env steps: test accuracy vs env steps, as CSV and PNG.

Each from its recipe (RAM's networks, GRU core), same world and batch (128 episodes per update: the same env
steps per update);
protocol "t10k split" (train on MNIST t10k's first 8,000 images, test on its last 2,000). The two runs go side by
side, one core each. Writes ``curve.csv`` (algorithm, update, env_steps, test accuracy) and ``curve.png`` into
``--out``; prints one line: both final accuracies and the mean accuracy over the curve's points (its area).

    python benchmarks/ppo_vs_reinforce.py [--world mnist] [--updates 600] [--points 6]
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from learning import T10K  # the t10k protocol's training world

from activevision.agents.trainer import TrainConfig, Trainer

WORLDS = {  # name: (env id, world options over the recipe's, test split)
    "mnist": ("GlimpseMNIST-v0", T10K, "t10k-test"),
    "house": ("GlimpseHouseNumbers-v0", {}, "test"),
}
AGENTS = {"reinforce": "ram", "ppo": "ppo-ram"}  # each from its recipe for the world


def train(algorithm: str, world: str, updates: int, points: int, seed: int, out: str) -> tuple[str, list, float]:
    """One run with ``points`` evaluations on 2,000 test images; returns its evaluations and wall time."""
    env_id, kwargs, split = WORLDS[world]
    config = TrainConfig.from_recipe(
        AGENTS[algorithm],
        env_id,
        env_kwargs=dict(kwargs),
        eval_split=split,
        steps=updates,
        batch=128,
        seed=seed,
        device="cpu",
        eval_batch=2000,
        eval_every=max(updates // points, 1),
        checkpoint_every=updates,
    )
    start = time.perf_counter()
    evals = Trainer(config, f"{out}/{algorithm}").run(progress=False)
    return algorithm, evals, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="mnist", choices=list(WORLDS))
    parser.add_argument("--updates", type=int, default=600)
    parser.add_argument("--points", type=int, default=6, help="evaluations along each run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/ppo_vs_reinforce"))
    args = parser.parse_args()
    if args.updates < 1 or args.points < 1:
        raise SystemExit(f"--updates {args.updates} / --points {args.points} are not allowed: use 1 or more")
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=spawn, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        futures = [
            pool.submit(train, algorithm, args.world, args.updates, args.points, args.seed, str(args.out))
            for algorithm in AGENTS
        ]
        runs = {algorithm: (evals, wall) for algorithm, evals, wall in (f.result() for f in futures)}
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "curve.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["algorithm", "update", "env_steps", "test_accuracy"])
        for algorithm, (evals, _) in runs.items():
            writer.writerows([algorithm, e["update"], e["env_steps"], e["accuracy"]] for e in evals)
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for algorithm, (evals, _) in runs.items():
        axes.plot(
            [e["env_steps"] for e in evals],
            [e["accuracy"] for e in evals],
            marker="o",
            label="PPO-RAM" if algorithm == "ppo" else "RAM-REINFORCE",
        )
    axes.set_xlabel("env steps")
    axes.set_ylabel(f"test accuracy ({WORLDS[args.world][0]})")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(args.out / "curve.png", dpi=120)
    (ppo, ppo_wall), (reinforce, reinforce_wall) = runs["ppo"], runs["reinforce"]
    mean = lambda evals: sum(e["accuracy"] for e in evals) / len(evals)  # noqa: E731
    print(
        f"ppo_vs_reinforce world={WORLDS[args.world][0]} env_steps={ppo[-1]['env_steps']} "
        f"ppo_final={ppo[-1]['accuracy']:.4f} reinforce_final={reinforce[-1]['accuracy']:.4f} "
        f"ppo_curve_mean={mean(ppo):.4f} reinforce_curve_mean={mean(reinforce):.4f} "
        f"ppo_wall_s={ppo_wall:.0f} reinforce_wall_s={reinforce_wall:.0f} -> {args.out}/curve.png, curve.csv",
        flush=True,
    )


if __name__ == "__main__":
    main()
