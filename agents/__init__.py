"""Agents of activevision (installed as ``activevision.agents``): networks, algorithms and the trainer."""
