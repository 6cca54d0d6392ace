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

import math
from dataclasses import dataclass

import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from activevision.agents.modules import GlimpseNetwork, Standardised, box_shape

__all__ = ["GAM", "GAMState", "ContextNetwork", "EncoderLayer", "DecoderLayer", "step_code"]

KV = tuple[torch.Tensor, torch.Tensor]
# What the encoder skip multiplies the newest encoder token by: it sets how fast the skip's term can grow under
# Adam (larger drove the locations to the edges, smaller learnt too slowly; figures:
# benchmarks/results/design_measurements.md).
ENCODER_SKIP_SCALE = 0.3


def step_code(steps: torch.Tensor, width: int) -> torch.Tensor:
    """Sinusoidal codes ``(len(steps), width)`` of step numbers (fixed, so any number of glimpses works)."""
    half = torch.arange(0, width, 2, device=steps.device, dtype=torch.float32)
    angle = steps.float()[:, None] * torch.exp(-math.log(10000.0) * half / width)[None, :]
    return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)[:, :width]


class ContextNetwork(nn.Module):
    """The whole image downsampled (the env's ``context``) -> one vector: 3 conv layers (64, 64, 128 filters;
    kernels 5, 3, 3; the first two with stride 2: 3x faster on CPU than striding the last two, measured), mean over
    positions, a linear layer to the model width."""

    def __init__(self, shape: tuple[int, ...], out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            Standardised(shape),  # normalised and raw, as the glimpse network's input
            nn.Conv2d(2 * shape[0], 64, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 128, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(128, out),
        )

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return self.net(context)


class Attention(nn.Module):
    """Multi-head attention whose keys and values are made once per token (``project``) and can be kept."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"hidden={width} is not allowed with heads={heads}: use a multiple of heads")
        self.heads = heads
        self.query, self.key_value, self.out = (
            nn.Linear(width, width),
            nn.Linear(width, 2 * width),
            nn.Linear(width, width),
        )

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # (B, L, D) -> (B, heads, L, D / heads)

    def project(self, x: torch.Tensor) -> KV:
        """Keys and values of tokens ``x`` (B, L, D), split into heads."""
        key, value = self.key_value(x).chunk(2, dim=-1)
        return self._split(key), self._split(value)

    def forward(self, x: torch.Tensor, kv: KV, mask: torch.Tensor | None = None) -> torch.Tensor:
        out = F.scaled_dot_product_attention(self._split(self.query(x)), *kv, attn_mask=mask)
        return self.out(out.transpose(1, 2).flatten(2))


def _feed_forward(width: int) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 4 * width), nn.ReLU(), nn.Linear(4 * width, width))


def _extend(cache: KV | None, new: KV) -> KV:
    return new if cache is None else (torch.cat([cache[0], new[0]], 2), torch.cat([cache[1], new[1]], 2))


class EncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer: causal self-attention, then a feed-forward net."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.attention = Attention(width, heads)
        self.feed_forward = _feed_forward(width)

    def forward(
        self, x: torch.Tensor, cache: KV | None = None, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, KV]:
        """New tokens ``x`` attend to the cached ones and to themselves (``mask``: which of them, for whole
        sequences); returns their outputs and the extended cache."""
        h = self.norm(x)
        cache = _extend(cache, self.attention.project(h))
        x = x + self.attention(h, cache, mask)
        return x + self.feed_forward(x), cache


class DecoderLayer(nn.Module):
    """Pre-norm transformer decoder layer: causal self-attention over the location queries, cross-attention to
    the memory, a feed-forward net."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm, self.memory_norm = nn.LayerNorm(width), nn.LayerNorm(width)
        self.self_attention, self.cross_attention = Attention(width, heads), Attention(width, heads)
        self.cross_norm = nn.LayerNorm(width)
        self.feed_forward = _feed_forward(width)

    def forward(
        self,
        y: torch.Tensor,
        new_memory: torch.Tensor,
        cache: KV | None = None,
        memory_cache: KV | None = None,
        mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, KV, KV]:
        """New queries ``y`` with the memory entries that arrived with them; returns outputs and both caches."""
        h = self.norm(y)
        cache = _extend(cache, self.self_attention.project(h))
        y = y + self.self_attention(h, cache, mask)
        memory_cache = _extend(memory_cache, self.cross_attention.project(self.memory_norm(new_memory)))
        y = y + self.cross_attention(self.cross_norm(y), memory_cache, memory_mask)
        return y + self.feed_forward(y), cache, memory_cache


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
        # net's scale (unnormalised, the codes drowned the glimpses: 14 % after 150 MNIST updates; with this,
        # He init in the conv glimpse net and the locator starting at the centre: 74 %).
        self.glimpse_norm, self.where_norm = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.where = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.start = nn.Parameter(torch.zeros(hidden))
        self.locator = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2))  # tanh: _mean
        last = self.locator[2]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)  # every first mean at the centre; REINFORCE moves them from there
        nn.init.zeros_(last.bias)
        # Trained by REINFORCE alone, the decoder's output hardly depends on the image for thousands of updates
        # (README, "Why the paper's location head lags"); the skip gives the location head the newest encoder token,
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
