"""Every agent family against its own random-location baseline, protocol "t10k split" (as benchmarks/learning.py):
MNIST worlds train on MNIST t10k's first 8,000 images and test on its last 2,000; the synthetic house numbers
test on 2,000 test images.

Every run starts from its agent's recipe (``TrainConfig.from_recipe``). Each family (RAM-REINFORCE, GAM-REINFORCE,
PPO-RAM, top-down Q + RAM) trains twice per world and seed: with learned locations, and with random ones (its own
networks, ``policy="random"``: only the classifier and the core learn; PPO-RAM's are RAM's, PPO training only
learned policies). Every row of a world gets the same number
of updates of 128 episodes, so the same env steps. One line per run (the three accuracies of the one protocol:
mean path, one sampled path, ``--mc`` paths averaged; pixels seen; wall time, that run's own while ``--jobs`` runs
share the cores), then a markdown table per seed set: mean path, the mean over the seeds and their range, learned
over random. Optional rows: SB3's DQN and PPO on the discrete action mode (``--agents ... dqn sb3-ppo``), trained for
the same env steps.

Target: every family above its own random-location baseline on every world, two seeds, within about an hour on
2 CPU cores: the budgets below are scaled to fit that hour (``--scale`` multiplies them; say so).

    python benchmarks/agents.py [--worlds mnist cluttered cluttered100 house] [--agents ram gam ppo-ram topdown]
                                [--seed 0 1] [--scale 1.0] [--jobs 2] [--mc 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
from learning import BATCH, T10K, train_and_test, workers  # the t10k protocol's data and its one kind of run
from learning import COST as OUR_COST

import activevision  # noqa: F401  (registers the ids)
from activevision.envs.presets import PRESETS

TEST_IMAGES = 2000
# name: (env id, world options over the recipe's, test split, updates at scale 1)
WORLDS = {
    "mnist": ("GlimpseMNIST-v0", T10K, "t10k-test", 500),
    "cluttered": ("GlimpseClutteredMNIST-v0", T10K, "t10k-test", 500),
    "cluttered100": ("GlimpseClutteredMNIST100-v0", T10K, "t10k-test", 500),
    "house": ("GlimpseHouseNumbers-v0", {}, "test", 500),
}
LABELS = {
    "ram": "RAM-REINFORCE",
    "gam": "GAM-REINFORCE",
    "ppo-ram": "PPO-RAM",
    "ppo-gam": "PPO-GAM",
    "topdown": "top-down Q + RAM",
    "dqn": "DQN, discrete (SB3)",
    "sb3-ppo": "SB3 PPO, discrete",
}
SB3 = ("dqn", "sb3-ppo")
# The random-location baseline of each family: its own networks with random locations (PPO trains only learned
# policies: its baseline is its core's, trained by REINFORCE's classifier loss).
BASELINE = {"ppo-ram": "ram", "ppo-gam": "gam"}
COST = {**OUR_COST, "dqn": 3, "sb3-ppo": 2}  # a run's time against RAM's: longest go first


def ours(world: str, agent: str, policy: str, updates: int, seed: int, mc: int, out: str) -> dict:
    """Train and test one of our agents from its recipe."""
    env_id, options, split, _ = WORLDS[world]
    folder = f"{out}/seed{seed}/{world}-{agent}-{policy}"
    result, trainer = train_and_test(
        agent, env_id, options, split, policy, updates, seed, folder, device="cpu", mc=mc, limit=TEST_IMAGES, evals=1
    )
    return dict(result, glimpses=float(trainer.envs.world.n_glimpses), env_steps=trainer.env_steps())


def sb3(world: str, name: str, updates: int, seed: int) -> dict:
    """Train SB3's DQN or PPO on the discrete mode with the same env steps as our agents; test it (it answers when
    it chooses: one deterministic number, given as all three)."""
    from stable_baselines3 import DQN, PPO

    from activevision.sb3 import VecEnv
    from activevision.sb3 import evaluate as evaluate_sb3

    env_id, options, split, _ = WORLDS[world]
    kwargs = {**options, "shift": 2} if "split" in options else dict(options)
    steps = updates * BATCH * PRESETS[env_id][2]["n_glimpses"]  # our agents' env steps
    envs = VecEnv(gym.make_vec(env_id, num_envs=64, device="cpu", action_mode="discrete", **kwargs))
    if name == "dqn":
        model = DQN(
            "MultiInputPolicy",
            envs,
            learning_rate=5e-4,
            buffer_size=50_000,
            learning_starts=5_000,
            batch_size=256,
            train_freq=1,
            gradient_steps=2,
            target_update_interval=2_000,
            exploration_fraction=0.3,
            exploration_final_eps=0.05,
            policy_kwargs=dict(net_arch=[256, 256]),
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
    test_world = {**options, "split": split, "shift": 0, "action_mode": "discrete"}
    result = evaluate_sb3(model, gym.make_vec(env_id, num_envs=TEST_IMAGES, device="cpu", **test_world))
    accuracy = result["accuracy"]
    return dict(result, mean_path=accuracy, sampled=accuracy, mc_paths=accuracy, env_steps=steps)


def run(world: str, agent: str, policy: str, seed: int, scale: float, mc: int, out: str) -> dict:
    """One run: train, test, print its line."""
    updates = max(1, int(WORLDS[world][3] * scale))
    start = time.perf_counter()
    result = sb3(world, agent, updates, seed) if agent in SB3 else ours(world, agent, policy, updates, seed, mc, out)
    result["wall_s"] = time.perf_counter() - start
    print(
        f"agents world={WORLDS[world][0]} agent={agent} policy={policy} seed={seed} "
        f"mean_path={result['mean_path']:.4f} sampled={result['sampled']:.4f} mc{mc}={result['mc_paths']:.4f} "
        f"pixels_seen={result['pixels_seen']:.3f} wall_s={result['wall_s']:.0f} env_steps={result['env_steps']}",
        flush=True,
    )
    return result


def cell(results: list[dict]) -> str:
    """Mean-path accuracy over the seeds: the mean, with the range when there are several."""
    values = [100 * r["mean_path"] for r in results]
    spread = f" ({min(values):.1f}–{max(values):.1f})" if len(values) > 1 else ""
    return f"{statistics.mean(values):.1f} %{spread}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", nargs="+", default=list(WORLDS), choices=list(WORLDS))
    parser.add_argument("--agents", nargs="+", default=["ram", "gam", "ppo-ram", "topdown"], choices=list(LABELS))
    parser.add_argument("--seed", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every world's budget (say so)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, the cores shared among them")
    parser.add_argument("--mc", type=int, default=10, help="sampled location paths averaged (the third figure)")
    parser.add_argument("--out", default="runs/agents")
    args = parser.parse_args()
    if args.jobs < 1 or args.scale <= 0 or args.mc < 1:
        raise SystemExit(f"--jobs {args.jobs} / --scale {args.scale} / --mc {args.mc}: use jobs, mc >= 1, scale > 0")
    seeds = list(dict.fromkeys(args.seed))
    runs = [(world, agent, "learned", seed) for world in args.worlds for agent in args.agents for seed in seeds]
    baselines = dict.fromkeys(BASELINE.get(agent, agent) for agent in args.agents if agent not in SB3)
    runs += [(world, agent, "random", seed) for world in args.worlds for agent in baselines for seed in seeds]
    runs.sort(key=lambda item: -COST.get(item[1], 1) * (3 if item[0] == "cluttered100" else 1))
    start = time.perf_counter()
    pool, threads = workers(args.jobs)
    with pool:
        futures = {item: pool.submit(run, *item, args.scale, args.mc, args.out) for item in runs}
        results = {item: future.result() for item, future in futures.items()}
    print(f"\nMean path, mean over seeds {seeds} (range); learned / random locations, same networks and env steps:\n")
    print("| agent | " + " | ".join(f"`{WORLDS[w][0]}`" for w in args.worlds) + " |")
    print("|" + "---|" * (len(args.worlds) + 1))
    for agent in args.agents:
        cells = []
        for world in args.worlds:
            learned = [results[(world, agent, "learned", s)] for s in seeds]
            text = cell(learned)
            if agent not in SB3:
                random = [results[(world, BASELINE.get(agent, agent), "random", s)] for s in seeds]
                gaps = [100 * (a["mean_path"] - b["mean_path"]) for a, b in zip(learned, random)]
                text += f" / {cell(random)}, gap {min(gaps):+.1f} to {max(gaps):+.1f}"
            cells.append(text)
        print(f"| {LABELS[agent]} | " + " | ".join(cells) + " |")
    updates = {WORLDS[w][0]: max(1, int(WORLDS[w][3] * args.scale)) for w in args.worlds}
    print(
        f"\nagents total_wall_s={time.perf_counter() - start:.0f} jobs={args.jobs} threads_per_job={threads} "
        f"scale={args.scale} updates={updates}",
        flush=True,
    )


if __name__ == "__main__":
    main()
