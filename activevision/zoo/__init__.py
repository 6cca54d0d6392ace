"""rl-zoo3 hyperparameter files for the glimpse worlds, one ``<algo>.yml`` per algorithm in this folder.

rl-zoo3 reads them by path (``--conf-file .../activevision/zoo/ppo.yml``) or, from any folder once the package
is installed, as the module ``activevision.zoo.<algo>`` whose ``hyperparams`` is that file's content.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["ALGOS", "config_path", "load"]

ALGOS = ("a2c", "dqn", "ppo", "ppo_lstm", "sac")


def config_path(algo: str) -> Path:
    """The .yml file of ``algo``."""
    if algo not in ALGOS:
        raise ValueError(f"algo={algo!r} is not allowed: the zoo files cover {', '.join(ALGOS)}")
    return Path(__file__).with_name(f"{algo}.yml")


def load(algo: str) -> dict[str, Any]:
    """The hyperparameters of ``algo`` per env id, as rl-zoo3 reads them."""
    return yaml.safe_load(config_path(algo).read_text())
