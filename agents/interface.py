"""The interfaces of agents and algorithms: ``GlimpseAgent`` (the step interface every glimpse agent implements:
``RAM``, ``GAM``, ``TopDown``, yours), ``Algorithm`` (a learning rule the trainer calls) and ``Learner`` (what the
trainer gives an algorithm)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch

__all__ = ["GlimpseAgent", "Learner", "Algorithm"]


@runtime_checkable
class GlimpseAgent(Protocol):
    """An ``nn.Module`` that reads one glimpse at a time.

    ``initial_state(obs)`` is its state before the first glimpse (it may read the world's first observation, e.g.
    the context); ``first(state) -> (mean, value)`` places the first glimpse when the world lets the agent choose
    it (start "choose"); ``agent(glimpse, loc, state) -> (state, class scores (B, K), next location mean (B, 2) in
    [-1, 1], value (B,))`` is one step. States are any tensors or tuples of tensors the agent chooses. An agent
    may also have ``placer(obs, decisions)``: the map of its chosen locations to the world's (``rollout``'s
    ``place``) that evaluation uses (the top-down agent's regions).
    """

    def initial_state(self, obs: dict[str, torch.Tensor]) -> Any: ...

    def first(self, state: Any) -> tuple[torch.Tensor, torch.Tensor]: ...

    def __call__(
        self, glimpse: torch.Tensor, loc: torch.Tensor, state: Any
    ) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]: ...


class Learner(Protocol):
    """What an algorithm's ``update`` is given (the trainer): the module trained and the means to train it."""

    agent: Any  # the module trained: an nn.Module with the GlimpseAgent step interface (PPO: its Gaussian policy)
    step: Callable[..., Any]  # the agent's per-step function: the agent itself, or its compiled form
    generator: torch.Generator  # every random draw of an update comes from here (checkpointed)
    config: Any  # the run's TrainConfig, resolved
    update: int  # updates done before this one

    def std(self) -> float:
        """The location std of this update (its schedule)."""
        ...

    def forward(self, loss_of: Callable[[Any], Any]) -> Any:
        """``loss_of(agent)``, run as the forward pass the next gradients flow from: through
        DistributedDataParallel when several processes train, so ``optimise`` averages their gradients."""
        ...

    def optimise(self, loss: torch.Tensor) -> None:
        """One gradient step of ``loss`` (backward, gradients averaged over processes, clipped, the optimiser)."""
        ...


class Algorithm(Protocol):
    """A learning rule: ``Settings`` (a dataclass: its config settings and CLI options), ``check(config)``
    (refuses settings it cannot train with, by name), ``policy(agent, config)`` (the module trained: the agent,
    or a wrapper of it) and ``update(learner, envs, obs) -> metrics`` (one update from the batch's first
    observation)."""

    Settings: type

    def __init__(self, settings: Any) -> None: ...

    @classmethod
    def check(cls, config: Any) -> None: ...

    def policy(self, agent: Any, config: Any) -> Any: ...

    def update(self, learner: Learner, envs: Any, obs: dict[str, torch.Tensor]) -> dict[str, float]: ...
