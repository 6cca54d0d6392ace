"""TrainConfig: a base and each agent's and algorithm's own settings; validating changes nothing, resolving fills
the defaults; config.json round-trips, and run folders written by activevision 0.1 (one flat config object, committed
in tests/data/runs-0.1) load and resume."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from activevision.agents import AGENTS, TrainConfig, Trainer
from activevision.cli import main

RUNS = Path(__file__).parent / "data" / "runs-0.1"


@pytest.mark.parametrize("agent", list(AGENTS))
def test_config_json_round_trips_and_validating_changes_nothing(agent):
    given = TrainConfig(agent=agent, steps=7, hidden=48)
    before = dataclasses.asdict(given)
    given.validate()
    assert dataclasses.asdict(given) == before and given.agent_settings == {"hidden": 48}
    resolved = given.resolved()
    assert resolved.lr == AGENTS[agent].lr and resolved.hidden == 48 and resolved.steps == 7
    assert set(resolved.agent_settings) == {item.name for item in dataclasses.fields(AGENTS[agent].settings)}
    saved = json.loads(json.dumps(dataclasses.asdict(resolved)))
    assert TrainConfig.from_dict(saved) == resolved and TrainConfig.from_dict(saved).resolved() == resolved


def test_settings_go_to_their_owner_and_others_are_refused_by_name():
    config = TrainConfig(agent="ppo-gam", layers=2, ppo_epochs=3, lr=1e-3)
    assert config.agent_settings == {"layers": 2} and config.algorithm_settings == {"ppo_epochs": 3}
    assert config.layers == 2 and config.heads == 4 and config.gae_lambda == 0.95  # read by name, defaults filled
    config.heads = 2
    assert config.agent_settings == {"layers": 2, "heads": 2}
    with pytest.raises(ValueError, match=r"core='gru' is not allowed for ppo-gam: its settings are"):
        TrainConfig(agent="ppo-gam", core="gru")
    with pytest.raises(AttributeError, match="neither a field of TrainConfig nor a setting of ram"):
        TrainConfig(agent="ram").epsilon = 0.5
    with pytest.raises(ValueError, match=r"agent='dqn' is not allowed: choose one of 'ram'"):
        TrainConfig(agent="dqn").resolved()


@pytest.mark.parametrize("agent", ["ram", "gam", "ppo-ram", "topdown"])
def test_flat_config_files_of_version_0_1_load(agent, mnist_dir):
    saved = json.loads((RUNS / agent / "config.json").read_text())
    config = TrainConfig.from_dict(saved).resolved()
    mine = {item.name for cls in config.settings_classes() for item in dataclasses.fields(cls)}
    for name, value in saved.items():  # every setting of this agent kept, the others' dropped
        if name in mine or name in {item.name for item in dataclasses.fields(TrainConfig)}:
            assert config.flat()[name] == value, name
    assert set(config.flat()) - set(saved) == {"recipe"}  # a field 0.1 did not have (None: no recipe)
    assert config.recipe is None
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['lerning_rate'\]"):
        TrainConfig.from_dict({**saved, "lerning_rate": 0.1})


@pytest.mark.parametrize("agent", ["ram", "ppo-ram", "topdown"])
def test_run_folders_of_version_0_1_resume(agent, mnist_dir, tmp_path, capsys):
    run = tmp_path / agent
    shutil.copytree(RUNS / agent, run)
    config = run / "config.json"
    config.write_text(config.read_text().replace("MNIST_DIR", str(mnist_dir)))
    trainer = Trainer.resume(run, steps=2, eval_split="t10k-test", eval_batch=200)
    assert trainer.update == 1
    weights = {name: value.clone() for name, value in trainer.agent.state_dict().items()}
    main(["train", agent, "--resume", str(run), "--steps", "2", "--eval-split", "t10k-test", "--quiet"])
    assert "2 updates" in capsys.readouterr().out
    saved = json.loads(config.read_text())
    assert saved["agent_settings"]["hidden"] == 32 and "ppo_epochs" not in saved  # written anew, nested
    assert set(weights) == set(Trainer.resume(run).agent.state_dict())
