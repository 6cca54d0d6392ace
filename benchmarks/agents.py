"""One comparison of every agent family, protocol "t10k split" (as benchmarks/learning.py): MNIST worlds train on
MNIST t10k's first 8,000 images and test on its last 2,000; the synthetic house numbers test on 2,000 test images.

Rows: random locations (RAM's networks trained with random glimpse locations), RAM-REINFORCE, GAM-REINFORCE,
PPO-RAM, top-down Q + RAM, DQN on the discrete action mode (SB3, learned stopping) and SB3 PPO on the discrete mode
(the plug-in baseline). Every row of a world gets the same number of env steps: ``updates x 128`` episodes of our
agents (fixed length) = the SB3 agents' ``total_timesteps``. One line per (agent, world): test accuracy, mean
glimpses, pixels seen, wall time (training and test, that run's own while ``--jobs`` runs share the cores), env
steps. Then a markdown table (accuracy %) for the README. Target: top-down Q + RAM above RAM on the 100x100
cluttered world.

    python benchmarks/agents.py [--worlds mnist cluttered cluttered100 house] [--agents ...] [--scale 1.0]
                                [--jobs 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

import gymnasium as gym
import torch
from learning import CLUTTER, T10K  # the t10k protocol's worlds (learning.py says why these)

import activevision  # noqa: F401  (registers the ids)
from activevision.agents.trainer import TrainConfig, Trainer, evaluate
from activevision.envs.presets import PRESETS

TEST_IMAGES = 2000
BATCH = 128
# name: (env id, training world, test split, test world options over the training ones, updates at scale 1)
WORLDS = {
    "mnist": ("GlimpseMNIST-v0", T10K, "t10k-test", {}, 600),
    "cluttered": ("GlimpseClutteredMNIST-v0", CLUTTER, "t10k-test", {"size": None}, 600),
    "cluttered100": ("GlimpseClutteredMNIST100-v0", CLUTTER, "t10k-test", {"size": None}, 1500),
    "house": ("GlimpseHouseNumbers-v0", dict(size=60_000, shift=2), "test", {}, 600),
}
# name: (label in the table, our agent and its settings, or None for the SB3 rows)
AGENTS = {
    "random": ("random locations", dict(agent="ram", policy="random", core="gru", lr=1e-3, lr_final=1e-4)),
    "ram": ("RAM-REINFORCE", dict(agent="ram", core="gru", lr=1e-3, lr_final=1e-4)),
    "gam": ("GAM-REINFORCE", dict(agent="gam", lr=1e-3, lr_final=1e-4)),
    "ppo-ram": ("PPO-RAM", dict(agent="ppo-ram", core="gru", lr=3e-4, lr_final=1e-4)),
    "topdown": ("top-down Q + RAM", dict(agent="topdown", core="gru", lr=1e-3, lr_final=1e-4)),
    "dqn": ("DQN, discrete (SB3)", None),
    "sb3-ppo": ("SB3 PPO, discrete", None),
}


def ours(world: str, name: str, updates: int, seed: int, out: str) -> dict:
    """Train and test one of our agents."""
    env_id, kwargs, split, test_kwargs, _ = WORLDS[world]
    config = TrainConfig(
        env=env_id,
        env_kwargs=dict(kwargs),
        eval_split=split,
        eval_env_kwargs=dict(test_kwargs),
        steps=updates,
        batch=BATCH,
        seed=seed,
        device="cpu",
        eval_every=updates,
        checkpoint_every=updates,
        **AGENTS[name][1],
    )
    trainer = Trainer(config, f"{out}/{world}-{name}")
    trainer.run(progress=False)
    result = evaluate(trainer.agent, config, trainer.device, split=split, limit=TEST_IMAGES)
    return dict(
        accuracy=result["accuracy"],
        glimpses=float(trainer.envs.world.n_glimpses),
        pixels_seen=result["pixels_seen"],
        env_steps=trainer.env_steps(),
    )


def sb3(world: str, name: str, updates: int, seed: int, out: str) -> dict:
    """Train SB3's DQN or PPO on the discrete mode with the same env steps as our agents; test it."""
    from stable_baselines3 import DQN, PPO

    from activevision.sb3 import VecEnv
    from activevision.sb3 import evaluate as evaluate_sb3

    env_id, kwargs, split, test_kwargs, _ = WORLDS[world]
    n_glimpses = PRESETS[env_id][2]["n_glimpses"]
    steps = updates * BATCH * n_glimpses  # our agents' env steps
    envs = VecEnv(gym.make_vec(env_id, num_envs=64, device="cpu", action_mode="discrete", **kwargs))
    arch = dict(net_arch=[256, 256])
    if name == "dqn":
        model = DQN(
            "MultiInputPolicy",
            envs,
            learning_rate=5e-4,
            buffer_size=50_000,
            learning_starts=5_000,
            batch_size=256,
            gamma=0.99,
            train_freq=1,
            gradient_steps=2,
            target_update_interval=2_000,
            exploration_fraction=0.3,
            exploration_final_eps=0.05,
            policy_kwargs=arch,
            seed=seed,
            device="cpu",
        )
    else:
        model = PPO(
            "MultiInputPolicy",
            envs,
            n_steps=32,
            batch_size=512,
            n_epochs=4,
            learning_rate=3e-4,
            ent_coef=0.01,
            gamma=1.0,
            policy_kwargs=dict(net_arch=dict(pi=[256, 256], vf=[256, 256])),
            seed=seed,
            device="cpu",
        )
    model.learn(steps)
    test_world = {**kwargs, **test_kwargs, "split": split, "shift": 0, "action_mode": "discrete"}
    result = evaluate_sb3(model, gym.make_vec(env_id, num_envs=TEST_IMAGES, device="cpu", **test_world))
    return dict(result, env_steps=steps)


