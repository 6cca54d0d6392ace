"""rl-zoo3 hyperparameters for a2c: ``--conf-file activevision.zoo.a2c``."""

from activevision.zoo import load

hyperparams = load("a2c")
