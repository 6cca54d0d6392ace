"""A glimpse agent of your own, outside the library: trained, evaluated and rendered by activevision's Trainer and
CLI as ``my_agent:GlimpseGRU`` (notebook 05). It only has to be an ``nn.Module`` with the step interface
(``activevision.agents.GlimpseAgent``): ``initial_state``, ``first`` and ``forward``.
"""

from __future__ import annotations

import torch
from torch import nn

from activevision.agents.modules import box_shape


class GlimpseGRU(nn.Module):
    """A GRU over glimpses: "what" (the pixels) plus "where" (the location) in, a Gaussian location mean, class
    scores and a value out. Its keyword arguments are its settings (``--hidden 128`` on the command line)."""

    lr = 3e-3  # its default learning rate (optional, like ``algorithm`` and ``context_size``)

    def __init__(self, observation_space, num_classes: int, hidden: int = 64, core_input: int = 64) -> None:
        super().__init__()
        scales, channels, patch, _ = box_shape(observation_space, "glimpse")
        self.what = nn.Sequential(nn.Flatten(), nn.Linear(scales * channels * patch * patch, core_input), nn.ReLU())
        self.where = nn.Sequential(nn.Linear(2, core_input), nn.ReLU())
        self.core = nn.GRUCell(core_input, hidden)
        self.locator = nn.Linear(hidden, 2)
        self.classifier = nn.Linear(hidden, num_classes)
        self.value = nn.Linear(hidden, 1)

    def initial_state(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Zeros before the first glimpse."""
        return obs["glimpse"].new_zeros(len(obs["glimpse"]), self.core.hidden_size)

    def first(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Where to look next (a mean in [-1, 1]) and the expected reward, read from a detached state: REINFORCE
        trains the location head, the classifier trains the core."""
        state = state.detach()
        return torch.tanh(self.locator(state)), self.value(state)[:, 0]

    def forward(self, glimpse: torch.Tensor, loc: torch.Tensor, state: torch.Tensor):
        """One glimpse: the new state, class scores, the next location's mean and the value."""
        state = self.core(self.what(glimpse) + self.where(loc), state)
        mean, value = self.first(state)
        return state, self.classifier(state), mean, value