def run(world: str, name: str, scale: float, seed: int, out: str) -> tuple[str, str, dict]:
    """One (agent, world) row: train, test, print its line."""
    updates = max(1, int(WORLDS[world][4] * scale))
    start = time.perf_counter()
    result = (ours if AGENTS[name][1] is not None else sb3)(world, name, updates, seed, out)
    result["wall_s"] = time.perf_counter() - start
    print(
        f"agents world={WORLDS[world][0]} agent={name} test_accuracy={result['accuracy']:.4f} "
        f"mean_glimpses={result['glimpses']:.2f} pixels_seen={result['pixels_seen']:.3f} "
        f"wall_s={result['wall_s']:.0f} env_steps={result['env_steps']}",
        flush=True,
    )
    return world, name, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", nargs="+", default=list(WORLDS), choices=list(WORLDS))
    parser.add_argument("--agents", nargs="+", default=list(AGENTS), choices=list(AGENTS))
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every world's budget (say so)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, the cores shared among them")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/agents")
    args = parser.parse_args()
    if args.jobs < 1 or args.scale <= 0:
        raise SystemExit(f"--jobs {args.jobs} / --scale {args.scale} are not allowed: use jobs >= 1, scale > 0")
    start = time.perf_counter()
    runs = [(world, name) for world in args.worlds for name in args.agents]
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        args.jobs, mp_context=spawn, initializer=torch.set_num_threads, initargs=(threads,)
    ) as pool:
        futures = [pool.submit(run, world, name, args.scale, args.seed, args.out) for world, name in runs]
        results = {(world, name): result for world, name, result in (f.result() for f in futures)}
    header = "| agent | " + " | ".join(WORLDS[w][0] for w in args.worlds) + " |"
    print(header)
    print("|" + "---|" * (len(args.worlds) + 1))
    for name in args.agents:
        cells = [results[(w, name)] for w in args.worlds]
        print(
            f"| {AGENTS[name][0]} | "
            + " | ".join(
                f"{100 * r['accuracy']:.1f} % ({r['glimpses']:.1f} gl, {100 * r['pixels_seen']:.0f} % px, "
                f"{r['wall_s']:.0f} s)"
                for r in cells
            )
            + " |"
        )
    if "cluttered100" in args.worlds and {"ram", "topdown"} <= set(args.agents):
        gap = 100 * (results[("cluttered100", "topdown")]["accuracy"] - results[("cluttered100", "ram")]["accuracy"])
        print(f"agents world=GlimpseClutteredMNIST100-v0 gap_topdown_minus_ram={gap:+.1f} points", flush=True)
    print(
        f"agents total_wall_s={time.perf_counter() - start:.0f} jobs={args.jobs} threads_per_job={threads} "
        f"scale={args.scale}",
        flush=True,
    )


if __name__ == "__main__":
    main()
