"""Agents of activevision (installed as ``activevision.agents``): networks, algorithms and the trainer.

Your own agent: an ``nn.Module`` with the ``GlimpseAgent`` step interface, trained by name (``TrainConfig(agent=
"mymodule:MyAgent")``, ``activevision train mymodule:MyAgent``) or registered (``register_agent("mine",
MyAgent)``); see ``notebooks/05_your_own_agent.ipynb``.
"""

from activevision.agents.config import TrainConfig
from activevision.agents.evaluation import evaluate, protocol, trace
from activevision.agents.interface import Algorithm, GlimpseAgent, Learner
from activevision.agents.registry import AGENTS, ALGORITHMS, AgentSpec, register_agent
from activevision.agents.rollout import Episode, rollout
from activevision.agents.trainer import Trainer, load_run, make_agent

__all__ = [
    "AGENTS",
    "ALGORITHMS",
    "AgentSpec",
    "Algorithm",
    "Episode",
    "GlimpseAgent",
    "Learner",
    "TrainConfig",
    "Trainer",
    "evaluate",
    "load_run",
    "make_agent",
    "protocol",
    "register_agent",
    "rollout",
    "trace",
]
