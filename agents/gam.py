"""GAM, the glimpse attention model: RAM's recurrent core replaced by a transformer encoder-decoder, so that every
glimpse can attend to every earlier one, and a context network that sees the whole image at low resolution.

Per step t (glimpse ``g_t`` taken at ``l_t``):
- encoder token ``x_t = glimpse_net(g_t, l_t) + step code``; causal self-attention over ``x_1 .. x_t`` gives
  ``e_t``; the classifier reads ``e_t`` (the newest encoder token, never the context: the answer must come from
  glimpses);
- decoder token ``y_t = where(l_t) + step code`` (``y_0`` a learned start token): causal self-attention over
  ``y_0 .. y_t`` and cross-attention to the memory ``[context, e_1 .. e_t]`` give ``o_t``; a 2-layer MLP with tanh
  turns ``o_t`` into the mean of the Gaussian for ``l_{t+1}`` (with ``encoder_skip``, a linear map of the newest
  encoder token ``e_t`` is added before the tanh: the location head then also reads what the classifier reads,
  as RAM's reads its state);
- a separate small baseline network (a GRU over the detached glimpse vectors) predicts the final reward.

Decoding is incremental: each layer keeps the keys and values of earlier tokens (and of the memory), so a step
computes one new token per layer instead of the whole prefix again; ``GAM.sequence`` is the same model over whole
sequences with causal masks (``tests/test_gam.py`` proves the two equal). Only REINFORCE trains the decoder and
the context network: the encoder outputs enter the memory detached, as RAM's location head reads a detached state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from gymnasium import spaces
from torch import nn

from activevision.agents.attention import KV, ContextNetwork, DecoderLayer, EncoderLayer, step_code
from activevision.agents.modules import COMBINES, WHATS, GlimpseNetwork, box_shape
from activevision.checks import setting

__all__ = ["GAM", "GAMSettings", "GAMState", "ContextNetwork", "EncoderLayer", "DecoderLayer", "step_code"]
# What the encoder skip multiplies the newest encoder token by: it sets how fast the skip's term can grow under
# Adam (larger drove the locations to the edges, smaller learnt too slowly; figures:
# benchmarks/results/design_measurements.md).
ENCODER_SKIP_SCALE = 0.3


@dataclass
class GAMSettings:
    """GAM's settings (its constructor's keyword arguments; config settings and CLI options of gam and ppo-gam)."""

    hidden: int = setting(64, low=1)  # the model width
    glimpse_hidden: int = setting(64, low=1)
    layers: int = setting(1, low=1)  # encoder and decoder layers
    heads: int = setting(4, low=1)  # attention heads
    combine: str = setting("mul", choices=COMBINES)
    what: str = setting("conv", choices=WHATS)
    dropout: float = setting(0.0, low=0.0, below=1.0)
    encoder_skip: bool = False  # the location head also reads the newest encoder token


@dataclass
class GAMState:
    """What GAM keeps between steps: per-layer keys and values, the baseline GRU's state, the step count."""

    steps: int
    encoder: list[KV | None]
    decoder: list[KV]
    memory: list[KV]
    baseline: torch.Tensor
    first_mean: torch.Tensor  # the mean of the first location, from the start token and the context


