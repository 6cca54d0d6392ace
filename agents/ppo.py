"""PPO for glimpse policies (clipped surrogate, GAE, minibatch epochs over whole episodes), on a batched world.

One update, read top to bottom:
1. collect: one episode of every env in the batch with the current policy and no gradients, recording what the
   agent saw (its first observation, every glimpse and where it was taken), the log-density of every sampled
   location and the value head's estimate at each location decision;
2. advantages: GAE over the decisions (reward 1 for a right final answer, after the last decision), then the
   returns the value head regresses to;
3. ``epochs`` passes over ``minibatches`` minibatches of whole episodes: each episode's recorded glimpses are
   replayed through the agent, so its recurrent state is recomputed under the current parameters (the glimpses
   depend only on the recorded locations, not on the parameters); loss = clipped surrogate + ``vf_coef`` x value
   MSE + cross-entropy of the answers (the classifier's part of RAM's hybrid loss) - ``ent_coef`` x entropy, with
   advantages normalised per minibatch.

The policy is a ``GaussianPolicy``: a RAM or GAM core (the step interface) whose Gaussian location policy has a
learned log std, so the entropy bonus has something to act on. Its value head is the core's baseline head.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from activevision.agents.interface import GlimpseAgent
from activevision.agents.reinforce import rollout

__all__ = ["GaussianPolicy", "PPOSettings", "Collected", "collect", "replay", "gae", "clipped_surrogate", "ppo_update"]

LOG_STD_RANGE = (math.log(0.01), math.log(1.0))  # locations live in [-1, 1]: wider is noise, narrower is frozen


class GaussianPolicy(nn.Module):
    """A glimpse agent with the RAM step interface (``RAM`` or ``GAM``) plus a learned, state-independent log std
    of its Gaussian location policy (PPO's entropy bonus needs a std that can change)."""

    def __init__(self, core: GlimpseAgent, std: float) -> None:
        super().__init__()
        self.core: GlimpseAgent = core
        self.log_std = nn.Parameter(torch.tensor(math.log(std)))

    def std(self) -> torch.Tensor:
        """The location std (a scalar tensor, clamped to [0.01, 1])."""
        return self.log_std.clamp(*LOG_STD_RANGE).exp()

    def initial_state(self, obs: dict[str, torch.Tensor]):
        return self.core.initial_state(obs)

    def first(self, state) -> tuple[torch.Tensor, torch.Tensor]:
        return self.core.first(state)

    def forward(self, glimpse: torch.Tensor, loc: torch.Tensor, state):
        return self.core(glimpse, loc, state)


@dataclass
class PPOSettings:
    """PPO's own settings (CleanRL's names); the trainer fills them from its config."""

    epochs: int = 4
    minibatches: int = 4
    clip_range: float = 0.2
    gamma: float = 1.0
    gae_lambda: float = 0.95
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    norm_adv: bool = True
    classify_steps: str = "last"


@dataclass
class Collected:
    """One batched episode as PPO stores it (time first, batch second)."""

    first_obs: dict[str, torch.Tensor]  # the observation before the first step (context, batch size)
    glimpses: torch.Tensor  # (T, B, scales, C, p, p)
    locs: torch.Tensor  # (T, B, 2): where each glimpse was taken
    actions: torch.Tensor  # (L, B, 2): the sampled locations (L = T - 1, or T when the world's start is "choose")
    log_probs: torch.Tensor  # (L, B)
    values: torch.Tensor  # (L, B)
    reward: torch.Tensor  # (B,)
    labels: torch.Tensor  # (B,)
    pixels_seen: torch.Tensor  # (B,)


@torch.no_grad()
def collect(agent: GaussianPolicy, envs, obs: dict[str, torch.Tensor], generator: torch.Generator) -> Collected:
    """One episode of every env with the current policy (sampled locations), recorded for replay."""
    locations: list[torch.Tensor] = []
    glimpses: list[torch.Tensor] = []
    episode, _ = rollout(
        agent, envs, obs, std=float(agent.std()), generator=generator, locations=locations, glimpses=glimpses
    )
    locs = torch.stack(locations)
    decisions = episode.log_probs.shape[0]
    return Collected(
        first_obs=dict(obs),
        glimpses=torch.stack(glimpses),
        locs=locs,
        actions=locs[len(locs) - decisions :],
        log_probs=episode.log_probs,
        values=episode.baselines,
        reward=episode.reward,
        labels=episode.labels,
        pixels_seen=episode.pixels_seen,
    )


def replay(
    agent: GaussianPolicy,
    first_obs: dict[str, torch.Tensor],
    glimpses: torch.Tensor,
    locs: torch.Tensor,
    decisions: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the agent over recorded episodes: the location means ``(L, B, 2)`` and values ``(L, B)`` of the last
    ``decisions`` decisions, and the class scores after every glimpse ``(T, B, K)``. With the parameters of the
    collection, equal to what ``collect`` saw."""
    state = agent.initial_state(first_obs)
    means, values, logits = [], [], []
    if decisions > len(glimpses) - 1:  # start "choose": a decision before the first glimpse
        mean, value = agent.first(state)
        means.append(mean)
        values.append(value)
    for t in range(len(glimpses)):
        state, scores, mean, value = agent(glimpses[t], locs[t], state)
        logits.append(scores)
        means.append(mean)
        values.append(value)
    means, values = means[:decisions], values[:decisions]
    empty = locs.new_zeros((0, locs.shape[1]))
    return (
        torch.stack(means) if means else empty[..., None].expand(0, locs.shape[1], 2),
        torch.stack(values) if values else empty,
        torch.stack(logits),
    )


def gae(rewards: torch.Tensor, values: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """Generalised advantage estimates ``(L, B)`` of episodes that end after their last decision (no bootstrap
    value there): ``delta_t = r_t + gamma V_{t+1} - V_t``, ``A_t = delta_t + gamma lam A_{t+1}``."""
    advantages = torch.zeros_like(values)
    running = torch.zeros_like(values[0]) if len(values) else values.new_zeros(())
    for t in reversed(range(len(values))):
        next_value = values[t + 1] if t + 1 < len(values) else torch.zeros_like(values[t])
        delta = rewards[t] + gamma * next_value - values[t]
        running = delta + gamma * lam * running
        advantages[t] = running
    return advantages


def clipped_surrogate(
    log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor, clip_range: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's policy loss ``-mean(min(ratio A, clip(ratio, 1 - eps, 1 + eps) A))`` and the fraction of clipped
    ratios."""
    ratio = (log_probs - old_log_probs).exp()
    unclipped = ratio * advantages
    clipped = ratio.clamp(1.0 - clip_range, 1.0 + clip_range) * advantages
    fraction = ((ratio - 1.0).abs() > clip_range).float().mean()
    return -torch.min(unclipped, clipped).mean(), fraction


def ppo_update(
    agent: GaussianPolicy,
    envs,
    obs: dict[str, torch.Tensor],
    settings: PPOSettings,
    generator: torch.Generator,
    optimise: Callable[[torch.Tensor], None],
) -> dict[str, float]:
    """Collect one batched episode and run PPO's epochs over it; ``optimise(loss)`` takes one gradient step
    (the trainer's: zero grads, backward, average over processes, clip, Adam). Returns the logged values."""
    data = collect(agent, envs, obs, generator)
    decisions, batch = data.log_probs.shape
    rewards = torch.zeros_like(data.values)
    if decisions:
        rewards[-1] = data.reward  # the answer's reward comes after the last location decision
    advantages = gae(rewards, data.values, settings.gamma, settings.gae_lambda)
    returns = advantages + data.values
    size = math.ceil(batch / settings.minibatches)
    sums: dict[str, float] = {}
    agent.train()
    for _ in range(settings.epochs):
        order = torch.randperm(batch, generator=generator, device=generator.device).to(data.labels.device)
        for start in range(0, batch, size):
            ids = order[start : start + size]
            first = {key: value[ids] for key, value in data.first_obs.items()}
            means, values, logits = replay(agent, first, data.glimpses[:, ids], data.locs[:, ids], decisions)
            std = agent.std()
            if settings.classify_steps == "all":
                classify = F.cross_entropy(logits.flatten(0, 1), data.labels[ids].repeat(len(logits)))
            else:
                classify = F.cross_entropy(logits[-1], data.labels[ids])
            entropy = torch.distributions.Normal(means.new_zeros(()), std).entropy() * 2.0  # per 2-d location
            if decisions:
                log_probs = torch.distributions.Normal(means, std).log_prob(data.actions[:, ids]).sum(-1)
                advantage = advantages[:, ids]
                if settings.norm_adv and advantage.numel() > 1:
                    advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
                policy, clipped = clipped_surrogate(log_probs, data.log_probs[:, ids], advantage, settings.clip_range)
                value = F.mse_loss(values, returns[:, ids])
                log_ratio = log_probs - data.log_probs[:, ids]
                approx_kl = (log_ratio.exp() - 1 - log_ratio).mean()  # the low-variance estimator CleanRL logs
            else:  # one glimpse at the centre: nothing to place, only the classifier learns
                policy = value = approx_kl = clipped = classify * 0.0
            loss = classify + policy + settings.vf_coef * value - settings.ent_coef * entropy
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"the loss became {loss.item()}: lower the learning rate or check the inputs")
            optimise(loss)
            for name, part in (
                ("loss", loss),
                ("classify", classify),
                ("policy", policy),
                ("value", value),
                ("entropy", entropy),
                ("approx_kl", approx_kl),
                ("clip_fraction", clipped),
            ):
                sums[name] = sums.get(name, 0.0) + float(part.detach())
    count = settings.epochs * math.ceil(batch / size)
    metrics = {name: total / count for name, total in sums.items()}
    metrics.update(
        accuracy=data.reward.mean().item(), pixels_seen=data.pixels_seen.mean().item(), std=float(agent.std().detach())
    )
    return metrics
