"""Top-down + bottom-up attention (after Chen 2021, "Where to Look: A Unified Attention Model"): a Q-network over
the whole image at low resolution picks a region of a grid; RAM's glimpses then look inside that region.

The problem it answers: on large or cluttered images a Gaussian location policy searches almost at random and
learns slowly. Here the search is split in two:
- top-down: ``QNetwork`` reads the world's ``context`` observation (the whole image downsampled, one feature
  vector per region) and RAM's detached state (what the glimpses found so far), and gives one Q-value per
  region of a ``grid x grid`` partition of the image. An episode's location decisions are cut into
  ``rounds``; at the start of each the region with the highest Q-value is chosen (epsilon-greedy while
  training). Trained by Q-learning on the reward of the final answer: n-step targets bootstrapped from a
  target network (a lagged copy).
- bottom-up: RAM unchanged, except that its Gaussian locations are relative to the chosen region
  (``region centre + loc / grid``), trained by REINFORCE with the hybrid loss as RAM.

The agent still acts through the env API: absolute locations and class scores; the world knows nothing of regions.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from activevision.agents.modules import Standardised, State, Wrapper, box_shape
from activevision.agents.ram import RAM, RAMSettings
from activevision.checks import setting
from activevision.envs import rules

__all__ = ["QNetwork", "TopDown", "TopDownSettings", "RegionPlacer"]


@dataclass
class TopDownSettings(RAMSettings):
    """The top-down agent's settings: RAM's (its bottom-up part) and the regions its Q-network chooses among."""

    regions: int = setting(3, low=1)  # the image cut into regions x regions
    rounds: int = setting(2, low=1)  # region choices per episode


def _hidden(state: State) -> torch.Tensor:
    return state[0] if isinstance(state, tuple) else state


class QNetwork(nn.Module):
    """Q-values ``(B, grid^2)`` of the regions. A small conv net over the context, average-pooled to one feature
    vector per region (a network pooled over the whole image, as GAM's context network, keeps no "where"), then
    one MLP shared by all regions over [region features, region embedding, RAM's detached state, round]."""

    def __init__(
        self, context_shape: tuple[int, ...], state_size: int, grid: int, rounds: int, hidden: int = 64
    ) -> None:
        super().__init__()
        channels = context_shape[0]
        self.features = nn.Sequential(
            Standardised(context_shape),
            nn.Conv2d(2 * channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, hidden, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(grid),
            nn.Flatten(2),
        )  # (B, hidden, grid^2)
        self.where = nn.Parameter(torch.zeros(grid * grid, hidden))
        self.state = nn.Linear(state_size + rounds, hidden)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.rounds = rounds

    def context(self, context: torch.Tensor) -> torch.Tensor:
        """Per-region features ``(B, grid^2, hidden)`` of the context (computed once per episode)."""
        return self.features(context).transpose(1, 2) + self.where

    def forward(self, features: torch.Tensor, h: torch.Tensor, round_index: int) -> torch.Tensor:
        """Q-values given the context's region ``features``, state ``h`` and the round."""
        code = F.one_hot(torch.full((len(h),), round_index, device=h.device), self.rounds).to(h.dtype)
        state = self.state(torch.cat([h.detach(), code], dim=1))[:, None]  # (B, 1, hidden)
        return self.head(features + state)[..., 0]


class TopDown(Wrapper):
    """RAM (``ram``: same step interface, same heads) plus a top-down ``QNetwork`` (``q``) and its target copy
    (``target``: no gradients, refreshed by ``sync_target``). ``observation_space`` needs a ``context``."""

    wrapped = "ram"

    def __init__(
        self,
        observation_space: spaces.Dict,
        num_classes: int,
        hidden: int = 256,
        glimpse_hidden: int = 128,
        core: str = "gru",
        combine: str = "add",
        what: str = "mlp",
        dropout: float = 0.0,
        grid: int = 3,
        rounds: int = 2,
        q_hidden: int = 64,
    ) -> None:
        super().__init__()
        if "context" not in observation_space.spaces:
            raise ValueError(
                "the top-down agent needs the world's context observation: make the world with "
                "context_size (e.g. env_kwargs={'context_size': 24})"
            )
        self.ram = RAM(observation_space, num_classes, hidden, glimpse_hidden, core, combine, what, dropout)
        self.q = QNetwork(box_shape(observation_space, "context"), hidden, grid, rounds, q_hidden)
        self.target = copy.deepcopy(self.q).requires_grad_(False)
        self.grid, self.rounds = grid, rounds

    def sync_target(self) -> None:
        """The target network becomes a copy of the online one."""
        self.target.load_state_dict(self.q.state_dict())

    def placer(
        self,
        obs: dict[str, torch.Tensor],
        decisions: int,
        epsilon: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> RegionPlacer:
        """The region frame of one batched episode of ``decisions`` location decisions (``rollout``'s ``place``)."""
        return RegionPlacer(self, obs["context"], decisions, epsilon, generator)


class RegionPlacer:
    """Chooses a region at the start of every round (greedy, or uniformly at random with probability
    ``epsilon``) and maps RAM's relative locations into it; keeps what Q-learning needs (states, choices,
    online Q-values with their graph)."""

    def __init__(
        self, agent: TopDown, context: torch.Tensor, decisions: int, epsilon: float, generator: torch.Generator | None
    ) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon={epsilon!r} is not allowed: use a probability in [0, 1]")
        self.agent, self.context, self.epsilon, self.generator = agent, context, epsilon, generator
        self.decisions = decisions
        self.rounds = max(1, min(agent.rounds, decisions))
        self.features = agent.q.context(context)
        self.states: list[torch.Tensor] = []  # (B, hidden) at each round's start, detached
        self.actions: list[torch.Tensor] = []  # (B,) region per round
        self.q_values: list[torch.Tensor] = []  # (B,) online Q of the chosen region (with gradient)
        self.region = torch.zeros(2)  # the centre of the region of this round (chosen at its first decision)

    def round_of(self, decision: int) -> int:
        """Decisions 0 .. L-1 cut into ``rounds`` runs of (nearly) equal length."""
        return decision * self.rounds // max(self.decisions, 1)

    def __call__(self, decision: int, state: State, loc: torch.Tensor) -> torch.Tensor:
        if decision >= self.decisions:  # the location sent with the final answer: the world ignores it
            return loc
        round_index = self.round_of(decision)
        if round_index == len(self.actions):  # a new round: the top-down choice
            h = _hidden(state).detach()
            q = self.agent.q(self.features, h, round_index)
            action = q.argmax(1)
            if self.epsilon > 0:
                batch, device = len(h), h.device
                explore = torch.rand(batch, generator=self.generator, device=device) < self.epsilon
                random = torch.randint(q.shape[1], (batch,), generator=self.generator, device=device)
                action = torch.where(explore, random, action)
            self.states.append(h)
            self.actions.append(action)
            self.q_values.append(q.gather(1, action[:, None])[:, 0])
            self.region = rules.cell_centres(action, self.agent.grid).to(loc.dtype)
        return (self.region + loc / self.agent.grid).clamp(-1.0, 1.0)
