"""``GlimpseAgent``: the step interface every glimpse agent implements (``RAM``, ``GAM``, ``TopDown``), which the
rollout, PPO's Gaussian policy, evaluation and trace use, whatever the agent."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

__all__ = ["GlimpseAgent"]


@runtime_checkable
class GlimpseAgent(Protocol):
    """An ``nn.Module`` that reads one glimpse at a time.

    ``initial_state(obs)`` is its state before the first glimpse (it may read the world's first observation, e.g.
    the context); ``first(state) -> (mean, value)`` places the first glimpse when the world lets the agent choose
    it (start "choose"); ``agent(glimpse, loc, state) -> (state, class scores (B, K), next location mean (B, 2) in
    [-1, 1], value (B,))`` is one step. States are any tensors or tuples of tensors the agent chooses.
    """

    def initial_state(self, obs: dict[str, torch.Tensor]) -> Any: ...

    def first(self, state: Any) -> tuple[torch.Tensor, torch.Tensor]: ...

    def __call__(
        self, glimpse: torch.Tensor, loc: torch.Tensor, state: Any
    ) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]: ...
