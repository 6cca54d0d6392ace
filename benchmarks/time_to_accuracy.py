"""Time to accuracy: RAM's test accuracy against wall-clock training seconds and images seen, on the MNIST t10k split
(train on the first 8,000 digits, test on the last 2,000), beside the reference-style training step of
``train_speed.py`` trained in the same run on the same data.

RAM runs with its default recipe (``TrainConfig.from_recipe("ram", "GlimpseMNIST-v0")``); the reference-style step
is the one ``train_speed.py`` times (its layout: a Python-loop retina, a ReLU core, ``torch.distributions``
locations, Adam 1e-3, random first location). Both are tested every ``--every`` updates on all 2,000 test digits
with the mean location path; the clock counts training only. One line per test, then one line per model and
target: the seconds and images it took to first reach 95, 97 and 98 % (or "not reached"); last, RAM's three
accuracies of the evaluation protocol at the end (mean path, one sampled path, 10 paths averaged).

    python benchmarks/time_to_accuracy.py [--updates 3000] [--every 250] [--batch 128] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from activevision.agents import TrainConfig, Trainer, evaluate, protocol
from activevision.data.mnist import MNIST as MNISTData

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning import MNIST_DIR, T10K  # noqa: E402  (the t10k protocol's data)
from train_speed import ReferenceStyleRAM  # noqa: E402

TARGETS = (0.95, 0.97, 0.98)


def reference_run(updates: int, every: int, batch: int, seed: int) -> list[tuple[int, float, float]]:
    """(updates, training seconds, test accuracy) of the reference-style step, tested every ``every`` updates."""
    torch.manual_seed(seed)

    def tensors(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = MNISTData(split, data_dir=MNIST_DIR, download=False).arrays()
        return torch.as_tensor(images).permute(0, 3, 1, 2).float() / 255.0, torch.as_tensor(labels).long()

    (train_x, train_y), (test_x, test_y) = tensors("t10k-train"), tensors("t10k-test")
    model = ReferenceStyleRAM()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(train_x))
    results, seconds = [], 0.0
    for update in range(1, updates + 1):
        start = time.perf_counter()
        pick = order[torch.arange((update - 1) * batch, update * batch) % len(order)]
        x, y = train_x[pick], train_y[pick]
        h, loc = torch.zeros(batch, 256), torch.rand(batch, 2) * 2.0 - 1.0
        log_pis, baselines = [], []
        for _ in range(6):
            h, loc, baseline, log_pi = model(x, loc, h)
            log_pis.append(log_pi)
            baselines.append(baseline)
        log_probas = F.log_softmax(model.classifier(h), dim=1)
        reward = (log_probas.argmax(1) == y).float()[:, None].repeat(1, 6)
        log_pi, baseline = torch.stack(log_pis, 1), torch.stack(baselines, 1)
        loss = (
            F.nll_loss(log_probas, y)
            + F.mse_loss(baseline, reward)
            - (log_pi * (reward - baseline).detach()).sum(1).mean()
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seconds += time.perf_counter() - start
        if update % every == 0:
            results.append((update, seconds, reference_accuracy(model, test_x, test_y)))
    return results


@torch.no_grad()
def reference_accuracy(model: ReferenceStyleRAM, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Test accuracy of the reference-style model along its mean location path (first location: the centre)."""
    h, loc = torch.zeros(len(images), 256), torch.zeros(len(images), 2)
    for _ in range(6):
        what = F.relu(model.fc_what(model.retina(images, loc)))
        g = F.relu(model.what_out(what) + model.where_out(F.relu(model.fc_where(loc))))
        h = F.relu(model.i2h(g) + model.h2h(h))
        loc = torch.tanh(model.loc_out(F.relu(model.loc_hidden(h))))
    return float((model.classifier(h).argmax(1) == labels).float().mean())


def ram_run(updates: int, every: int, batch: int, seed: int) -> tuple[list[tuple[int, float, float]], dict]:
    """(updates, training seconds, test accuracy) of RAM with its recipe, tested every ``every`` updates; and the
    three accuracies of the evaluation protocol at the end."""
    config = TrainConfig.from_recipe(
        "ram",
        "GlimpseMNIST-v0",
        env_kwargs=dict(T10K),
        eval_split="t10k-test",
        steps=updates,
        batch=batch,
        seed=seed,
        device="cpu",
    )
    trainer = Trainer(config, "/tmp/activevision-time-to-accuracy")
    results, seconds = [], 0.0
    while trainer.update < updates:
        start = time.perf_counter()
        trainer.train_step()
        seconds += time.perf_counter() - start
        if trainer.update % every == 0:
            accuracy = evaluate(trainer.agent, trainer.config, trainer.device, split="t10k-test")["accuracy"]
            results.append((trainer.update, seconds, accuracy))
    return results, protocol(trainer.agent, trainer.config, trainer.device, split="t10k-test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    ram, final = ram_run(args.updates, args.every, args.batch, args.seed)
    runs = {"ram-recipe": ram, "reference-style": reference_run(args.updates, args.every, args.batch, args.seed)}
    for name, results in runs.items():
        for update, seconds, accuracy in results:
            print(
                f"time_to_accuracy model={name} updates={update} images={update * args.batch} "
                f"train_s={seconds:.1f} test_accuracy={accuracy:.4f}",
                flush=True,
            )
    for name, results in runs.items():
        for target in TARGETS:
            first = next(((u, s) for u, s, a in results if a >= target), None)
            reached = f"train_s={first[1]:.1f} images={first[0] * args.batch}" if first else "not reached"
            print(f"time_to_accuracy model={name} target={target:.2f} {reached}", flush=True)
    print(
        f"time_to_accuracy model=ram-recipe updates={args.updates} mean_path={final['mean_path']:.4f} "
        f"sampled={final['sampled']:.4f} mc{final['mc']}={final['mc_paths']:.4f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
