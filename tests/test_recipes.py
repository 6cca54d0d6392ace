"""Recipes: every agent's file names only settings it has and worlds that exist; options override a recipe and world
options merge over its own; the CLI starts from the recipe, records it, and prints every resolved value."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

import activevision
from activevision.agents import AGENTS, TrainConfig, Trainer
from activevision.agents.recipe import RECIPES, recipe_options, recipe_path
from activevision.cli import main


@pytest.mark.parametrize("agent", list(AGENTS))
def test_every_recipe_of_every_agent_resolves_on_every_world(agent):
    book = yaml.safe_load(recipe_path(agent).read_text())
    assert "default" in book and "paper" in book
    assert set(book) - {"default", "paper"} <= set(activevision.ENV_IDS)  # no entry for a world that does not exist
    for env in sorted(activevision.ENV_IDS):
        for recipe in RECIPES:
            config = TrainConfig.from_recipe(agent, env, recipe).resolved()
            assert config.recipe == recipe and config.env == env


def test_options_override_the_recipe_and_world_options_merge():
    tuned = TrainConfig.from_recipe("ram", "GlimpseMNIST-v0").resolved()
    assert tuned.core == "gru" and tuned.classify_steps == "all" and tuned.env_kwargs == {"shift": 2}
    given = TrainConfig.from_recipe("ram", "GlimpseMNIST-v0", core="lstm", env_kwargs={"split": "t10k-train"})
    assert given.core == "lstm" and given.env_kwargs == {"shift": 2, "split": "t10k-train"}
    assert TrainConfig.from_recipe("ram", "GlimpseMNIST-v0", env_kwargs={"shift": 0}).env_kwargs == {"shift": 0}
    paper = TrainConfig.from_recipe("gam", "GlimpseHouseNumbers-v0", "paper").resolved()
    assert (paper.hidden, paper.lr, paper.warmup, paper.encoder_skip) == (64, 1e-4, 0, False)
    assert (
        TrainConfig.from_recipe("ram", "GlimpseMNIST-v0", "none").resolved()
        == TrainConfig(agent="ram", recipe="none").resolved()
    )
    assert recipe_options("my_agent:GlimpseGRU", "GlimpseMNIST-v0") == {}  # agents of your own have none
    with pytest.raises(ValueError, match="recipe='fast' is not allowed: choose one of 'tuned', 'paper', 'none'"):
        TrainConfig.from_recipe("ram", "GlimpseMNIST-v0", "fast")


def test_the_cli_starts_from_the_recipe_and_shows_every_value(mnist_dir, tmp_path, capsys):
    world = json.dumps({"data_dir": str(mnist_dir), "split": "t10k-train", "download": False})
    base = ["train", "ram", "--env", "GlimpseMNIST-v0", "--env-kwargs", world, "--core", "lstm"]
    main([*base, "--show-config"])
    shown = json.loads(capsys.readouterr().out)
    assert shown["recipe"] == "tuned" and shown["agent_settings"]["core"] == "lstm" and shown["lr_final"] == 1e-4
    assert shown["env_kwargs"] == {"shift": 2, "data_dir": str(mnist_dir), "split": "t10k-train", "download": False}
    main([*base, "--recipe", "paper", "--show-config"])
    assert json.loads(capsys.readouterr().out)["lr_final"] is None
    out = tmp_path / "run"
    main(
        [
            *base,
            "--steps",
            "1",
            "--batch",
            "8",
            "--eval-split",
            "t10k-test",
            "--device",
            "cpu",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    saved = json.loads((out / "config.json").read_text())
    assert saved == shown | {"steps": 1, "batch": 8, "eval_split": "t10k-test", "device": "cpu"}
    assert dataclasses.asdict(Trainer.resume(out).config) == saved


def test_a_resume_that_repeats_the_world_options_is_accepted(mnist_dir, tmp_path, capsys):
    """torchrun scripts repeat every option on resume: --env-kwargs merges over the run's recipe as it first did."""
    world = json.dumps({"data_dir": str(mnist_dir), "split": "t10k-train", "download": False})
    common = ["--env", "GlimpseMNIST-v0", "--env-kwargs", world, "--batch", "8", "--device", "cpu", "--quiet"]
    out = str(tmp_path / "run")
    main(["train", "ram", *common, "--eval-split", "t10k-test", "--steps", "1", "--out", out])
    main(["train", "ram", *common, "--eval-split", "t10k-test", "--steps", "2", "--resume", out])
    assert "2 updates" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"env_kwargs \(.*'shift': 2.* -> .*'shift': 0.*\) cannot change"):
        main(["train", "ram", *common[:2], "--env-kwargs", json.dumps({"shift": 0}), "--resume", out, "--steps", "3"])
