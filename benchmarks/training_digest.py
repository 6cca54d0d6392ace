"""What each agent learns, as a fingerprint: every agent family trained a few updates from fixed seeds on the CPU,
one line per run with a SHA-256 of its parameters and its last loss. Run it before and after a change that must
not alter learning (a refactor): equal digests mean bit-identical training, so every learning figure reproduces.

    python benchmarks/training_digest.py [--updates 8]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch

from activevision.agents.trainer import TrainConfig, Trainer

MNIST = dict(
    data_dir=str(Path(__file__).resolve().parents[1] / "tests" / "data" / "mnist"), split="t10k-train", download=False
)
RUNS = {
    "ram": dict(core="gru", classify_steps="all", lr_final=1e-4, warmup=3, env_kwargs=dict(MNIST, shift=2)),
    "ram-paper": dict(agent="ram"),
    "ram-random": dict(agent="ram", policy="random"),
    "gam": dict(encoder_skip=True, warmup=2, classify_steps="all", hidden=64),
    "topdown": dict(env="GlimpseHouseNumbers-v0", env_kwargs=dict(size=500), target_every=3),
    "ppo-ram": dict(ppo_epochs=2, minibatches=2),
    "ppo-gam": dict(ppo_epochs=2, minibatches=2, entropy=0.01),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name, options in RUNS.items():
        options = {
            "agent": name.split("-paper")[0].split("-random")[0],
            "env": "GlimpseMNIST-v0",
            "env_kwargs": MNIST,
            "batch": 32,
            "steps": args.updates,
            "device": "cpu",
            "seed": 3,
            **options,
        }
        trainer = Trainer(TrainConfig(**options), f"/tmp/activevision-training-digest/{name}")
        metrics = [trainer.train_step() for _ in range(args.updates)]
        digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in trainer.agent.parameters()))
        print(
            f"training_digest run={name} updates={args.updates} params_sha256={digest.hexdigest()[:16]} "
            f"loss={metrics[-1]['loss']!r}",
            flush=True,
        )


if __name__ == "__main__":
    main()
