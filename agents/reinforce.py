"""REINFORCE with the RAM paper's hybrid loss, on a batched glimpse world (CPU or GPU).

One update = one episode of every env in the batch (``rollout``), then
loss = cross-entropy of the class scores (classifier and core) + REINFORCE for the locations with the learned
baseline subtracted + MSE of the baseline to the reward - entropy bonus, and one gradient step.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from activevision.agents.interface import Learner
from activevision.agents.rollout import Episode, check_finite, classify_loss, rollout

__all__ = ["Reinforce", "ReinforceSettings", "hybrid_loss"]


@dataclass
class ReinforceSettings:
    """REINFORCE has no settings of its own: the location std, the entropy bonus and which scores are classified
    are every algorithm's (``TrainConfig``)."""


def hybrid_loss(
    episode: Episode, entropy_coef: float = 0.0, classify_steps: str = "last"
) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy + REINFORCE with baseline + baseline MSE - entropy bonus; and its metrics for logging."""
    classify = classify_loss(episode.step_logits, episode.labels, classify_steps)
    reward = episode.reward[None, :].expand_as(episode.baselines)
    advantage = (reward - episode.baselines).detach()
    reinforce = -(episode.log_probs * advantage).sum(0).mean()
    baseline = F.mse_loss(episode.baselines, reward) if episode.baselines.numel() else classify * 0.0
    entropy = episode.entropies.sum(0).mean() if episode.entropies.numel() else classify * 0.0
    loss = classify + reinforce + baseline - entropy_coef * entropy
    metrics = {
        "loss": check_finite(loss),
        "classify": classify.item(),
        "reinforce": reinforce.item(),
        "baseline": baseline.item(),
        "entropy": entropy.item(),
    }
    return loss, metrics


class Reinforce:
    """RAM's learning rule: REINFORCE for the locations, supervised classification, a learned baseline."""

    Settings: type[Any] = ReinforceSettings
    settings: Any

    def __init__(self, settings: ReinforceSettings | None = None) -> None:
        self.settings = settings or ReinforceSettings()

    @classmethod
    def check(cls, config: Any) -> None:
        """Every base setting works with REINFORCE."""

    def policy(self, agent: Any, config: Any) -> Any:
        return agent

    def update(self, learner: Learner, envs: Any, obs: dict[str, torch.Tensor]) -> dict[str, float]:
        """One batched episode, its loss, one gradient step."""
        loss_of = functools.partial(self.loss, learner=learner, envs=envs, obs=obs)
        loss, metrics, episode = learner.forward(loss_of)
        learner.optimise(loss)
        metrics.update(accuracy=episode.reward.mean().item(), pixels_seen=episode.pixels_seen.mean().item())
        return metrics

    def loss(
        self, agent: Any, learner: Learner, envs: Any, obs: dict[str, torch.Tensor], place: Any = None
    ) -> tuple[torch.Tensor, dict[str, float], Episode]:
        """The hybrid loss of one batched episode of ``agent`` (locations through ``place`` when given)."""
        config = learner.config
        episode = rollout(
            agent,
            envs,
            obs,
            policy=config.policy,
            std=learner.std(),
            generator=learner.generator,
            step=learner.step,
            place=place,
        )
        return (*hybrid_loss(episode, config.entropy, config.classify_steps), episode)
