"""Training speed of RAM: images/s of one REINFORCE update (batch 128, 6 glimpses of 8x8 on 28x28 MNIST).

Eager and ``--compile`` (torch.compile of the agent's step and the world's glimpse), measured in the same run;
the issue quotes ~5,300 images/s for the widely used reference PyTorch RAM on these 2 cores (target 16,000).
On a GPU (when present) also batch 1024.

It also prints the arithmetic ceiling of this machine for the same model: the step's matrix-multiply FLOPs per
image (counted by ``torch.utils.flop_counter``, forward and backward) against the float32 rate measured here for
a matrix product of the model's own shape (batch x hidden x hidden). No float32 implementation of this model
trains faster than that ceiling on this CPU, whatever the glimpse world costs.

    python benchmarks/train_speed.py [--updates 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from activevision.agents.reinforce import hybrid_loss, rollout
from activevision.agents.trainer import TrainConfig, Trainer

MNIST = dict(data_dir=str(Path(__file__).resolve().parents[1] / "tests" / "data" / "mnist"), split="t10k-train",
             download=False)


def images_per_second(batch: int, device: str, compile: bool, updates: int, repeats: int) -> float:
    trainer = Trainer(TrainConfig(env="GlimpseMNIST-v0", env_kwargs=MNIST, batch=batch, device=device,
                                  compile=compile), "/tmp/activevision-train-speed")
    for _ in range(5):  # warm up (and compile)
        trainer.train_step()
    best = 0.0
    for _ in range(repeats):
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(updates):
            trainer.train_step()
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        best = max(best, updates * batch / (time.perf_counter() - start))
    return best


def ceiling(batch: int, repeats: int) -> tuple[float, float, float]:
    """(MFLOP per image of one update, best float32 GFLOP/s of a batch x hidden x hidden product, ceiling in
    images/s): what the model's arithmetic alone allows on this CPU."""
    trainer = Trainer(TrainConfig(env="GlimpseMNIST-v0", env_kwargs=MNIST, batch=batch, device="cpu"),
                      "/tmp/activevision-train-speed")
    with FlopCounterMode(display=False) as counter:
        obs, _ = trainer.envs.reset(seed=0)
        episode, _ = rollout(trainer.agent, trainer.envs, obs, generator=trainer.generator)
        hybrid_loss(episode)[0].backward()
    flops = counter.get_total_flops() / batch
    hidden = trainer.config.hidden
    a, b = torch.randn(batch, hidden), torch.randn(hidden, hidden)
    best = float("inf")
    for _ in range(repeats * 20):
        start = time.perf_counter()
        for _ in range(50):
            torch.mm(a, b)
        best = min(best, (time.perf_counter() - start) / 50)
    rate = 2 * batch * hidden * hidden / best
    return flops / 1e6, rate / 1e9, rate / flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    eager = images_per_second(128, "cpu", False, args.updates, args.repeats)
    print(f"train_speed agent=ram device=cpu batch=128 compile=False images_per_s={eager:,.0f} "
          f"reference_ram_quoted=5,300 target>=16,000", flush=True)
    compiled = images_per_second(128, "cpu", True, args.updates, args.repeats)
    print(f"train_speed agent=ram device=cpu batch=128 compile=True images_per_s={compiled:,.0f} "
          f"vs_eager={compiled / eager:.2f}x reference_ram_quoted=5,300 target>=16,000", flush=True)
    mflop, gflops, limit = ceiling(128, args.repeats)
    print(f"train_speed agent=ram device=cpu batch=128 mflop_per_image={mflop:.2f} matmul_gflops={gflops:.0f} "
          f"arithmetic_ceiling_images_per_s={limit:,.0f} target>=16,000", flush=True)
    if torch.cuda.is_available():
        for batch in (1024, 4096):
            rate = images_per_second(batch, "cuda", True, args.updates, args.repeats)
            print(f"train_speed agent=ram device=cuda batch={batch} compile=True images_per_s={rate:,.0f}", flush=True)
    else:
        print("train_speed device=cuda skipped: no CUDA device on this machine")


if __name__ == "__main__":
    main()
