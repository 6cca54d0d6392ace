"""The parts of a glimpse agent, one small ``nn.Module`` each, composable by every agent.

- ``GlimpseNetwork``: "what" (MLP, or a small conv net for larger patches) over the glimpse and "where" (MLP) over
  its location, combined additively (RAM) or multiplicatively (DRAM / GAM);
- ``Core``: the recurrent state (RNN with ReLU as in RAM, GRU or LSTM);
- ``LocationHead``: mean of the Gaussian location policy, ``tanh(linear(h))`` from a detached state;
- ``Classifier``: class scores from the state;
- ``Baseline``: the expected final reward from a detached state (REINFORCE's variance reduction).
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import nn

from activevision.checks import check_choice as _choice

__all__ = [
    "Standardised",
    "GlimpseNetwork",
    "Core",
    "LocationHead",
    "Classifier",
    "Baseline",
    "CORES",
    "COMBINES",
    "WHATS",
    "box_shape",
    "Wrapper",
]

CORES = ("rnn", "gru", "lstm")
COMBINES = ("add", "mul")
WHATS = ("mlp", "conv")

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def box_shape(observation_space: Any, key: str) -> tuple[int, ...]:
    """The shape of the ``key`` Box of a world's observation space, or a ValueError naming what is missing."""
    space = observation_space.spaces.get(key) if isinstance(observation_space, spaces.Dict) else None
    if not isinstance(space, spaces.Box):
        raise ValueError(f"observation space {observation_space} is not allowed: it needs a {key!r} Box")
    return tuple(space.shape)


class Standardised(nn.Module):
    """Pixels reshaped to ``shape`` (e.g. ``(size,)`` flat for an MLP, ``(channels, h, w)`` for a conv net) and
    given twice along the first axis: normalised per example (LayerNorm: shape, free of colour and brightness)
    and raw, centred (absolute intensity). Raw pixels alone were measured not to learn colour worlds at all
    (large constant offsets over hundreds of inputs); the normalised part alone is blind to brightness (a uniform
    bright patch and a uniform dark one both normalise to zeros)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.norm = nn.LayerNorm(self.shape)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.reshape(len(pixels), *self.shape)
        return torch.cat([self.norm(x), x - 0.5], dim=1)


class GlimpseNetwork(nn.Module):
    """``g = combine(what(glimpse), where(loc))`` for glimpses of shape ``(scales, C, p, p)``."""

    def __init__(
        self,
        glimpse_shape: tuple[int, ...],
        what_hidden: int = 128,
        where_hidden: int = 128,
        out: int = 256,
        combine: str = "add",
        what: str = "mlp",
    ) -> None:
        super().__init__()
        self.combine = _choice("combine", combine, COMBINES)
        scales, channels, patch, _ = glimpse_shape
        if _choice("what", what, WHATS) == "mlp":
            size = scales * channels * patch * patch
            self.what = nn.Sequential(Standardised((size,)), nn.Linear(2 * size, what_hidden), nn.ReLU())
        else:  # scales stacked as channels; three convs, the first strided (the faster order, design_measurements.md)
            side = (patch + 1) // 2
            self.what = nn.Sequential(
                Standardised((scales * channels, patch, patch)),
                nn.Conv2d(2 * scales * channels, 16, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(16, 32, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(32, 32, 3, padding=1),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(32 * side * side, what_hidden),
                nn.ReLU(),
            )
            # He init: with PyTorch's default each layer shrank the signal and "where" drowned "what"
            # (benchmarks/results/design_measurements.md).
            for layer in self.what:
                if isinstance(layer, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                    nn.init.zeros_(layer.bias)  # type: ignore[arg-type]  # both layers have biases
        self.where = nn.Sequential(nn.Linear(2, where_hidden), nn.ReLU())
        self.what_out = nn.Linear(what_hidden, out)
        self.where_out = nn.Linear(where_hidden, out)

    def forward(self, glimpse: torch.Tensor, loc: torch.Tensor) -> torch.Tensor:
        what, where = self.what_out(self.what(glimpse)), self.where_out(self.where(loc))
        if self.combine == "add":
            return torch.relu(what + where)
        return torch.relu(what) * torch.relu(where)


class Core(nn.Module):
    """Recurrent core: ``h_t = f(h_{t-1}, g_t)``."""

    def __init__(self, input_size: int, hidden: int = 256, kind: str = "rnn") -> None:
        super().__init__()
        self.kind = _choice("core", kind, CORES)
        self.hidden = hidden
        self.cell: nn.Module
        if kind == "rnn":
            self.cell = nn.RNNCell(input_size, hidden, nonlinearity="relu")
        elif kind == "gru":
            self.cell = nn.GRUCell(input_size, hidden)
        else:
            self.cell = nn.LSTMCell(input_size, hidden)

    def initial(self, batch: int, device: torch.device) -> State:
        zeros = torch.zeros(batch, self.hidden, device=device)
        return (zeros, zeros.clone()) if self.kind == "lstm" else zeros

    def forward(self, g: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        state = self.cell(g, state)
        return (state[0] if isinstance(state, tuple) else state), state


class LocationHead(nn.Module):
    """Mean of the Gaussian location policy, ``tanh(linear(h))``; the state is detached so that only the
    policy-gradient loss trains this head."""

    def __init__(self, hidden: int = 256) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden, 2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(h.detach()))


class Classifier(nn.Module):
    """Class scores (logits) from the state."""

    def __init__(self, hidden: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden, num_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(h)


class Baseline(nn.Module):
    """Expected final reward from a detached state: trained by MSE, subtracted from the reward in REINFORCE."""

    def __init__(self, hidden: int = 256) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(h.detach()).squeeze(-1)


class Wrapper(nn.Module):
    """An agent that steps as the agent it holds in the attribute named ``wrapped`` and adds to it (PPO's learned
    std, the top-down agent's Q-network): the step interface forwarded once, here."""

    wrapped = "core"

    def initial_state(self, obs: dict[str, torch.Tensor]) -> Any:
        return getattr(self, self.wrapped).initial_state(obs)

    def first(self, state: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return getattr(self, self.wrapped).first(state)

    def forward(self, glimpse: torch.Tensor, loc: torch.Tensor, state: Any) -> Any:
        return getattr(self, self.wrapped)(glimpse, loc, state)
