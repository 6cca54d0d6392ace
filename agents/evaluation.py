"""Evaluation and trace: a trained agent on every image of a split once (accuracy, pixels seen), and on its first
images with where it looked (the material of glimpse pictures). Both use the training rollout, deterministic."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch

from activevision.agents.config import TrainConfig
from activevision.agents.rollout import rollout
from activevision.checks import check_int
from activevision.envs.presets import PRESETS, make_dataset
from activevision.envs.vector import GlimpseVectorEnv

__all__ = ["make_envs", "test_kwargs", "evaluate", "protocol", "trace"]


def make_envs(config: TrainConfig, device: torch.device, num_envs: int, **overrides: Any) -> GlimpseVectorEnv:
    """The batched world of ``config`` (continuous actions), ``overrides`` over its ``env_kwargs``."""
    kwargs = {**config.env_kwargs, "action_mode": "continuous", **overrides}
    envs = gym.make_vec(config.env, num_envs=num_envs, device=device, compile=config.compile, **kwargs)
    assert isinstance(envs, GlimpseVectorEnv)  # every registered world's batched entry point makes one
    return envs


def test_kwargs(config: TrainConfig, split: str) -> dict[str, Any]:
    """The world options of a test on ``split``: ``eval_env_kwargs`` over ``env_kwargs``, no augmentation."""
    return {**config.env_kwargs, **config.eval_env_kwargs, "split": split, "order": "sequential", "shift": 0}


test_kwargs.__test__ = False  # type: ignore[attr-defined]  # not a test for pytest, whatever its name


@torch.no_grad()
def evaluate(
    agent: Any,  # an nn.Module with the GlimpseAgent step interface
    config: TrainConfig,
    device: torch.device,
    split: str = "test",
    mc: int = 1,
    limit: int | None = None,
    sample: bool | None = None,
) -> dict[str, float]:
    """Accuracy and mean pixels seen over every image of ``split`` once (the first ``limit`` if given), in the
    world of ``env_kwargs`` with ``eval_env_kwargs`` over them and no ``shift``.

    ``mc=1``: the location head's mean, no sampling (or one sampled path with ``sample=True``). ``mc=M``: M runs
    with sampled locations, class probabilities averaged. ``protocol`` gives all three.
    """
    check_int("mc", mc, 1)
    config = config.resolved()  # the world the agent was trained in (e.g. the context size its agent asks for)
    agent.eval()
    world_options = PRESETS[config.env][1]
    kwargs = test_kwargs(config, split)
    size = len(make_dataset(config.env, **{k: v for k, v in kwargs.items() if k in world_options}))
    total = size if limit is None else min(limit, size)
    batch = min(config.eval_batch, total)
    envs = make_envs(config, device, batch, **kwargs)
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed + 7)
    # A policy with a learned std (PPO's) samples with it; others with the std training ended with.
    std = float(agent.std()) if callable(getattr(agent, "std", None)) else config.std_final or config.std
    correct, seen, counted = 0, 0.0, 0
    for start in range(0, total, batch):
        index = (torch.arange(batch, device=device) + start) % size
        probabilities, keep = torch.zeros(()), min(batch, total - start)
        for _ in range(mc):
            obs, _ = envs.reset(options={"index": index})
            deterministic = mc == 1 and not sample
            episode = rollout(
                agent, envs, obs, policy=config.policy, std=std, deterministic=deterministic, generator=generator
            )
            probabilities = probabilities + torch.softmax(episode.logits, dim=1)
        prediction = probabilities.argmax(1)[:keep]
        correct += int((prediction == episode.labels[:keep]).sum())
        seen += float(episode.pixels_seen[:keep].sum())
        counted += keep
    return {"accuracy": correct / counted, "pixels_seen": seen / counted, "images": counted, "mc": mc}


def protocol(
    agent: Any, config: TrainConfig, device: torch.device, split: str = "test", mc: int = 10, limit: int | None = None
) -> dict[str, float]:
    """The three accuracies the RAM literature mixes, side by side: the mean location path (``mean_path``), one
    sampled path (``sampled``) and ``mc`` sampled paths with class probabilities averaged (``mc_paths``); with
    the mean path's ``pixels_seen`` and the number of ``images``."""
    mean = evaluate(agent, config, device, split, limit=limit)
    sampled = evaluate(agent, config, device, split, limit=limit, sample=True)
    averaged = evaluate(agent, config, device, split, mc=mc, limit=limit)
    return {
        "mean_path": mean["accuracy"],
        "sampled": sampled["accuracy"],
        "mc_paths": averaged["accuracy"],
        "mc": mc,
        "pixels_seen": mean["pixels_seen"],
        "images": mean["images"],
    }


@torch.no_grad()
def trace(
    agent: Any, config: TrainConfig, device: torch.device, split: str = "test", examples: int = 8
) -> dict[str, Any]:
    """The first ``examples`` images of ``split``, with where the agent looked (``locs``: (n, T, 2)), what it
    answered and the truth: the material of glimpse pictures."""
    config = config.resolved()
    agent.eval()
    envs = make_envs(config, device, examples, **test_kwargs(config, split))
    obs, _ = envs.reset(options={"index": torch.arange(examples, device=device)})
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed + 7)
    episode = rollout(agent, envs, obs, policy=config.policy, deterministic=True, generator=generator)
    world = envs.world
    # The images, or small overviews of canvases too large to draw (all shrunk by the same factor).
    pictures = [envs.source.picture(i) for i in range(examples)]
    images, factor = [picture for picture, _ in pictures], pictures[0][1]

    def boxes_of(loc: Any, height: int, width: int) -> Any:
        """The glimpse boxes at full size, scaled to the picture (an overview's factor)."""
        return world.geometry.boxes(loc, world.height, world.width) // factor

    return {
        "images": images,
        "locs": episode.locs.transpose(0, 1).cpu().numpy(),
        "predictions": episode.logits.argmax(1).tolist(),
        "labels": episode.labels.tolist(),
        "boxes_of": boxes_of,
    }
