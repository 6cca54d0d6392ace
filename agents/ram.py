"""RAM, the recurrent attention model (Mnih et al. 2014): glimpse network -> recurrent core -> heads."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from gymnasium import spaces
from torch import nn

from activevision.agents.modules import (
    COMBINES,
    CORES,
    WHATS,
    Baseline,
    Classifier,
    Core,
    GlimpseNetwork,
    LocationHead,
    State,
    box_shape,
)
from activevision.checks import setting

__all__ = ["RAM", "RAMSettings"]


@dataclass
class RAMSettings:
    """RAM's settings (its constructor's keyword arguments; config settings and CLI options of ram and ppo-ram)."""

    hidden: int = setting(256, low=1)
    glimpse_hidden: int = setting(128, low=1)
    core: str = setting("rnn", choices=CORES)  # the recurrent core
    combine: str = setting("add", choices=COMBINES)  # how "what" and "where" join in the glimpse network
    what: str = setting("mlp", choices=WHATS)  # the glimpse network's pixel reader
    dropout: float = setting(0.0, low=0.0, below=1.0)  # on the state, before the classifier


class RAM(nn.Module):
    """Reads one glimpse per step into a recurrent state; heads give the next location's mean, the class scores
    and the baseline. ``observation_space`` is a glimpse world's single observation space."""

    def __init__(
        self,
        observation_space: spaces.Dict,
        num_classes: int,
        hidden: int = 256,
        glimpse_hidden: int = 128,
        core: str = "rnn",
        combine: str = "add",
        what: str = "mlp",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        shape = box_shape(observation_space, "glimpse")
        self.glimpse_net = GlimpseNetwork(shape, glimpse_hidden, glimpse_hidden, hidden, combine, what)
        self.core = Core(hidden, hidden, core)
        self.locator = LocationHead(hidden)
        self.classifier = Classifier(hidden, num_classes)
        self.dropout = nn.Dropout(dropout)  # regularises the classifier (active in training only)
        self.baseline = Baseline(hidden)

    def initial_state(self, obs: dict[str, torch.Tensor]) -> State:
        """The state before the first glimpse (zeros) for the batch of ``obs``."""
        return self.core.initial(obs["glimpse"].shape[0], obs["glimpse"].device)

    def first(self, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and baseline of the first location, from the state before any glimpse (worlds whose start is
        "choose")."""
        h = state[0] if isinstance(state, tuple) else state
        return self.locator(h), self.baseline(h)

    def forward(
        self, glimpse: torch.Tensor, loc: torch.Tensor, state: State
    ) -> tuple[State, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Take in the newest glimpse (at ``loc``): the new recurrent state, class scores, the mean of the next
        location and the baseline. One call per step, so that ``torch.compile`` can fuse it whole."""
        h, state = self.core(self.glimpse_net(glimpse, loc), state)
        return state, self.classifier(self.dropout(h)), self.locator(h), self.baseline(h)
