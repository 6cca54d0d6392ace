"""rl-zoo3 hyperparameters for sac: ``--conf-file activevision.zoo.sac``."""

from activevision.zoo import load

hyperparams = load("sac")