class GAM(nn.Module):
    """Glimpse attention model; ``observation_space`` is a glimpse world's single observation space with a
    ``context`` (make the world with ``context_size``). Same step interface as ``RAM``."""

    def __init__(
        self,
        observation_space: spaces.Dict,
        num_classes: int,
        hidden: int = 64,
        glimpse_hidden: int = 64,
        layers: int = 1,
        heads: int = 4,
        combine: str = "mul",
        what: str = "conv",
        dropout: float = 0.0,
        encoder_skip: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(encoder_skip, bool):
            raise ValueError(f"encoder_skip={encoder_skip!r} is not allowed: use True or False")
        if "context" not in observation_space.spaces:
            raise ValueError(
                "GAM needs the world's context observation: make the world with context_size "
                "(e.g. env_kwargs={'context_size': 12})"
            )
        self.glimpse_net = GlimpseNetwork(
            box_shape(observation_space, "glimpse"), glimpse_hidden, glimpse_hidden, hidden, combine, what
        )
        self.context_net = ContextNetwork(box_shape(observation_space, "context"), hidden)
        self.encoder = nn.ModuleList(EncoderLayer(hidden, heads) for _ in range(layers))
        self.decoder = nn.ModuleList(DecoderLayer(hidden, heads) for _ in range(layers))
        self.encoder_norm, self.decoder_norm = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        # Tokens are normalised before the step codes are added, so neither drowns the other whatever the glimpse
        # net's scale (benchmarks/results/design_measurements.md).
        self.glimpse_norm, self.where_norm = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.where = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.start = nn.Parameter(torch.zeros(hidden))
        self.locator = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2))  # tanh: _mean
        last = self.locator[2]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)  # every first mean at the centre; REINFORCE moves them from there
        nn.init.zeros_(last.bias)
        # Trained by REINFORCE alone, the decoder's output hardly depends on the image for thousands of updates
        # (docs/research/gam-location-head.md); the skip gives the location head the newest encoder token,
        # which the classifier's loss keeps informative, through one linear map. Zero at first, as the MLP's last
        # layer: with PyTorch's default init the first means scattered over the image and GAM never left chance on
        # house numbers (classify loss 2.30 for 2,250 updates). It reads the token times ENCODER_SKIP_SCALE.
        self.encoder_skip = nn.Linear(hidden, 2) if encoder_skip else None
        if self.encoder_skip is not None:
            nn.init.zeros_(self.encoder_skip.weight)
            nn.init.zeros_(self.encoder_skip.bias)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
        self.baseline_core = nn.GRUCell(hidden, hidden)
        self.baseline_head = nn.Linear(hidden, 1)
        self.hidden = hidden

    # ------------------------------------------------------------------ pieces shared by both paths
    def _code(self, first: int, count: int, device: torch.device) -> torch.Tensor:
        return step_code(torch.arange(first, first + count, device=device), self.hidden)

    def _decode(
        self,
        y: torch.Tensor,
        memory: torch.Tensor,
        caches: list[KV] | None,
        memory_caches: list[KV] | None,
        mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[KV], list[KV]]:
        new, new_memory = [], []
        for i, layer in enumerate(self.decoder):
            y, cache, memory_cache = layer(
                y,
                memory,
                None if caches is None else caches[i],
                None if memory_caches is None else memory_caches[i],
                mask,
                memory_mask,
            )
            new.append(cache)
            new_memory.append(memory_cache)
        return self.locator(self.decoder_norm(y)), new, new_memory

    def _mean(self, raw: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        """Location means from the location MLP's output ``raw`` and (with the skip) the encoder tokens ``e`` of
        the same steps (None before the first glimpse)."""
        if self.encoder_skip is not None and e is not None:
            raw = raw + self.encoder_skip(e.detach() * ENCODER_SKIP_SCALE)
        return torch.tanh(raw)

    def _classify(self, e: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(e))

    # ------------------------------------------------------------------ incremental: one step at a time
    def initial_state(self, obs: dict[str, torch.Tensor]) -> GAMState:
        """Read the context and run the start token: the state before the first glimpse."""
        context = self.context_net(obs["context"])[:, None]  # (B, 1, D): the memory's first entry
        batch = context.shape[0]
        y = (self.start + self._code(0, 1, context.device))[None].expand(batch, 1, -1)
        raw, decoder, memory = self._decode(y, context, None, None)
        return GAMState(
            steps=0,
            encoder=[None] * len(self.encoder),
            decoder=decoder,
            memory=memory,
            baseline=context.new_zeros(batch, self.hidden),
            first_mean=self._mean(raw[:, 0], None),
        )

    def first(self, state: GAMState) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean of the first location (the start token's output: from the context alone) and its baseline
        (before any glimpse: the baseline network's bias), for worlds whose start is "choose"."""
        return state.first_mean, self.baseline_head(state.baseline).squeeze(-1)

    def forward(
        self, glimpse: torch.Tensor, loc: torch.Tensor, state: GAMState
    ) -> tuple[GAMState, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Take in the newest glimpse (at ``loc``): the new state, class scores, the next location's mean and the
        baseline, computing one new token per layer."""
        t = state.steps + 1
        g = self.glimpse_net(glimpse, loc)
        x = (self.glimpse_norm(g) + self._code(t - 1, 1, g.device))[:, None]
        encoder = []
        for layer, cache in zip(self.encoder, state.encoder):
            x, cache = layer(x, cache)
            encoder.append(cache)
        e = self.encoder_norm(x)
        y = (self.where_norm(self.where(loc)) + self._code(t, 1, g.device))[:, None]
        raw, decoder, memory = self._decode(y, e.detach(), state.decoder, state.memory)
        hidden = self.baseline_core(g.detach(), state.baseline)
        state = GAMState(
            steps=t, encoder=encoder, decoder=decoder, memory=memory, baseline=hidden, first_mean=state.first_mean
        )
        return state, self._classify(e[:, 0]), self._mean(raw[:, 0], e[:, 0]), self.baseline_head(hidden).squeeze(-1)

    # ------------------------------------------------------------------ whole sequences at once
    def sequence(
        self, glimpses: torch.Tensor, locs: torch.Tensor, context: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The same model over whole episodes (glimpses ``(B, T, ...)`` at ``locs`` ``(B, T, 2)``) with causal
        masks: class scores ``(B, T, K)``, location means ``(B, T + 1, 2)`` (the first from the start token) and
        baselines ``(B, T)``, equal to ``T`` calls of ``forward``."""
        batch, steps = locs.shape[:2]
        device = locs.device
        g = self.glimpse_net(glimpses.flatten(0, 1), locs.flatten(0, 1)).unflatten(0, (batch, steps))
        x = self.glimpse_norm(g) + self._code(0, steps, device)
        causal = torch.ones(steps, steps, dtype=torch.bool, device=device).tril()
        for layer in self.encoder:
            x, _ = layer(x, None, causal)
        e = self.encoder_norm(x)
        start = (self.start + self._code(0, 1, device))[None].expand(batch, 1, -1)
        y = torch.cat([start, self.where_norm(self.where(locs)) + self._code(1, steps, device)], dim=1)
        memory = torch.cat([self.context_net(context)[:, None], e.detach()], dim=1)  # query j sees entries <= j
        mask = torch.ones(steps + 1, steps + 1, dtype=torch.bool, device=device).tril()
        raw, _, _ = self._decode(y, memory, None, None, mask, mask)
        means = torch.cat([self._mean(raw[:, :1], None), self._mean(raw[:, 1:], e)], dim=1)
        hidden, baselines = g.new_zeros(batch, self.hidden), []
        for t in range(steps):
            hidden = self.baseline_core(g[:, t].detach(), hidden)
            baselines.append(self.baseline_head(hidden).squeeze(-1))
        return self._classify(e), means, torch.stack(baselines, dim=1)
