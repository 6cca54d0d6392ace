"""REINFORCE with the RAM paper's hybrid loss, on a batched glimpse world (CPU or GPU).

One update = one episode of every env in the batch, read top to bottom:
1. the agent reads a glimpse, updates its state, and acts: the next location (sampled from a Gaussian around
   the location head's mean, or the baseline policies' fixed choice) and its current class scores;
2. after T glimpses the world ends the episode: reward 1 for a right last answer, and the label in the final
   info (the only place the agent ever sees it);
3. loss = cross-entropy of the last scores (classifier and core) + REINFORCE for the locations with the learned
   baseline subtracted + MSE of the baseline to the reward - entropy bonus.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from activevision.agents.interface import GlimpseAgent
from activevision.checks import check_choice

__all__ = ["POLICIES", "CLASSIFY_STEPS", "Episode", "location_decisions", "rollout", "hybrid_loss"]

POLICIES = ("learned", "random", "center")  # the learned Gaussian policy, or the two baselines
CLASSIFY_STEPS = ("last", "all")  # cross-entropy of the last scores (the RAM paper) or of every step's scores


@dataclass
class Episode:
    """What one batched episode leaves for the loss (time first, batch second)."""

    log_probs: torch.Tensor  # (L, B): log-density of each sampled location that chose a glimpse (L = T - 1, or T
    entropies: torch.Tensor  # (L, B)                      with the world's start "choose": the agent places all T)
    baselines: torch.Tensor  # (L, B)
    step_logits: torch.Tensor  # (T, B, K): the class scores after every glimpse
    reward: torch.Tensor  # (B,): 1 for a right last answer
    labels: torch.Tensor  # (B,): from the world's final info
    pixels_seen: torch.Tensor  # (B,)

    @property
    def logits(self) -> torch.Tensor:
        """(B, K): the last class scores, the answer the reward judged."""
        return self.step_logits[-1]


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """Log-density of ``x`` under independent N(mean, std^2) per coordinate, summed over the last axis."""
    return (-0.5 * ((x - mean) / std) ** 2).sum(-1) - x.shape[-1] * (math.log(std) + 0.5 * math.log(2 * math.pi))


def gaussian_entropy(std: float, dims: int = 2) -> float:
    """Entropy of a ``dims``-dimensional N(mean, std^2 I): fixed for a fixed std (logged, no gradient)."""
    return dims * (0.5 + 0.5 * math.log(2 * math.pi) + math.log(std))


def location_decisions(world) -> int:
    """How many locations an agent chooses per episode of a continuous-mode world: T - 1 (the first glimpse is
    taken at reset), or T when the world's start is "choose"."""
    return world.n_glimpses - 1 + int(world.start == "choose")


