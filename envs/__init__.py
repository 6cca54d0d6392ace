"""Gymnasium environments of activevision (installed as ``activevision.envs``)."""

from activevision.envs.glimpse_env import GlimpseEnv, ResetNeeded
from activevision.envs.presets import PRESETS, make_dataset, make_preset, make_preset_vec
from activevision.envs.vector import GlimpseVectorEnv

__all__ = ["GlimpseEnv", "GlimpseVectorEnv", "ResetNeeded", "PRESETS", "make_dataset", "make_preset", "make_preset_vec"]
