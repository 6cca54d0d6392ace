"""Top-down Q-learning (after Chen 2021): the top-down agent's Q-network learns which region to look in from the
reward of the final answer, while REINFORCE with the hybrid loss trains where to look inside the region.

One update: one episode of every env, the regions chosen epsilon-greedily at each round's start (``TopDown.placer``);
loss = RAM's hybrid loss + the Huber loss of the chosen regions' Q-values to their n-step targets (bootstrapped from
the target network, refreshed every ``target_every`` updates); one gradient step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from activevision.agents.interface import Learner
from activevision.agents.reinforce import Reinforce
from activevision.agents.rollout import Episode, location_decisions
from activevision.agents.topdown import RegionPlacer, TopDown
from activevision.checks import setting

__all__ = ["TopDownQ", "QSettings", "n_step_targets", "q_learning_loss"]


@dataclass
class QSettings:
    """Top-down Q-learning's settings."""

    gamma: float = setting(1.0, low=0.0, high=1.0)  # discount per region decision
    epsilon: float = setting(1.0, low=0.0, high=1.0)  # exploration at the start, annealed linearly ...
    epsilon_final: float = setting(0.05, low=0.0, high=1.0)  # ... to this
    epsilon_fraction: float = setting(0.5, low=0.0, high=1.0)  # ... over this fraction of the updates
    target_every: int = setting(50, low=1)  # updates between target-network copies
    n_step: int = setting(1, low=1)  # rewards summed before bootstrapping from the target network


def n_step_targets(rewards: torch.Tensor, bootstrap: torch.Tensor, gamma: float, n: int) -> torch.Tensor:
    """Q-learning targets ``(R, B)`` of an episode's ``R`` rounds: ``sum_{i<m} gamma^i r_{k+i}`` over the next
    ``m = min(n, R - k)`` rewards, plus ``gamma^n bootstrap[k + n - 1]`` when round ``k + n`` exists;
    ``bootstrap[j]`` is ``max_a Q_target(s_{j+1}, a)`` (its last row is never used: the episode ends)."""
    rounds = len(rewards)
    targets = torch.zeros_like(rewards)
    for k in range(rounds):
        steps = min(n, rounds - k)
        for i in range(steps):
            targets[k] += gamma**i * rewards[k + i]
        if k + n < rounds:
            targets[k] += gamma**n * bootstrap[k + n - 1]
    return targets


def q_learning_loss(
    agent: TopDown, placer: RegionPlacer, reward: torch.Tensor, gamma: float = 1.0, n_step: int = 1
) -> tuple[torch.Tensor, float]:
    """Huber loss of the chosen regions' Q-values to their n-step targets (reward: the final answer's, after the
    last round), and the mean Q-value (logged)."""
    rounds = len(placer.actions)
    rewards = torch.zeros((rounds, len(reward)), device=reward.device)
    rewards[-1] = reward
    with torch.no_grad():
        features = agent.target.context(placer.context)
        bootstrap = torch.zeros_like(rewards)
        for k in range(rounds - 1):
            bootstrap[k] = agent.target(features, placer.states[k + 1], k + 1).max(1).values
        targets = n_step_targets(rewards, bootstrap, gamma, n_step)
    q = torch.stack(placer.q_values)
    return F.smooth_l1_loss(q, targets), float(q.detach().mean())


class TopDownQ(Reinforce):
    """The top-down agent's learning rule: REINFORCE's hybrid loss plus Q-learning of the regions (its agent:
    ``TopDown``, or one with its ``placer``, ``q``, ``target`` and ``sync_target``)."""

    Settings = QSettings
    settings: QSettings

    def __init__(self, settings: QSettings | None = None) -> None:
        self.settings = settings or QSettings()

    def epsilon(self, update: int, steps: int) -> float:
        """Exploration at ``update``: linear from ``epsilon`` to ``epsilon_final`` over the first
        ``epsilon_fraction`` of the ``steps`` updates."""
        settings = self.settings
        span = settings.epsilon_fraction * steps
        progress = min(update / span, 1.0) if span > 0 else 1.0
        return settings.epsilon + (settings.epsilon_final - settings.epsilon) * progress

    def update(self, learner: Learner, envs: Any, obs: dict[str, torch.Tensor]) -> dict[str, float]:
        metrics = super().update(learner, envs, obs)
        if (learner.update + 1) % self.settings.target_every == 0:
            learner.agent.sync_target()
        return metrics

    def loss(
        self, agent: Any, learner: Learner, envs: Any, obs: dict[str, torch.Tensor], place: Any = None
    ) -> tuple[torch.Tensor, dict[str, float], Episode]:
        """The hybrid loss of an episode whose regions the Q-network chose (epsilon-greedy), plus its Q loss."""
        if learner.config.policy != "learned":  # a baseline's locations go through no region: nothing to Q-learn
            return super().loss(agent, learner, envs, obs, place)
        epsilon = self.epsilon(learner.update, learner.config.steps)
        place = agent.placer(obs, location_decisions(envs.world), epsilon, learner.generator)
        loss, metrics, episode = super().loss(agent, learner, envs, obs, place)
        if place.actions:
            settings = self.settings
            q_loss, q_mean = q_learning_loss(agent, place, episode.reward, settings.gamma, settings.n_step)
            loss = loss + q_loss
            metrics.update(loss=loss.item(), q_loss=q_loss.item(), q_mean=q_mean, epsilon=epsilon)
        return loss, metrics, episode
