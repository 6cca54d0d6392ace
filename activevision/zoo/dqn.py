"""rl-zoo3 hyperparameters for dqn: ``--conf-file activevision.zoo.dqn``."""

from activevision.zoo import load

hyperparams = load("dqn")
