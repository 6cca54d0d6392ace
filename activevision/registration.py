"""Registers the ``Glimpse*-v0`` ids with Gymnasium (imported by ``activevision``; entry points are lazy)."""

from __future__ import annotations

import gymnasium as gym

__all__ = ["ENV_IDS", "register_envs"]

ENV_IDS = {
    "GlimpseSVHN-v0": "svhn",
    "GlimpseHouseNumbers-v0": "house_numbers",
    "GlimpseMNIST-v0": "mnist",
    "GlimpseTranslatedMNIST-v0": "translated_mnist",
    "GlimpseClutteredMNIST-v0": "cluttered_mnist",
    "GlimpseClutteredMNIST100-v0": "cluttered_mnist100",
    "GlimpseLargeImage-v0": "large_image",
}


def register_envs() -> None:
    """Register every id once, with the batched ``GlimpseVectorEnv`` as its ``vector_entry_point`` (so
    ``gym.make_vec(id, num_envs, device=...)`` builds it). Order enforcement is done by the env itself, which
    raises a ValueError (``activevision.envs.ResetNeeded``) for a step before reset, so Gymnasium's wrapper is
    not added."""
    for env_id, factory in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=f"activevision.envs.presets:{factory}",
                         vector_entry_point=f"activevision.envs.presets:{factory}_vec", order_enforce=False)
