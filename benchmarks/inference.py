"""Inference speed of RAM vs GAM: images/s of whole test episodes (world + agent, no gradients, mean locations) at
3 and 6 glimpses of 8x8 on 32x32x3 images (the layout of the glimpse attention paper's throughput table; there,
on an RTX 3080: RNN 9,088 / 6,656 and transformer 5,248 / 3,328 images/s).

Also GAM with its cached decoding replaced by recomputing the whole prefix at every step (what a decoder without
kept keys and values does): what the cache saves. On CPU report the ratios; on a GPU the absolute figures too.
Untrained networks of the default sizes (RAM: hidden 256, MLP glimpse net; GAM: width 64, conv glimpse net,
context 12x12): speed does not depend on the weights.

    python benchmarks/inference.py [--batch 1024] [--repeats 5] [--device auto]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import torch

import activevision  # noqa: F401  (registers the ids)
from activevision.agents.gam import GAM
from activevision.agents.rollout import rollout
from activevision.agents.trainer import TrainConfig, make_agent, resolve_device

WORLD = dict(patch=8, scales=1, size=4096, context_size=12)  # synthetic house numbers: 32x32x3


class RecomputingGAM:
    """GAM without its caches: every step runs the whole sequence so far through ``GAM.sequence``."""

    def __init__(self, model: GAM) -> None:
        self.model = model

    def initial_state(self, obs: dict[str, torch.Tensor]) -> dict:
        return {"context": obs["context"], "glimpses": [], "locs": []}

    def __call__(self, glimpse: torch.Tensor, loc: torch.Tensor, state: dict):
        state["glimpses"].append(glimpse)
        state["locs"].append(loc)
        logits, means, baselines = self.model.sequence(
            torch.stack(state["glimpses"], 1), torch.stack(state["locs"], 1), state["context"]
        )
        return state, logits[:, -1], means[:, -1], baselines[:, -1]


@torch.no_grad()
def images_per_second(agent, envs, repeats: int, device: torch.device) -> float:
    """Best of ``repeats`` timed batches of whole episodes (after two warm-ups: the process's first batches ran
    up to 4x slower)."""
    best = 0.0
    for repeat in range(repeats + 2):
        obs, _ = envs.reset(seed=repeat)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        rollout(agent, envs, obs, deterministic=True, step=agent)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if repeat >= 2:
            best = max(best, envs.num_envs / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    for glimpses in (3, 6):
        envs = gym.make_vec("GlimpseHouseNumbers-v0", num_envs=args.batch, device=device, n_glimpses=glimpses, **WORLD)
        space, classes = envs.single_observation_space, envs.world.num_classes
        ram = make_agent(TrainConfig(agent="ram"), space, classes).to(device).eval()
        gam = make_agent(TrainConfig(agent="gam"), space, classes).to(device).eval()
        rates = {
            name: images_per_second(agent, envs, args.repeats, device)
            for name, agent in (("ram", ram), ("gam", gam), ("gam_recomputing", RecomputingGAM(gam)))
        }
        print(
            f"inference glimpses={glimpses} patch=8 image=32x32x3 batch={args.batch} device={device.type} "
            f"ram_images_per_s={rates['ram']:,.0f} gam_images_per_s={rates['gam']:,.0f} "
            f"gam_over_ram={rates['gam'] / rates['ram']:.2f} "
            f"gam_recomputing_images_per_s={rates['gam_recomputing']:,.0f} "
            f"cache_speedup={rates['gam'] / rates['gam_recomputing']:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
