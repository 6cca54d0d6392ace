"""One rollout for every algorithm, evaluation and trace: a batched episode of a continuous-mode world, read top to
bottom, returned as an ``Episode`` record.

1. the agent reads a glimpse, updates its state, and acts: the next location (sampled from a Gaussian around the
   location head's mean, the mean itself, or the baseline policies' fixed choice) and its current class scores;
2. after T glimpses the world ends the episode: reward 1 for a right last answer, and the label in the final info
   (the only place the agent ever sees it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from activevision.agents.interface import GlimpseAgent
from activevision.checks import check_choice

__all__ = [
    "POLICIES",
    "CLASSIFY_STEPS",
    "Episode",
    "rollout",
    "location_decisions",
    "classify_loss",
    "gaussian_log_prob",
    "gaussian_entropy",
    "check_finite",
]

POLICIES = ("learned", "random", "center")  # the learned Gaussian policy, or the two baselines
CLASSIFY_STEPS = ("last", "all")  # cross-entropy of the last scores (the RAM paper) or of every step's scores


@dataclass
class Episode:
    """What one batched episode leaves for a loss, an evaluation or a picture (time first, batch second)."""

    log_probs: torch.Tensor  # (L, B): log-density of each sampled location that chose a glimpse (L = T - 1, or T
    entropies: torch.Tensor  # (L, B)                      with the world's start "choose": the agent places all T)
    baselines: torch.Tensor  # (L, B): the value head at each location decision
    step_logits: torch.Tensor  # (T, B, K): the class scores after every glimpse
    reward: torch.Tensor  # (B,): 1 for a right last answer
    labels: torch.Tensor  # (B,): from the world's final info
    pixels_seen: torch.Tensor  # (B,)
    locs: torch.Tensor  # (T, B, 2): where each glimpse was taken
    first_obs: dict[str, torch.Tensor]  # the observation the episode started from
    next_obs: dict[str, torch.Tensor]  # the observation that starts the next episode (same-step autoreset)
    glimpses: torch.Tensor | None = None  # (T, B, scales, C, p, p): what each glimpse showed, when recorded

    @property
    def logits(self) -> torch.Tensor:
        """(B, K): the last class scores, the answer the reward judged."""
        return self.step_logits[-1]

    @property
    def actions(self) -> torch.Tensor:
        """(L, B, 2): the locations the policy chose (the last L glimpses' locations)."""
        return self.locs[len(self.locs) - len(self.log_probs) :]


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, std: float | torch.Tensor) -> torch.Tensor:
    """Log-density of ``x`` under independent N(mean, std^2) per coordinate, summed over the last axis (``std`` a
    number, or a tensor when it is learned)."""
    log_std = torch.log(std) if isinstance(std, torch.Tensor) else math.log(std)
    return (-0.5 * ((x - mean) / std) ** 2).sum(-1) - x.shape[-1] * (log_std + 0.5 * math.log(2 * math.pi))


def gaussian_entropy(std: float | torch.Tensor, dims: int = 2) -> float | torch.Tensor:
    """Entropy of a ``dims``-dimensional N(mean, std^2 I): a number for a fixed std, a tensor for a learned one."""
    log_std = torch.log(std) if isinstance(std, torch.Tensor) else math.log(std)
    return dims * (0.5 + 0.5 * math.log(2 * math.pi) + log_std)


def check_finite(loss: torch.Tensor) -> float:
    """The loss as a number, or a FloatingPointError when training has diverged."""
    value = loss.item()
    if not math.isfinite(value):
        raise FloatingPointError(f"the loss became {value}: lower the learning rate or check the inputs")
    return value


def location_decisions(world: Any) -> int:
    """How many locations an agent chooses per episode of a continuous-mode world: T - 1 (the first glimpse is
    taken at reset), or T when the world's start is "choose"."""
    return world.n_glimpses - 1 + int(world.start == "choose")


def classify_loss(step_logits: torch.Tensor, labels: torch.Tensor, classify_steps: str = "last") -> torch.Tensor:
    """Cross-entropy of the last scores (``"last"``, the RAM paper), or averaged over the scores after every
    glimpse (``"all"``; the reward stays the last answer's)."""
    check_choice("classify_steps", classify_steps, CLASSIFY_STEPS)
    if classify_steps == "all":
        return F.cross_entropy(step_logits.flatten(0, 1), labels.repeat(len(step_logits)))
    return F.cross_entropy(step_logits[-1], labels)


