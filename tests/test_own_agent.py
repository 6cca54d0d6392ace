"""An agent of your own, in a module outside the library (notebooks/my_agent.py, 48 lines): trained above chance by
the same Trainer, named on the command line as module:Class, its settings taken from its constructor, evaluated,
rendered and resumed; registered by name without editing the library; refused by name when it is no agent."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from torch import nn

from activevision.agents import AGENTS, TrainConfig, Trainer, register_agent
from activevision.agents.registry import spec_of_class
from activevision.cli import main
from tests.conftest import assert_learns_above_chance, assert_resumes_exactly, cli_train_args

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
AGENT = "my_agent:GlimpseGRU"


@pytest.fixture()
def here(monkeypatch):
    """Run from notebooks/, where my_agent.py sits (as a user runs next to their own module)."""
    monkeypatch.chdir(NOTEBOOKS)
    monkeypatch.syspath_prepend(str(NOTEBOOKS))


@pytest.fixture()
def config(here, mnist_dir, device) -> TrainConfig:
    return TrainConfig(
        agent=AGENT,
        env="GlimpseMNIST-v0",
        env_kwargs=dict(data_dir=str(mnist_dir), split="t10k-train", download=False),
        eval_split="t10k-test",
        steps=4,
        batch=32,
        eval_every=1000,
        checkpoint_every=1000,
        device=device,
    )


def test_your_own_agent_learns_above_chance(config, tmp_path):
    """150 updates of 64 episodes on MNIST t10k-train (seconds)."""
    config.steps, config.batch, config.hidden = 150, 64, 128
    assert_learns_above_chance(config, tmp_path / "run")


def test_its_settings_come_from_its_constructor(config):
    resolved = config.resolved()
    assert resolved.agent_settings == {"hidden": 64, "core_input": 64} and resolved.lr == 3e-3
    with pytest.raises(ValueError, match=r"core='gru' is not allowed for my_agent:GlimpseGRU"):
        TrainConfig(**{**config.__dict__, "core": "gru"})
    with pytest.raises(ValueError, match="hidden=0.5 is not allowed: use int"):
        TrainConfig(**{**config.__dict__, "hidden": 0.5}).resolved()


def test_it_resumes_exactly(config, tmp_path):
    assert_resumes_exactly(config, tmp_path, stop=2, total=4)


def test_the_cli_trains_evaluates_and_renders_it(here, mnist_dir, tmp_path, capsys):
    out = tmp_path / "mine"
    main(cli_train_args(mnist_dir, AGENT, out, "--steps", "3", "--batch", "16", "--hidden", "32"))
    assert f"{AGENT} on GlimpseMNIST-v0" in capsys.readouterr().out
    main(["eval", str(out), "--split", "t10k-test", "--device", "cpu"])
    assert "accuracy" in capsys.readouterr().out
    main(["render", str(out), "--split", "t10k-test", "--out", str(tmp_path / "g.png"), "--device", "cpu"])
    assert (tmp_path / "g.png").is_file()
    main(["train", AGENT, "--resume", str(out), "--steps", "4", "--quiet"])
    assert "4 updates" in capsys.readouterr().out


def test_registered_by_name_without_editing_the_library(here, config, tmp_path):
    from my_agent import GlimpseGRU

    spec = register_agent("glimpse-gru", GlimpseGRU)
    try:
        assert AGENTS["glimpse-gru"] is spec and [f.name for f in dataclasses.fields(spec.settings)] == [
            "hidden",
            "core_input",
        ]
        trainer = Trainer(dataclasses.replace(config, agent="glimpse-gru"), tmp_path / "run")
        assert isinstance(trainer.agent, GlimpseGRU) and trainer.train_step()["loss"] > 0
    finally:
        del AGENTS["glimpse-gru"]


def test_what_is_no_agent_is_refused_by_name(here):
    class Headless(nn.Module):
        def forward(self, glimpse, loc, state):
            return state

    with pytest.raises(ValueError, match=r"agent Headless is not allowed: it lacks \['initial_state', 'first'\]"):
        spec_of_class(Headless)
    with pytest.raises(ValueError, match="agent 'len' is not allowed|is not allowed: use an nn.Module class"):
        spec_of_class(len)
    with pytest.raises(ValueError, match="module 'no_such_module' cannot be imported"):
        TrainConfig(agent="no_such_module:Agent").resolved()
    with pytest.raises(ValueError, match="module 'my_agent' has no 'Missing'"):
        TrainConfig(agent="my_agent:Missing").resolved()


def test_every_registered_agent_has_the_step_interface():
    """RAM, GAM and the top-down agent implement GlimpseAgent; PPO's Gaussian policy wraps one and has it too."""
    import gymnasium as gym

    from activevision.agents import GlimpseAgent, make_agent

    space = gym.make("GlimpseHouseNumbers-v0", size=10, context_size=12).observation_space
    for name in AGENTS:
        agent = make_agent(TrainConfig(agent=name, hidden=32, glimpse_hidden=16), space, 10)
        assert isinstance(agent, GlimpseAgent), name
