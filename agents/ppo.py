"""PPO for glimpse policies (clipped surrogate, GAE, minibatch epochs over whole episodes), on a batched world.

One update, read top to bottom:
1. collect: one episode of every env in the batch with the current policy and no gradients (``rollout``, recording
   every glimpse): where each glimpse was taken, the log-density of every sampled location and the value head's
   estimate at each location decision;
2. advantages: GAE over the decisions (reward 1 for a right final answer, after the last decision), then the
   returns the value head regresses to;
3. ``ppo_epochs`` passes over ``minibatches`` minibatches of whole episodes: each episode's recorded glimpses are
   replayed through the agent, so its recurrent state is recomputed under the current parameters (the glimpses
   depend only on the recorded locations, not on the parameters); loss = clipped surrogate + ``vf_coef`` x value
   MSE + cross-entropy of the answers (the classifier's part of RAM's hybrid loss) - ``entropy`` x entropy, with
   advantages normalised per minibatch.

The policy is a ``GaussianPolicy``: any agent with the step interface whose Gaussian location policy has a
learned log std, so the entropy bonus has something to act on. Its value head is the agent's baseline head.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from activevision.agents.interface import GlimpseAgent, Learner
from activevision.agents.modules import Wrapper
from activevision.agents.rollout import (
    Episode,
    check_finite,
    classify_loss,
    gaussian_entropy,
    gaussian_log_prob,
    rollout,
)
from activevision.checks import setting

__all__ = ["GaussianPolicy", "PPO", "PPOSettings", "replay", "gae", "clipped_surrogate"]

LOG_STD_RANGE = (math.log(0.01), math.log(1.0))  # locations live in [-1, 1]: wider is noise, narrower is frozen


@dataclass
class PPOSettings:
    """PPO's settings (CleanRL's meanings; its entropy coefficient is the config's ``entropy``)."""

    ppo_epochs: int = setting(4, low=1)  # passes over each batch of episodes
    minibatches: int = setting(4, low=1)  # minibatches of whole episodes per pass
    clip_range: float = setting(0.2, above=0.0)  # ratio clipping
    gamma: float = setting(1.0, low=0.0, high=1.0)  # discount per decision
    gae_lambda: float = setting(0.95, low=0.0, high=1.0)
    vf_coef: float = setting(0.5, low=0.0)  # weight of the value loss


class GaussianPolicy(Wrapper):
    """A glimpse agent with the RAM step interface (``RAM`` or ``GAM``) plus a learned, state-independent log std
    of its Gaussian location policy (PPO's entropy bonus needs a std that can change)."""

    def __init__(self, core: GlimpseAgent, std: float) -> None:
        super().__init__()
        self.core: GlimpseAgent = core
        self.log_std = nn.Parameter(torch.tensor(math.log(std)))

    def std(self) -> torch.Tensor:
        """The location std (a scalar tensor, clamped to [0.01, 1])."""
        return self.log_std.clamp(*LOG_STD_RANGE).exp()


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


class PPO:
    """PPO over whole episodes; trains a ``GaussianPolicy`` around the agent."""

    Settings = PPOSettings

    def __init__(self, settings: PPOSettings | None = None) -> None:
        self.settings = settings or PPOSettings()

    @classmethod
    def check(cls, config: Any) -> None:
        """PPO learns the std and trains the learned policy, one or more episodes per minibatch."""
        if config.std_final is not None:
            raise ValueError(
                f"std_final={config.std_final!r} is not allowed for {config.agent}: PPO learns the location std "
                "(std is its initial value); leave std_final unset"
            )
        if config.policy != "learned":
            raise ValueError(
                f"policy={config.policy!r} is not allowed for {config.agent}: PPO trains the learned policy (the "
                "location baselines train with agent ram)"
            )
        if config.batch < config.minibatches:  # validate checked both as integers first
            raise ValueError(
                f"minibatches={config.minibatches} is not allowed with batch={config.batch}: use at most one minibatch "
                "per episode"
            )

    def policy(self, agent: Any, config: Any) -> GaussianPolicy:
        return GaussianPolicy(agent, config.std)

    def update(self, learner: Learner, envs: Any, obs: dict[str, torch.Tensor]) -> dict[str, float]:
        config, settings, policy = learner.config, self.settings, learner.agent
        with torch.no_grad():
            data = rollout(
                policy, envs, obs, std=float(policy.std()), generator=learner.generator, record_glimpses=True
            )
        decisions, batch = data.log_probs.shape
        rewards = torch.zeros_like(data.baselines)
        if decisions:
            rewards[-1] = data.reward  # the answer's reward comes after the last location decision
        advantages = gae(rewards, data.baselines, settings.gamma, settings.gae_lambda)
        returns = advantages + data.baselines
        size = math.ceil(batch / settings.minibatches)
        sums: dict[str, float] = {}
        policy.train()
        for _ in range(settings.ppo_epochs):
            order = torch.randperm(batch, generator=learner.generator, device=learner.generator.device)
            order = order.to(data.labels.device)
            for start in range(0, batch, size):
                ids = order[start : start + size]
                loss_of = functools.partial(
                    self.loss, data=data, ids=ids, advantages=advantages, returns=returns, config=config
                )
                loss, parts = learner.forward(loss_of)
                learner.optimise(loss)
                for name, value in parts.items():
                    sums[name] = sums.get(name, 0.0) + float(value.detach())
        count = settings.ppo_epochs * math.ceil(batch / size)
        metrics = {name: total / count for name, total in sums.items()}
        metrics.update(
            accuracy=data.reward.mean().item(),
            pixels_seen=data.pixels_seen.mean().item(),
            std=float(policy.std().detach()),
        )
        return metrics

    def loss(
        self,
        policy: GaussianPolicy,
        data: Episode,
        ids: torch.Tensor,
        advantages: torch.Tensor,
        returns: torch.Tensor,
        config: Any,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss of the episodes ``ids`` of ``data`` replayed under the current parameters, and its parts."""
        settings = self.settings
        decisions = data.log_probs.shape[0]
        first = {key: value[ids] for key, value in data.first_obs.items()}
        assert data.glimpses is not None  # recorded by update's rollout
        means, values, logits = replay(policy, first, data.glimpses[:, ids], data.locs[:, ids], decisions)
        std = policy.std()
        classify = classify_loss(logits, data.labels[ids], config.classify_steps)
        entropy = torch.as_tensor(gaussian_entropy(std))
        if decisions:
            log_probs = gaussian_log_prob(data.actions[:, ids], means, std)
            advantage = advantages[:, ids]
            if advantage.numel() > 1:  # normalised per minibatch
                advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
            surrogate, clipped = clipped_surrogate(log_probs, data.log_probs[:, ids], advantage, settings.clip_range)
            value = F.mse_loss(values, returns[:, ids])
            log_ratio = log_probs - data.log_probs[:, ids]
            approx_kl = (log_ratio.exp() - 1 - log_ratio).mean()  # the low-variance estimator CleanRL logs
        else:  # one glimpse at the centre: nothing to place, only the classifier learns
            surrogate = value = approx_kl = clipped = classify * 0.0
        loss = classify + surrogate + settings.vf_coef * value - config.entropy * entropy
        check_finite(loss)
        parts = {
            "loss": loss,
            "classify": classify,
            "policy": surrogate,
            "value": value,
            "entropy": entropy,
            "approx_kl": approx_kl,
            "clip_fraction": clipped,
        }
        return loss, parts