def rollout(
    agent: GlimpseAgent,
    envs: Any,
    obs: dict[str, torch.Tensor],
    *,
    policy: str = "learned",
    std: float = 0.1,
    deterministic: bool = False,
    generator: torch.Generator | None = None,
    step: Callable | None = None,
    locations: list | None = None,
    glimpses: list | None = None,
    place: Callable | None = None,
) -> tuple[Episode, dict]:
    """Run one episode of every env (all start together and last T steps: the continuous action mode) with an
    agent of the RAM step interface (``RAM``, ``GAM``): ``initial_state(obs)``, ``first(state) -> (mean,
    baseline)`` of the first location (used when the world's ``start`` is "choose") and
    ``agent(glimpse, loc, state) -> (state, class scores, next location's mean, baseline)``.

    ``step`` is the agent's per-step function (``agent`` itself, or a compiled version of it); ``locations``
    and ``glimpses``, if given, receive where each glimpse was taken and what it showed (PPO replays them).
    ``place(decision, state, loc) -> loc``, if given, maps each location the policy chose (decision 0, 1, ...;
    ``state`` the agent's state when it chose) to the one sent to the world: the top-down agent's region frame.
    An agent with a ``placer(obs, decisions)`` method supplies its own (greedy) when none is given.
    Returns the episode and the observation that starts the next one (same-step autoreset).
    """
    step = agent if step is None else step
    batch = envs.num_envs
    device = obs["glimpse"].device
    state = agent.initial_state(obs)
    if place is None and hasattr(agent, "placer"):
        place = agent.placer(obs, location_decisions(envs.world))
    log_probs: list[torch.Tensor] = []
    entropies: list[torch.Tensor] = []
    baselines: list[torch.Tensor] = []
    step_logits: list[torch.Tensor] = []

    def act(mean: torch.Tensor, baseline: torch.Tensor, state: Any) -> torch.Tensor:
        """The next location: sampled around ``mean`` (or the mean itself, or a baseline policy's choice)."""
        if policy == "learned":
            if deterministic:
                loc = mean.detach()
            else:
                noise = torch.randn(mean.shape, generator=generator, device=device)
                loc = (mean + std * noise).detach().clamp(-1.0, 1.0)
            log_probs.append(gaussian_log_prob(loc, mean, std))
            entropies.append(torch.full((batch,), gaussian_entropy(std), device=device))
        elif policy == "random":
            loc = torch.rand((batch, 2), generator=generator, device=device) * 2.0 - 1.0
        else:
            loc = torch.zeros((batch, 2), device=device)
        if place is not None:
            loc = place(len(baselines), state, loc)
        baselines.append(baseline)
        return loc

    if envs.world.start == "choose":  # no glimpse yet: the agent places the first one too (scores unused)
        loc = act(*agent.first(state), state)
        obs, *_ = envs.step(torch.cat([loc, torch.zeros((batch, envs.world.num_classes), device=device)], dim=1))
    for _ in range(envs.world.n_glimpses):
        if locations is not None:
            locations.append(obs["loc"])
        if glimpses is not None:
            glimpses.append(obs["glimpse"])
        state, logits, mean, baseline = step(obs["glimpse"], obs["loc"], state)
        step_logits.append(logits)
        loc = act(mean, baseline, state)
        obs, reward, terminated, truncated, info = envs.step(torch.cat([loc, logits.detach()], dim=1))
    if not bool(terminated.all()):
        raise RuntimeError("the world's episodes did not all end after n_glimpses steps: use action_mode='continuous'")
    zeros = torch.zeros((max(len(baselines) - 1, 0), batch), device=device)
    stack = lambda values: torch.stack(values[:-1]) if len(values) > 1 else zeros  # noqa: E731
    episode = Episode(
        log_probs=stack(log_probs) if log_probs else zeros,
        entropies=stack(entropies) if entropies else zeros,
        baselines=stack(baselines),
        step_logits=torch.stack(step_logits),
        reward=reward.float(),
        labels=info["final_info"]["label"],
        pixels_seen=info["final_info"]["pixels_seen"].float(),
    )
    return episode, obs


def hybrid_loss(
    episode: Episode, entropy_coef: float = 0.0, classify_steps: str = "last"
) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy + REINFORCE with baseline + baseline MSE - entropy bonus; and its metrics for logging.

    ``classify_steps="all"``: the cross-entropy is averaged over the scores after every glimpse, not only the last
    (the reward stays the last answer's).
    """
    check_choice("classify_steps", classify_steps, CLASSIFY_STEPS)
    if classify_steps == "all":
        steps = len(episode.step_logits)
        classify = F.cross_entropy(episode.step_logits.flatten(0, 1), episode.labels.repeat(steps))
    else:
        classify = F.cross_entropy(episode.logits, episode.labels)
    reward = episode.reward[None, :].expand_as(episode.baselines)
    advantage = (reward - episode.baselines).detach()
    reinforce = -(episode.log_probs * advantage).sum(0).mean()
    baseline = F.mse_loss(episode.baselines, reward) if episode.baselines.numel() else classify * 0.0
    entropy = episode.entropies.sum(0).mean() if episode.entropies.numel() else classify * 0.0
    loss = classify + reinforce + baseline - entropy_coef * entropy
    metrics = {
        "loss": loss.item(),
        "classify": classify.item(),
        "reinforce": reinforce.item(),
        "baseline": baseline.item(),
        "entropy": entropy.item(),
    }
    if not math.isfinite(metrics["loss"]):
        raise FloatingPointError(f"the loss became {metrics['loss']}: lower the learning rate or check the inputs")
    return loss, metrics
