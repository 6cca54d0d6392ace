"""The tables of agents and algorithms the trainer and the CLI find them in: a name (or ``"module:Class"`` for an
agent of your own, imported by name, never registered by editing this library) to how to build it and how it
learns. The trainer never branches on an agent's or an algorithm's name: it looks them up here."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from activevision.agents.gam import GAM, GAMSettings
from activevision.agents.ppo import PPO
from activevision.agents.qlearning import TopDownQ
from activevision.agents.ram import RAM, RAMSettings
from activevision.agents.reinforce import Reinforce
from activevision.agents.topdown import TopDown, TopDownSettings

__all__ = ["AgentSpec", "AGENTS", "ALGORITHMS", "agent_spec", "algorithm_class", "register_agent", "spec_of_class"]


@dataclass(frozen=True)
class AgentSpec:
    """How to build an agent and how it learns.

    ``make(observation_space, num_classes, **settings)`` builds it (an ``nn.Module`` with the ``GlimpseAgent``
    step interface) from the fields of ``settings`` (a dataclass: they are the agent's config settings and CLI
    options); ``algorithm`` names its entry in ``ALGORITHMS``; ``lr`` is its default learning rate;
    ``context_size`` the context asked of worlds whose options name none (agents that read the whole image
    downsampled); ``compiles``: its step has fixed shapes, so ``compile=True`` is allowed.
    """

    make: Callable[..., nn.Module]
    settings: type
    algorithm: str = "reinforce"
    lr: float = 1e-3
    context_size: int | None = None
    compiles: bool = False


def _topdown(observation_space: Any, num_classes: int, regions: int = 3, **settings: Any) -> TopDown:
    return TopDown(observation_space, num_classes, grid=regions, **settings)


# Defaults: RAM's from Mnih et al. 2014 (hidden 256), GAM's from the glimpse attention paper (width 64, lr 1e-4,
# conv "what" net combined by product with "where"); PPO and the top-down agent take their core's. Context sizes:
# GAM's paper uses 12x12; the top-down agent picks regions from it, so it sees more (a digit on a 100x100 canvas is
# ~7 pixels wide at 24).
AGENTS: dict[str, AgentSpec] = {
    "ram": AgentSpec(RAM, RAMSettings, "reinforce", lr=1e-3, compiles=True),
    "gam": AgentSpec(GAM, GAMSettings, "reinforce", lr=1e-4, context_size=12),
    "ppo-ram": AgentSpec(RAM, RAMSettings, "ppo", lr=3e-4),
    "ppo-gam": AgentSpec(GAM, GAMSettings, "ppo", lr=1e-4, context_size=12),
    "topdown": AgentSpec(_topdown, TopDownSettings, "q-topdown", lr=1e-3, context_size=24),
}

# How agents learn: REINFORCE with RAM's hybrid loss, PPO, top-down Q-learning of regions with REINFORCE inside.
ALGORITHMS: dict[str, Any] = {"reinforce": Reinforce, "ppo": PPO, "q-topdown": TopDownQ}


def register_agent(name: str, agent: type | AgentSpec) -> AgentSpec:
    """Add an agent to ``AGENTS`` under ``name`` (a class as ``spec_of_class`` reads it, or a spec)."""
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"name={name!r} is not allowed: use a non-empty name without ':'")
    spec = agent if isinstance(agent, AgentSpec) else spec_of_class(agent)
    AGENTS[name] = spec
    return spec


def spec_of_class(cls: Any) -> AgentSpec:
    """The spec of an agent class of your own: an ``nn.Module`` built as ``cls(observation_space, num_classes,
    **settings)`` with ``initial_state``, ``first`` and ``forward`` (the ``GlimpseAgent`` step interface).

    Its settings are ``cls.Settings`` (a dataclass) if it has one, else its constructor's keyword arguments with
    defaults; ``cls.algorithm`` (default "reinforce"), ``cls.lr`` (1e-3) and ``cls.context_size`` (None) are read
    when present."""
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise ValueError(f"agent {cls!r} is not allowed: use an nn.Module class")
    missing = [name for name in ("initial_state", "first", "forward") if not callable(getattr(cls, name, None))]
    if missing:
        raise ValueError(f"agent {cls.__name__} is not allowed: it lacks {missing} (the GlimpseAgent step interface)")
    settings = getattr(cls, "Settings", None) or _settings_of(cls)
    algorithm = getattr(cls, "algorithm", "reinforce")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"{cls.__name__}.algorithm={algorithm!r} is not allowed: choose one of {sorted(ALGORITHMS)}")
    return AgentSpec(
        cls, settings, algorithm, lr=float(getattr(cls, "lr", 1e-3)), context_size=getattr(cls, "context_size", None)
    )


def _settings_of(cls: type) -> type:
    """A dataclass of the keyword arguments (with defaults) of ``cls``'s constructor after the world's two."""
    constructor = next(vars(base)["__init__"] for base in cls.__mro__ if "__init__" in vars(base))
    parameters = list(inspect.signature(constructor).parameters.values())[3:]  # self, observation_space, classes
    try:
        hints = typing.get_type_hints(constructor)
    except (NameError, TypeError):  # annotations naming what this module cannot see: typed by their defaults
        hints = {}
    fields = []
    for parameter in parameters:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.default is parameter.empty:
            raise ValueError(f"{cls.__name__}'s argument {parameter.name!r} needs a default (settings are optional)")
        kind = hints.get(parameter.name, object if parameter.default is None else type(parameter.default))
        fields.append((parameter.name, kind, dataclasses.field(default=parameter.default)))
    return dataclasses.make_dataclass(f"{cls.__name__}Settings", fields)


def agent_spec(name: str) -> AgentSpec:
    """The spec of a registered agent, or of ``"module:Class"`` (imported from the Python path or the current
    folder)."""
    if not isinstance(name, str):
        raise ValueError(f"agent={name!r} is not allowed: use a name or 'module:Class'")
    if name in AGENTS:
        return AGENTS[name]
    if ":" not in name:
        raise ValueError(
            f"agent={name!r} is not allowed: choose one of {', '.join(map(repr, AGENTS))}, or name your own "
            "as 'module:Class'"
        )
    module_name, _, class_name = name.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:  # as `python -m` does: modules beside you import
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"agent={name!r} is not allowed: module {module_name!r} cannot be imported ({error})"
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ValueError(f"agent={name!r} is not allowed: module {module_name!r} has no {class_name!r}")
    return spec_of_class(cls)


def algorithm_class(name: str) -> Any:
    """The algorithm class registered as ``name``."""
    if name not in ALGORITHMS:
        raise ValueError(f"algorithm={name!r} is not allowed: choose one of {sorted(ALGORITHMS)}")
    return ALGORITHMS[name]
