"""Every GPU figure in one process: one printed line and one CSV row per figure, each beside the CPU figure of the
same run where one applies (``make gpu-check``; at most about 8 minutes on one H100).

- env steps/s of the batched worlds (MNIST and house numbers, continuous mode, random actions) at 4,096 / 65,536 /
  262,144 envs, with the device's peak memory (CPU: the same world at 4,096 envs);
- RAM training images/s at batch 1,024 and 4,096, eager and compiled, against the reference-style training step
  (``benchmarks/train_speed.py``) at the same batch on the same device;
- RAM and GAM inference images/s at 3 and 6 glimpses (``benchmarks/inference.py``'s layout), next to the glimpse
  attention paper's Table 4 (RTX 3080: RNN 9,088 / GAM 5,248 images/s at 3 glimpses, 6,656 / 3,328 at 6);
- time to 98 % test accuracy (mean path) for RAM on the MNIST t10k split (train on the first 8,000, test on the
  last 2,000), within a time budget: the seconds, or the best accuracy reached when the budget ran out.

``--device cpu --quick`` runs every part small (under a minute on 2 cores): ``make test`` runs it so it cannot rot.

    python benchmarks/gpu.py [--device auto] [--quick] [--csv runs/gpu/gpu.csv] [--budget 150]
"""

from __future__ import annotations

import argparse
import csv
import resource
import sys
import time
from pathlib import Path

import gymnasium as gym
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inference  # noqa: E402  (the sibling benchmarks: one definition of each measured step)
import train_speed  # noqa: E402

import activevision  # noqa: E402,F401  (registers the ids)
from activevision.agents.trainer import TrainConfig, Trainer, evaluate, make_agent, resolve_device  # noqa: E402

PAPER_TABLE_4 = {3: {"ram": 9088, "gam": 5248}, 6: {"ram": 6656, "gam": 3328}}  # images/s, RTX 3080
WORLDS = {"GlimpseMNIST-v0": dict(train_speed.MNIST), "GlimpseHouseNumbers-v0": dict(size=20_000)}


