"""rl-zoo3 hyperparameters for ppo: ``--conf-file activevision.zoo.ppo``."""

from activevision.zoo import load

hyperparams = load("ppo")
