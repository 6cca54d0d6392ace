"""Gymnasium environments of activevision (installed as ``activevision.envs``)."""

from activevision.envs.glimpse_env import GlimpseEnv, ResetNeeded
from activevision.envs.presets import PRESETS, make_dataset, make_preset

__all__ = ["GlimpseEnv", "ResetNeeded", "PRESETS", "make_dataset", "make_preset"]
