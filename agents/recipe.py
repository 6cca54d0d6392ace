"""Recipes: for each agent and world the settings that learn, kept as data in ``agents/recipes/<agent>.yml`` (in
the manner of rl-zoo3's hyperparameter files). A file has a ``default`` entry (every world without one of its
own, yours included), an entry per world that needs more, and ``paper``: the paper's own settings.

``recipe_options(agent, env_id, recipe)`` is what ``TrainConfig.from_recipe`` and ``activevision train`` start
from: ``"tuned"`` (the default: ``default`` then the world's entry over it), ``"paper"`` or ``"none"`` (the
agent's plain defaults). World options (``env_kwargs``, ``eval_env_kwargs``) merge key by key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from activevision.checks import check_choice

__all__ = ["RECIPES", "recipe_options", "recipe_path"]

RECIPES = ("tuned", "paper", "none")
_WORLD_OPTIONS = ("env_kwargs", "eval_env_kwargs")


def recipe_path(agent: str) -> Path:
    """The recipe file of ``agent`` (it may not exist: agents of your own have none)."""
    return Path(__file__).with_name("recipes") / f"{agent}.yml"


def recipe_options(agent: str, env_id: str, recipe: str = "tuned") -> dict[str, Any]:
    """The options ``recipe`` gives ``agent`` on world ``env_id`` (empty for ``"none"`` and for agents without a
    recipe file)."""
    check_choice("recipe", recipe, RECIPES)
    path = recipe_path(agent)
    if recipe == "none" or ":" in agent or not path.is_file():
        return {}
    book = yaml.safe_load(path.read_text()) or {}
    entries = [book.get("paper") or {}] if recipe == "paper" else [book.get("default") or {}, book.get(env_id) or {}]
    merged: dict[str, Any] = {}
    for entry in entries:
        for key, value in entry.items():
            merged[key] = {**merged.get(key, {}), **value} if key in _WORLD_OPTIONS else value
    return merged
