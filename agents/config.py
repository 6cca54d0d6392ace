"""``TrainConfig``: what a run depends on, saved as ``config.json`` in its folder.

A small base (world, batch, steps, seed, device, optimiser, schedule, location policy, evaluation, checkpoints) and
two dicts of settings: the agent's (``agent_settings``, the fields of its settings dataclass, e.g. ``RAMSettings``)
and its algorithm's (``algorithm_settings``, e.g. ``PPOSettings``). Settings may also be given by name
(``TrainConfig(agent="gam", hidden=128, ppo_epochs=2)`` routes each to its dict, refusing any the agent or its
algorithm does not have). ``validate()`` checks without changing anything; ``resolved()`` fills every default
(the agent's learning rate, its settings and its algorithm's, the context size it reads) and validates.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

import activevision
from activevision.agents.recipe import RECIPES, recipe_options
from activevision.agents.registry import AGENTS, ALGORITHMS, agent_spec, algorithm_class
from activevision.agents.rollout import CLASSIFY_STEPS, POLICIES
from activevision.checks import check_field_types, check_settings, setting

__all__ = ["TrainConfig"]

# Keys of config.json files written before the settings were split out (one flat object): settings of other agents
# and algorithms than the run's are dropped on reading (they had no effect on it).
_WORLD_KWARGS = ("env_kwargs", "eval_env_kwargs")


@dataclass(init=False)
class TrainConfig:
    """Everything a run depends on. See the module docstring for the settings dicts."""

    agent: str = "ram"  # a registered name (activevision.agents.AGENTS) or "module:Class"
    recipe: str | None = setting(None, choices=RECIPES)  # the recipe the config started from (from_recipe)
    env: str = "GlimpseMNIST-v0"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    eval_split: str = "test"
    eval_env_kwargs: dict[str, Any] = field(default_factory=dict)  # replace env_kwargs in tests (e.g. size)
    policy: str = setting("learned", choices=POLICIES)  # "random" / "center": the location baselines
    steps: int = setting(2000, low=1)  # updates; each is one episode of every env in the batch
    batch: int = setting(128, low=1)
    seed: int = 0
    device: str = "auto"
    lr: float | None = setting(None, above=0.0)  # None: the agent's default
    lr_final: float | None = setting(None, above=0.0)  # cosine decay to this rate when set
    warmup: int = setting(0, low=0)  # updates of linear learning-rate warmup from lr / warmup (0: none)
    weight_decay: float = setting(0.0, low=0.0)  # AdamW's decoupled weight decay
    clip: float = setting(5.0, above=0.0)  # gradient norm clipping
    std: float = setting(0.17, above=0.0)  # the location std (PPO: its initial value; PPO learns it)
    std_final: float | None = setting(None, above=0.0)  # linear anneal of the location std to this value when set
    entropy: float = 0.0  # entropy bonus (REINFORCE: of the fixed-std Gaussian, logged only; PPO: its coefficient)
    classify_steps: str = setting("last", choices=CLASSIFY_STEPS)  # "all": cross-entropy after every glimpse
    eval_every: int = setting(500, low=1)
    eval_batch: int = setting(1000, low=1)
    checkpoint_every: int = setting(500, low=1)
    compile: bool = False
    agent_settings: dict[str, Any] = field(default_factory=dict)  # the agent's own (its settings dataclass)
    algorithm_settings: dict[str, Any] = field(default_factory=dict)  # its algorithm's own

    def __init__(self, **options: Any) -> None:
        for item in dataclasses.fields(self):
            default = item.default_factory() if item.default_factory is not dataclasses.MISSING else item.default
            setattr(self, item.name, options.pop(item.name) if item.name in options else default)
        if not isinstance(self.agent_settings, dict) or not isinstance(self.algorithm_settings, dict):
            raise ValueError(
                f"agent_settings={self.agent_settings!r} / algorithm_settings={self.algorithm_settings!r} are "
                "not allowed: use dicts of settings"
            )
        self.agent_settings, self.algorithm_settings = dict(self.agent_settings), dict(self.algorithm_settings)
        for name, value in options.items():  # settings given by name: each to the dict of its owner
            owner = self._owner(name)
            if owner is None:
                agent, algorithm = self.settings_classes()
                raise ValueError(
                    f"{name}={value!r} is not allowed for {self.agent}: its settings are "
                    f"{sorted(_names(agent) | _names(algorithm))}, besides {sorted(_names(TrainConfig))}"
                )
            owner[name] = value

    def _owner(self, name: str) -> dict[str, Any] | None:
        """The dict that holds setting ``name``: the agent's or its algorithm's (None: neither has it)."""
        agent, algorithm = self.settings_classes()
        if name in _names(agent):
            return self.agent_settings
        return self.algorithm_settings if name in _names(algorithm) else None

    def __getattr__(self, name: str) -> Any:
        """A setting by name (``config.hidden``): the value given, or its settings dataclass's default."""
        if name.startswith("_") or name in _BASE:
            raise AttributeError(name)
        try:
            agent, algorithm = self.settings_classes()
        except ValueError:
            raise AttributeError(name) from None
        for cls, given in ((agent, self.agent_settings), (algorithm, self.algorithm_settings)):
            if name in _names(cls):
                return given[name] if name in given else getattr(_filled(cls, {}), name)
        raise AttributeError(f"{type(self).__name__} of {self.agent} has no setting {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        """Base fields as attributes; a setting by name (``config.hidden = 128``) into its dict."""
        if name in _BASE or name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        owner = self._owner(name)
        if owner is None:
            raise AttributeError(f"{name!r} is neither a field of TrainConfig nor a setting of {self.agent}")
        owner[name] = value

    # ------------------------------------------------------------------ what the agent is
    def settings_classes(self) -> tuple[type, type]:
        """The dataclasses of the agent's settings and of its algorithm's."""
        spec = agent_spec(self.agent)
        return spec.settings, algorithm_class(spec.algorithm).Settings

    @property
    def algorithm(self) -> str:
        """How the agent learns: "reinforce", "ppo", "q-topdown" (or a registered algorithm)."""
        return agent_spec(self.agent).algorithm

    def agent_options(self) -> Any:
        """The agent's settings dataclass, every default filled."""
        return _filled(self.settings_classes()[0], self.agent_settings)

    def algorithm_options(self) -> Any:
        """The algorithm's settings dataclass, every default filled."""
        return _filled(self.settings_classes()[1], self.algorithm_settings)

    def flat(self) -> dict[str, Any]:
        """Base fields and every setting by name, one flat dict (for messages and the CLI)."""
        base = {item.name: getattr(self, item.name) for item in dataclasses.fields(self)}
        settings = {**base.pop("agent_settings"), **base.pop("algorithm_settings")}
        return {**base, **settings}

    # ------------------------------------------------------------------ checking and filling
    def validate(self) -> None:
        """Raise a ValueError naming the first bad value and what is allowed; changes nothing."""
        check_field_types(self, coerce=False)
        agent_class, algorithm_settings = self.settings_classes()
        spec = agent_spec(self.agent)
        if self.env not in activevision.ENV_IDS:
            raise ValueError(f"env={self.env!r} is not allowed: choose one of {sorted(activevision.ENV_IDS)}")
        check_settings(self)
        for cls, given in ((agent_class, self.agent_settings), (algorithm_settings, self.algorithm_settings)):
            unknown = sorted(set(given) - _names(cls))
            if unknown:
                raise ValueError(
                    f"{unknown[0]}={given[unknown[0]]!r} is not allowed for {self.agent}: its settings are "
                    f"{sorted(_names(agent_class) | _names(algorithm_settings))}"
                )
            check_settings(cls(**given))
        for name in _WORLD_KWARGS:
            _check_world_kwargs(name, getattr(self, name), self.agent)
        if self.compile and not spec.compiles:
            raise ValueError(
                f"compile=True is not allowed for {self.agent}: use it with an agent whose step has fixed shapes "
                "(ram; GAM's caches grow every step, PPO replays and the top-down frame run eagerly)"
            )
        algorithm_class(spec.algorithm).check(self)

    def resolved(self) -> TrainConfig:
        """A copy with every default filled (the agent's learning rate and context size, every setting), paths
        in the world options as strings; validated."""
        self.validate()
        spec = agent_spec(self.agent)
        env_kwargs = _json_ready(self.env_kwargs)
        if spec.context_size is not None and env_kwargs.get("context_size") is None:
            env_kwargs["context_size"] = spec.context_size
        filled = dataclasses.replace(
            self,
            lr=spec.lr if self.lr is None else self.lr,
            env_kwargs=env_kwargs,
            eval_env_kwargs=_json_ready(self.eval_env_kwargs),
            agent_settings=dataclasses.asdict(self.agent_options()),
            algorithm_settings=dataclasses.asdict(self.algorithm_options()),
        )
        filled.validate()
        check_field_types(filled)  # integers given for float fields become floats
        return filled

    def check(self) -> TrainConfig:
        """``resolved()`` (the name earlier versions used)."""
        return self.resolved()

    @classmethod
    def from_recipe(cls, agent: str, env: str, recipe: str = "tuned", **options: Any) -> TrainConfig:
        """The config of ``agent`` on world ``env`` from its recipe (``activevision.agents.recipe``), ``options``
        over it (world options merged key by key)."""
        given = recipe_options(agent, env, recipe)
        for name in _WORLD_KWARGS:
            given[name] = {**given.get(name, {}), **(options.pop(name, None) or {})}
        return cls(agent=agent, env=env, recipe=recipe, **{**given, **options})

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> TrainConfig:
        """A config from ``config.json``'s object, as this version writes it or as earlier ones did (one flat
        object; settings of other agents and algorithms than the run's, which had no effect, are dropped)."""
        base = _names(TrainConfig)
        flat = {name: value for name, value in saved.items() if name not in base}
        config = cls(**{name: value for name, value in saved.items() if name in base})
        if flat:
            known = _every_setting()
            unknown = sorted(set(flat) - known)
            if unknown:
                raise ValueError(f"unknown setting(s) {unknown}; allowed: {sorted(base | known)}")
            agent, algorithm = config.settings_classes()
            mine = _names(agent) | _names(algorithm)
            config = cls(**{**dataclasses.asdict(config), **{k: v for k, v in flat.items() if k in mine}})
        return config


_BASE = {item.name for item in dataclasses.fields(TrainConfig)}


def _filled(cls: type, given: dict[str, Any]) -> Any:
    """``cls(**given)``, integers given for its float fields made floats."""
    instance = cls(**given)
    check_field_types(instance)
    return instance


def _names(cls: type) -> set[str]:
    return {item.name for item in dataclasses.fields(cls)}


def _every_setting() -> set[str]:
    """Every setting of every registered agent and algorithm (the keys of earlier flat config files)."""
    names = set().union(*(_names(spec.settings) for spec in AGENTS.values()))
    return names.union(*(_names(algorithm.Settings) for algorithm in ALGORITHMS.values()))


def _check_world_kwargs(name: str, value: Any, agent: str) -> None:
    """World options: a dict of JSON values (paths allowed: saved as strings), in continuous action mode."""
    if not isinstance(value, dict):
        raise ValueError(f"{name}={value!r} is not allowed: use a dict (JSON object)")
    for key, item in _json_ready(value).items():
        try:
            json.dumps(item)
        except TypeError:
            raise ValueError(
                f"{name}[{key!r}]={item!r} is not allowed: use JSON values (numbers, strings, lists, dicts, null)"
            ) from None
    if value.get("action_mode", "continuous") != "continuous":
        raise ValueError(f"{name} action_mode must be 'continuous' for {agent} (location + scores every step)")


def _json_ready(options: dict[str, Any]) -> dict[str, Any]:
    return {key: os.fspath(value) if isinstance(value, os.PathLike) else value for key, value in options.items()}