class Report:
    """Prints one line per figure and keeps it for the CSV."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.rows = device, []

    def add(
        self, figure: str, setting: str, value: float, unit: str, cpu: float | None = None, reference: str = ""
    ) -> None:
        row = {
            "figure": figure,
            "device": self.device.type,
            "setting": setting,
            "value": round(value, 3),
            "unit": unit,
            "cpu_value": "" if cpu is None else round(cpu, 3),
            "reference": reference,
        }
        self.rows.append(row)
        extra = "" if cpu is None else f" cpu={cpu:,.1f}"
        print(
            f"gpu_check {figure} device={self.device.type} {setting} {unit}={value:,.1f}{extra}"
            f"{' ' + reference if reference else ''}",
            flush=True,
        )

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self.rows[0]))
            writer.writeheader()
            writer.writerows(self.rows)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def env_steps_per_second(env_id: str, num_envs: int, device: torch.device, steps: int) -> tuple[float, int]:
    """(env steps/s of ``steps`` batched steps after a warm-up episode, peak bytes: device memory on CUDA, the
    world's own tensors on the CPU)."""
    envs = gym.make_vec(env_id, num_envs=num_envs, device=device, **WORLDS[env_id])
    width = envs.single_action_space.shape[0]
    generator = torch.Generator(device=device).manual_seed(0)
    actions = torch.rand((8, num_envs, width), generator=generator, device=device) * 2.0 - 1.0
    envs.reset(seed=0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for step in range(envs.world.n_glimpses):
        envs.step(actions[step % 8])
    synchronize(device)
    start = time.perf_counter()
    for step in range(steps):
        envs.step(actions[step % 8])
    synchronize(device)
    rate = steps * num_envs / (time.perf_counter() - start)
    memory = envs.memory_bytes()
    peak = (
        torch.cuda.max_memory_allocated(device)
        if device.type == "cuda"
        else memory["dataset"] + memory["per_env"] * num_envs
    )
    return rate, peak


def time_to_accuracy(
    device: torch.device, target: float, budget: float, batch: int, chunk: int, out: Path
) -> tuple[float | None, float, int]:
    """(seconds of training until the t10k-test accuracy reached ``target``, or None; best accuracy; updates)."""
    config = TrainConfig.from_recipe(  # RAM's recipe (its world options merged under these)
        "ram",
        "GlimpseMNIST-v0",
        env_kwargs=dict(train_speed.MNIST),
        eval_split="t10k-test",
        batch=batch,
        steps=10**6,
        device=str(device),
    )
    trainer = Trainer(config, out)
    trained, best = 0.0, 0.0
    while trained < budget:
        synchronize(device)
        start = time.perf_counter()
        for _ in range(chunk):
            trainer.train_step()
        synchronize(device)
        trained += time.perf_counter() - start
        best = max(best, evaluate(trainer.agent, config, trainer.device, split="t10k-test")["accuracy"])
        if best >= target:
            return trained, best, trainer.update
    return None, best, trainer.update


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cuda or cpu")
    parser.add_argument("--quick", action="store_true", help="every part small: checks the script, not the speed")
    parser.add_argument("--csv", type=Path, default=Path("runs/gpu/gpu.csv"))
    parser.add_argument("--budget", type=float, default=150.0, help="seconds of training for the time to 98 %%")
    args = parser.parse_args()
    device, cpu = resolve_device(args.device), torch.device("cpu")
    quick = args.quick
    if device.type != "cuda":
        print("gpu_check note: no CUDA device in use: figures are the CPU's (the GPU columns need a GPU)")
    report = Report(device)
    torch.manual_seed(0)
    env_sizes, env_steps = ((64, 256) if quick else (4096, 65_536, 262_144)), (4 if quick else 60)
    for env_id in WORLDS:
        cpu_rate = env_steps_per_second(env_id, env_sizes[0], cpu, env_steps)[0] if device.type == "cuda" else None
        for num_envs in env_sizes:
            rate, peak = env_steps_per_second(env_id, num_envs, device, env_steps)
            report.add(
                "env_steps",
                f"id={env_id} envs={num_envs} peak_mb={peak / 2**20:,.0f}",
                rate,
                "steps_per_s",
                cpu_rate if num_envs == env_sizes[0] else None,
            )

    batches, updates, repeats = ((16, 32) if quick else (1024, 4096)), (2 if quick else 20), (1 if quick else 3)
    for batch in batches:
        reference = train_speed.reference_images_per_second(batch, updates, repeats, device=device)
        cpu_rate = train_speed.images_per_second(batch, "cpu", False, 2, 1) if device.type == "cuda" else None
        for compiled in (False, True):
            if compiled and quick:
                continue  # compiling takes minutes on the CPU: the full run measures it
            rate = train_speed.images_per_second(batch, str(device), compiled, updates, repeats)
            report.add(
                "ram_training",
                f"batch={batch} compile={compiled}",
                rate,
                "images_per_s",
                None if compiled else cpu_rate,
                reference=f"reference_style={reference:,.0f} ratio={rate / reference:.1f}x",
            )

    batch = 64 if quick else 4096
    for glimpses in (3, 6):
        rates = {}
        for where in [device] + ([cpu] if device.type == "cuda" else []):
            envs = gym.make_vec(
                "GlimpseHouseNumbers-v0",
                num_envs=batch,
                device=where,
                n_glimpses=glimpses,
                **{**inference.WORLD, "size": max(batch, 1024)},
            )
            space, classes = envs.single_observation_space, envs.world.num_classes
            for name in ("ram", "gam"):
                agent = make_agent(TrainConfig(agent=name), space, classes).to(where).eval()
                repeats_here = 1 if quick or where != device else 5
                rates[where.type, name] = inference.images_per_second(agent, envs, repeats_here, where)
        for name in ("ram", "gam"):
            rate, paper = rates[device.type, name], PAPER_TABLE_4[glimpses][name]
            report.add(
                "inference",
                f"agent={name} glimpses={glimpses} batch={batch}",
                rate,
                "images_per_s",
                rates.get(("cpu", name)) if device.type == "cuda" else None,
                reference=f"paper_rtx3080={paper:,} ratio={rate / paper:.1f}x",
            )

    budget = 5.0 if quick else args.budget
    seconds, best, done = time_to_accuracy(
        device, 0.98, budget, 32 if quick else 512, 5 if quick else 100, args.csv.parent / "time_to_accuracy"
    )
    setting = f"target=0.98 budget_s={budget:.0f} updates={done} best_accuracy={best:.4f}"
    report.add(
        "time_to_98",
        setting + (" reached" if seconds is not None else " not_reached"),
        seconds if seconds is not None else budget,
        "seconds",
    )
    report.write(args.csv)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"gpu_check wrote {args.csv} ({len(report.rows)} figures; host peak RSS {rss:,.0f} MB)", flush=True)


if __name__ == "__main__":
    main()
