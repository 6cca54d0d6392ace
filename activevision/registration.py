"""Registers the ``Glimpse*-v0`` ids of ``activevision.catalog`` with Gymnasium (imported by ``activevision``;
entry points are lazy)."""

from __future__ import annotations

import gymnasium as gym

from activevision.catalog import CATALOG

__all__ = ["ENV_IDS", "register_envs"]

ENV_IDS = {env_id: entry.summary for env_id, entry in CATALOG.items()}  # id -> what it shows


def register_envs() -> None:
    """Register every id once, with the batched ``GlimpseVectorEnv`` as its ``vector_entry_point`` (so
    ``gym.make_vec(id, num_envs, device=...)`` builds it). Order enforcement is done by the env itself, which
    raises a ValueError (``activevision.envs.ResetNeeded``) for a step before reset, so Gymnasium's wrapper is
    not added."""
    for env_id in CATALOG:
        if env_id not in gym.registry:
            gym.register(
                env_id,
                entry_point="activevision.envs.presets:make_preset",
                vector_entry_point="activevision.envs.presets:make_preset_vec",
                kwargs={"env_id": env_id},
                order_enforce=False,
            )
