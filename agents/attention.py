"""GAM's parts, one small ``nn.Module`` each: the context network, attention with cached keys and values, and the
encoder and decoder layers that decode one token at a time (``agents/gam.py`` puts them together)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from activevision.agents.modules import Standardised

__all__ = ["KV", "step_code", "ContextNetwork", "Attention", "EncoderLayer", "DecoderLayer"]

KV = tuple[torch.Tensor, torch.Tensor]


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
