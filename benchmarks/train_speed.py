"""Training speed of RAM: images/s of one REINFORCE update (batch 128, 6 glimpses of 8x8 on 28x28 MNIST).

Eager and ``--compile`` (torch.compile of the agent's step and the world's glimpse), measured in the same run;
the issue quotes ~5,300 images/s for the widely used reference PyTorch RAM on these 2 cores (target 16,000).
On a GPU (when present) also batch 1024.

    python benchmarks/train_speed.py [--updates 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

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
    if torch.cuda.is_available():
        for batch in (1024, 4096):
            rate = images_per_second(batch, "cuda", True, args.updates, args.repeats)
            print(f"train_speed agent=ram device=cuda batch={batch} compile=True images_per_s={rate:,.0f}", flush=True)
    else:
        print("train_speed device=cuda skipped: no CUDA device on this machine")


if __name__ == "__main__":
    main()
