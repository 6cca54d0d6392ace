"""rl-zoo3 hyperparameters for ppo_lstm: ``--conf-file activevision.zoo.ppo_lstm``."""

from activevision.zoo import load

hyperparams = load("ppo_lstm")
