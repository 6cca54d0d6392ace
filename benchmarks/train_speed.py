"""Training speed of RAM: images/s of one REINFORCE update (batch 128, 6 glimpses of 8x8 on 28x28 MNIST).

Eager and ``--compile`` (torch.compile of the agent's step and the world's glimpse), measured in the same run
against a baseline also measured in that run: a training step written the way the widely used reference PyTorch
RAM writes its own (re-written here, not copied: its retina cuts each image's patch in a Python loop over the
batch from a padded copy of the batch, ``torch.distributions.Normal`` locations, a two-layer location network,
the same layer sizes, the hybrid loss, Adam), on in-memory MNIST tensors (its data loader is not counted).
The issue quotes ~5,300 images/s for that reference on these 2 cores (target 16,000). On a GPU (when present)
also batch 1024 and 4096.

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
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from activevision.agents.reinforce import hybrid_loss
from activevision.agents.rollout import rollout
from activevision.agents.trainer import TrainConfig, Trainer

MNIST = dict(
    data_dir=str(Path(__file__).resolve().parents[1] / "tests" / "data" / "mnist"), split="t10k-train", download=False
)


def images_per_second(batch: int, device: str, compile: bool, updates: int, repeats: int) -> float:
    trainer = Trainer(
        TrainConfig(env="GlimpseMNIST-v0", env_kwargs=MNIST, batch=batch, device=device, compile=compile),
        "/tmp/activevision-train-speed",
    )
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


class ReferenceStyleRAM(nn.Module):
    """RAM as the reference implementation lays it out: retina, glimpse net, ReLU core, location net with a
    hidden layer, baseline, classifier; sizes 8x8 glimpse, 128 / 128 / 256."""

    def __init__(self, patch: int = 8, hidden: int = 256, std: float = 0.17) -> None:
        super().__init__()
        self.patch, self.std = patch, std
        self.fc_what, self.fc_where = nn.Linear(patch * patch, 128), nn.Linear(2, 128)
        self.what_out, self.where_out = nn.Linear(128, hidden), nn.Linear(128, hidden)
        self.i2h, self.h2h = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.loc_hidden, self.loc_out = nn.Linear(hidden, hidden // 2), nn.Linear(hidden // 2, 2)
        self.baseline, self.classifier = nn.Linear(hidden, 1), nn.Linear(hidden, 10)

    def retina(self, images: torch.Tensor, loc: torch.Tensor) -> torch.Tensor:
        """One 8x8 patch per image around ``loc``: pad the batch, then slice each image in a Python loop."""
        size, height = self.patch, images.shape[-1]
        start = (0.5 * ((loc + 1.0) * height)).long()
        padded = F.pad(images, (size // 2, size // 2, size // 2, size // 2))
        patches = [
            padded[i, :, start[i, 1] : start[i, 1] + size, start[i, 0] : start[i, 0] + size]
            for i in range(images.shape[0])
        ]
        return torch.stack(patches).flatten(1)

    def forward(self, images: torch.Tensor, loc: torch.Tensor, h: torch.Tensor):
        what = F.relu(self.fc_what(self.retina(images, loc)))
        where = F.relu(self.fc_where(loc))
        g = F.relu(self.what_out(what) + self.where_out(where))
        h = F.relu(self.i2h(g) + self.h2h(h))
        mean = torch.tanh(self.loc_out(F.relu(self.loc_hidden(h.detach()))))
        policy = torch.distributions.Normal(mean, self.std)
        new_loc = policy.rsample().detach()
        log_pi = policy.log_prob(new_loc).sum(1)
        return h, torch.clamp(new_loc, -1.0, 1.0), self.baseline(h.detach()).squeeze(1), log_pi


def reference_images_per_second(
    batch: int, updates: int, repeats: int, glimpses: int = 6, device: str | torch.device = "cpu"
) -> float:
    """Images/s of the reference-style training step on MNIST t10k images already in memory (on ``device``)."""
    from activevision.data.mnist import MNIST as MNISTData

    torch.manual_seed(0)
    device = torch.device(device)
    images, labels = MNISTData(**MNIST).arrays()
    images = (torch.as_tensor(images).permute(0, 3, 1, 2).float() / 255.0).to(device)
    labels = torch.as_tensor(labels).long().to(device)
    model = ReferenceStyleRAM().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def update(step: int) -> None:
        pick = torch.arange(step * batch, (step + 1) * batch, device=device) % len(images)
        x, y = images[pick], labels[pick]
        h, loc = torch.zeros(batch, 256, device=device), torch.rand(batch, 2, device=device) * 2.0 - 1.0
        log_pis, baselines = [], []
        for _ in range(glimpses):
            h, loc, baseline, log_pi = model(x, loc, h)
            log_pis.append(log_pi)
            baselines.append(baseline)
        log_probas = F.log_softmax(model.classifier(h), dim=1)
        reward = (log_probas.argmax(1) == y).float()[:, None].repeat(1, glimpses)
        log_pi, baseline = torch.stack(log_pis, 1), torch.stack(baselines, 1)
        advantage = (reward - baseline).detach()
        loss = F.nll_loss(log_probas, y) + F.mse_loss(baseline, reward) - (log_pi * advantage).sum(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for step in range(5):
        update(step)
    best = 0.0
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for step in range(updates):
            update(step)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = max(best, updates * batch / (time.perf_counter() - start))
    return best


def ceiling(batch: int, repeats: int) -> tuple[float, float, float]:
    """(MFLOP per image of one update, best float32 GFLOP/s of a batch x hidden x hidden product, ceiling in
    images/s): what the model's arithmetic alone allows on this CPU."""
    trainer = Trainer(
        TrainConfig(env="GlimpseMNIST-v0", env_kwargs=MNIST, batch=batch, device="cpu"), "/tmp/activevision-train-speed"
    )
    with FlopCounterMode(display=False) as counter:
        obs, _ = trainer.envs.reset(seed=0)
        episode = rollout(trainer.agent, trainer.envs, obs, generator=trainer.generator)
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
    reference = reference_images_per_second(128, args.updates, args.repeats)
    print(
        f"train_speed agent=reference-style-ram device=cpu batch=128 images_per_s={reference:,.0f} "
        f"(quoted for the reference on these cores: 5,300)",
        flush=True,
    )
    eager = images_per_second(128, "cpu", False, args.updates, args.repeats)
    print(
        f"train_speed agent=ram device=cpu batch=128 compile=False images_per_s={eager:,.0f} "
        f"vs_reference_style={eager / reference:.2f}x target>=16,000",
        flush=True,
    )
    compiled = images_per_second(128, "cpu", True, args.updates, args.repeats)
    print(
        f"train_speed agent=ram device=cpu batch=128 compile=True images_per_s={compiled:,.0f} "
        f"vs_eager={compiled / eager:.2f}x vs_reference_style={compiled / reference:.2f}x target>=16,000",
        flush=True,
    )
    mflop, gflops, limit = ceiling(128, args.repeats)
    print(
        f"train_speed agent=ram device=cpu batch=128 mflop_per_image={mflop:.2f} matmul_gflops={gflops:.0f} "
        f"arithmetic_ceiling_images_per_s={limit:,.0f} target>=16,000",
        flush=True,
    )
    if torch.cuda.is_available():
        for batch in (1024, 4096):
            rate = images_per_second(batch, "cuda", True, args.updates, args.repeats)
            print(f"train_speed agent=ram device=cuda batch={batch} compile=True images_per_s={rate:,.0f}", flush=True)
    else:
        print("train_speed device=cuda skipped: no CUDA device on this machine")


if __name__ == "__main__":
    main()