def rollout(
    agent: GlimpseAgent,
    envs: Any,
    obs: dict[str, torch.Tensor],
    *,
    policy: str = "learned",
    std: float | torch.Tensor = 0.1,
    deterministic: bool = False,
    generator: torch.Generator | None = None,
    step: Callable | None = None,
    place: Callable | None = None,
    record_glimpses: bool = False,
) -> Episode:
    """One episode of every env (all start together and last T steps: the continuous action mode).

    ``step`` is the agent's per-step function (``agent`` itself, or a compiled version of it). ``place(decision,
    state, loc) -> loc``, if given, maps each location the policy chose (decision 0, 1, ...; ``state`` the agent's
    state when it chose) to the one sent to the world: the top-down agent's region frame; an agent with a
    ``placer(obs, decisions)`` method supplies its own (greedy) when none is given. The baseline policies
    ("random", "center") place no location through a frame: theirs are over the whole image, for every agent.
    ``record_glimpses`` keeps what every glimpse showed (PPO replays them).
    """
    step = agent if step is None else step
    placer = getattr(agent, "placer", None)
    if policy != "learned":  # a baseline's own locations, over the whole image (no region: the top-down Q is idle)
        place = None
    elif place is None and callable(placer):  # the agent's own frame, greedy (evaluation)
        place = placer(obs, location_decisions(envs.world))
    batch = envs.num_envs
    device = obs["glimpse"].device
    first_obs = dict(obs)
    state = agent.initial_state(obs)
    log_probs: list[torch.Tensor] = []
    entropies: list[torch.Tensor] = []
    baselines: list[torch.Tensor] = []
    step_logits: list[torch.Tensor] = []
    locs: list[torch.Tensor] = []
    glimpses: list[torch.Tensor] = []

    def act(mean: torch.Tensor, baseline: torch.Tensor, state: Any) -> torch.Tensor:
        """The next location: sampled around ``mean`` (or the mean itself, or a baseline policy's choice)."""
        if policy == "learned":
            if deterministic:
                loc = mean.detach()
            else:
                noise = torch.randn(mean.shape, generator=generator, device=device)
                loc = (mean + std * noise).detach().clamp(-1.0, 1.0)
            log_probs.append(gaussian_log_prob(loc, mean, std))
            entropies.append(torch.full((batch,), float(gaussian_entropy(std)), device=device))
        elif policy == "random":
            loc = torch.rand((batch, 2), generator=generator, device=device) * 2.0 - 1.0
        else:
            loc = torch.zeros((batch, 2), device=device)
        if place is not None:
            loc = place(len(baselines), state, loc)
        baselines.append(baseline)
        return loc

    if envs.world.start == "choose":  # no glimpse yet: the agent places the first one too (scores unused)
        loc = act(*agent.first(state), state)
        obs, *_ = envs.step(torch.cat([loc, torch.zeros((batch, envs.world.num_classes), device=device)], dim=1))
    for _ in range(envs.world.n_glimpses):
        locs.append(obs["loc"])
        if record_glimpses:
            glimpses.append(obs["glimpse"])
        state, logits, mean, baseline = step(obs["glimpse"], obs["loc"], state)
        step_logits.append(logits)
        loc = act(mean, baseline, state)
        obs, reward, terminated, truncated, info = envs.step(torch.cat([loc, logits.detach()], dim=1))
    if not bool(terminated.all()):
        raise RuntimeError("the world's episodes did not all end after n_glimpses steps: use action_mode='continuous'")
    # The last step's location goes with the answer (the world ignores it): it is no decision.
    zeros = torch.zeros((max(len(baselines) - 1, 0), batch), device=device)
    stack = lambda values: torch.stack(values[:-1]) if len(values) > 1 else zeros  # noqa: E731
    return Episode(
        log_probs=stack(log_probs) if log_probs else zeros,
        entropies=stack(entropies) if entropies else zeros,
        baselines=stack(baselines),
        step_logits=torch.stack(step_logits),
        reward=reward.float(),
        labels=info["final_info"]["label"],
        pixels_seen=info["final_info"]["pixels_seen"].float(),
        locs=torch.stack(locs),
        first_obs=first_obs,
        next_obs=obs,
        glimpses=torch.stack(glimpses) if record_glimpses else None,
    )
