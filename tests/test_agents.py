"""RAM + REINFORCE: tiny runs that fail if learning breaks, checkpoints, bit-for-bit resume, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from activevision.agents.modules import Core, GlimpseNetwork
from activevision.agents.trainer import TrainConfig, Trainer, evaluate, load_run
from activevision.cli import main
from tests.conftest import assert_learns_above_chance, assert_same_tensors, cli_train_args


@pytest.fixture()
def config(mnist_dir, device) -> TrainConfig:
    return TrainConfig(
        env="GlimpseMNIST-v0",
        env_kwargs=dict(data_dir=str(mnist_dir), split="t10k-train", download=False),
        eval_split="t10k-test",
        steps=6,
        batch=32,
        eval_every=1000,
        checkpoint_every=1000,
        eval_batch=500,
        device=device,
        hidden=64,
        glimpse_hidden=32,
    )


def test_ram_learns_above_chance(config, tmp_path):
    """150 updates of 64 episodes (seconds): measured loss 2.30 -> 1.52-1.56, accuracy 0.44-0.46 (seeds 0, 1)."""
    config.steps, config.batch, config.hidden, config.glimpse_hidden = 150, 64, 128, 64
    assert_learns_above_chance(config, tmp_path / "run")


def test_training_worlds_shift_and_evaluation_does_not(config, tmp_path):
    """env_kwargs shift=2 moves the training images (the episodes differ), while evaluation reads the images as they
    are: the same agent scores exactly the same with and without the option."""
    shifted = TrainConfig(**{**config.__dict__, "env_kwargs": {**config.env_kwargs, "shift": 2}})
    plain, moved = Trainer(config, tmp_path / "plain"), Trainer(shifted, tmp_path / "moved")
    a, _ = plain.envs.reset(seed=0)
    b, _ = moved.envs.reset(seed=0)
    assert not torch.equal(a["glimpse"], b["glimpse"]) and int(moved.envs.shift.abs().max()) == 2
    scores = [evaluate(plain.agent, c, plain.device, split="t10k-test", limit=300) for c in (config, shifted)]
    assert scores[0] == scores[1]


def test_classify_steps_all_averages_every_steps_cross_entropy():
    """classify_steps="all": the classifier term is the mean over glimpses of each step's cross-entropy; "last"
    (the paper's) uses the last scores only; anything else is refused by name."""
    from torch.nn import functional as F

    from activevision.agents.reinforce import hybrid_loss
    from activevision.agents.rollout import Episode

    generator = torch.Generator().manual_seed(0)
    steps, batch = 4, 5
    step_logits = torch.randn(steps, batch, 10, generator=generator)
    labels = torch.randint(10, (batch,), generator=generator)
    zeros = torch.zeros(steps - 1, batch)
    episode = Episode(
        log_probs=zeros,
        entropies=zeros,
        baselines=zeros,
        step_logits=step_logits,
        reward=torch.ones(batch),
        labels=labels,
        pixels_seen=torch.ones(batch),
        locs=torch.zeros(steps, batch, 2),
        first_obs={},
        next_obs={},
    )
    by_hand = np.mean([F.cross_entropy(step_logits[t], labels).item() for t in range(steps)])
    assert hybrid_loss(episode, classify_steps="all")[1]["classify"] == pytest.approx(by_hand, rel=1e-6)
    last = F.cross_entropy(step_logits[-1], labels).item()
    assert hybrid_loss(episode)[1]["classify"] == pytest.approx(last, rel=1e-6) and abs(last - by_hand) > 1e-3
    with pytest.raises(ValueError, match="classify_steps='first'"):
        hybrid_loss(episode, classify_steps="first")


def test_trainer_passes_classify_steps(config, tmp_path):
    """Same seed, same first episode: only the classifier term differs between the two settings."""
    metrics = {
        steps: Trainer(TrainConfig(**{**config.__dict__, "classify_steps": steps}), tmp_path / steps).train_step()
        for steps in ("last", "all")
    }
    assert metrics["last"]["reinforce"] == metrics["all"]["reinforce"]
    assert metrics["last"]["classify"] != metrics["all"]["classify"]


def test_eval_env_kwargs_replace_the_training_world_in_tests(config, tmp_path):
    """A cluttered world trained on 3 canvases per digit is tested on one canvas per test digit."""
    config = TrainConfig(
        **{
            **config.__dict__,
            "env": "GlimpseClutteredMNIST-v0",
            "env_kwargs": {**config.env_kwargs, "size": 1500},
            "eval_env_kwargs": {"size": 400},
        }
    )
    trainer = Trainer(config, tmp_path / "run")
    assert len(trainer.envs.dataset) == 1500
    assert evaluate(trainer.agent, config, trainer.device, split="t10k-test")["images"] == 400
    plain = TrainConfig(**{**config.__dict__, "eval_env_kwargs": {}})
    assert evaluate(trainer.agent, plain, trainer.device, split="t10k-test")["images"] == 1500


@pytest.mark.parametrize("policy", ["random", "center"])
def test_location_baselines_train_only_classifier_and_core(config, tmp_path, policy):
    config.policy = policy
    trainer = Trainer(config, tmp_path / policy)
    before = trainer.agent.locator.linear.weight.clone()
    metrics = [trainer.train_step() for _ in range(3)]
    assert torch.equal(before, trainer.agent.locator.linear.weight)  # no gradient reaches the location head
    if policy == "center":
        assert metrics[-1]["pixels_seen"] == pytest.approx(64 / 784)  # always the same 8x8 patch


def test_checkpoint_round_trip_and_resume_equals_uninterrupted(config, tmp_path):
    straight = Trainer(config, tmp_path / "a")
    for _ in range(6):
        straight.train_step()
    first = Trainer(config, tmp_path / "b")
    for _ in range(3):
        first.train_step()
    first.save()
    resumed = Trainer(config, tmp_path / "b")
    resumed.load()
    assert resumed.update == 3
    for key, value in first.agent.state_dict().items():
        assert torch.equal(value, resumed.agent.state_dict()[key]), key  # a checkpoint is bit-exact anywhere
    for _ in range(3):
        resumed.train_step()
    for key, value in straight.agent.state_dict().items():
        assert_same_tensors(value, resumed.agent.state_dict()[key], key)


def test_killed_run_resumes_from_its_last_checkpoint(mnist_dir, tmp_path):
    out = tmp_path / "killed"
    kwargs = f'{{"data_dir": "{mnist_dir}", "split": "t10k-train", "download": false}}'
    command = [
        sys.executable,
        "-m",
        "activevision",
        "train",
        "ram",
        "--env",
        "GlimpseMNIST-v0",
        "--env-kwargs",
        kwargs,
        "--steps",
        "100000",
        "--batch",
        "16",
        "--hidden",
        "32",
        "--checkpoint-every",
        "2",
        "--eval-every",
        "100000",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--quiet",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:  # wait for a checkpoint past the start (written every 2 updates)
            time.sleep(0.2)
            checkpoint = out / "checkpoint.pt"
            if checkpoint.exists() and torch.load(checkpoint, weights_only=False)["update"] >= 4:
                break
    finally:
        os.kill(process.pid, signal.SIGKILL)  # at whatever point it is: training or writing
        process.wait()
    state = torch.load(out / "checkpoint.pt", weights_only=False)  # complete and loadable
    assert state["update"] >= 2
    main(["train", "ram", "--resume", str(out), "--steps", str(state["update"] + 2), "--quiet"])
    assert torch.load(out / "checkpoint.pt", weights_only=False)["update"] == state["update"] + 2


def test_cli_train_and_eval_end_to_end(mnist_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    main(
        cli_train_args(
            mnist_dir,
            "ram",
            out,
            "--steps",
            "4",
            "--batch",
            "16",
            "--hidden",
            "32",
            "--core",
            "lstm",
            "--eval-every",
            "2",
        )
    )
    assert "t10k-test accuracy" in capsys.readouterr().out
    assert (out / "config.json").is_file() and (out / "evals.csv").read_text().count("\n") == 3
    assert list((out / "tb").iterdir())
    main(["eval", str(out), "--split", "t10k-test", "--mc", "2", "--device", "cpu"])
    assert "accuracy over 2000 images" in capsys.readouterr().out
    config, agent, _ = load_run(out, "cpu")
    assert config.core == "lstm" and agent.core.kind == "lstm"
    with pytest.raises(SystemExit, match="core='transformer'"):
        main(["train", "ram", "--env", "GlimpseMNIST-v0", "--core", "transformer", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="no checkpoint.pt"):
        main(["eval", str(tmp_path / "nothing")])


@pytest.mark.parametrize("core", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("combine,what", [("add", "mlp"), ("mul", "mlp"), ("add", "conv")])
def test_module_shapes(core, combine, what):
    net = GlimpseNetwork((2, 3, 12, 12), 32, 16, 48, combine, what)
    g = net(torch.rand(5, 2, 3, 12, 12), torch.rand(5, 2))
    assert g.shape == (5, 48) and (g >= 0).all()
    cell = Core(48, 24, core)
    h, state = cell(g, cell.initial(5, torch.device("cpu")))
    assert h.shape == (5, 24)


def test_render_writes_a_grid_and_a_gif(config, tmp_path, capsys):
    from PIL import Image

    trainer = Trainer(config, tmp_path / "run")
    trainer.train_step()
    trainer.save()
    main(
        [
            "render",
            str(tmp_path / "run"),
            "--split",
            "t10k-test",
            "--examples",
            "3",
            "--out",
            str(tmp_path / "g.png"),
            "--device",
            "cpu",
        ]
    )
    grid = Image.open(tmp_path / "g.png")
    assert grid.size[0] > grid.size[1] > 3 * 90  # 6 glimpse columns, 3 example rows
    main(
        [
            "render",
            str(tmp_path / "run"),
            "--split",
            "t10k-test",
            "--examples",
            "2",
            "--out",
            str(tmp_path / "g.gif"),
            "--device",
            "cpu",
        ]
    )
    assert Image.open(tmp_path / "g.gif").n_frames == 6
    assert "answered right" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="use a .png or .gif"):
        main(
            [
                "render",
                str(tmp_path / "run"),
                "--split",
                "t10k-test",
                "--out",
                str(tmp_path / "g.jpg"),
                "--device",
                "cpu",
            ]
        )


def test_demo_end_to_end(tmp_path, capsys, mnist_dir):
    main(["demo", "--data-dir", str(mnist_dir), "--out", str(tmp_path / "demo"), "--steps", "2", "--quiet"])
    out = capsys.readouterr().out
    assert "RAM (learned glimpse locations): accuracy" in out and "random-location baseline" in out
    assert (tmp_path / "demo" / "glimpses.png").is_file() and (tmp_path / "demo" / "world.png").is_file()
    assert (tmp_path / "demo" / "ram" / "checkpoint.pt").is_file()
    for run in ("ram", "random_locations"):  # both runs in the world the demo names: two glimpses, 8 distractors
        config = json.loads((tmp_path / "demo" / run / "config.json").read_text())
        assert {"n_glimpses": 2, "n_distractors": 8}.items() <= config["env_kwargs"].items(), config["env_kwargs"]
    assert "n_distractors=8, n_glimpses=2" in out


@pytest.mark.parametrize(
    "changes,match",
    [
        (dict(dropout=1.5), "dropout=1.5"),
        (dict(weight_decay=-1.0), "weight_decay=-1.0"),
        (dict(std=0.0), "std=0.0"),
        (dict(policy="greedy"), "policy='greedy'"),
        (dict(batch=0), "batch=0"),
        (dict(env="CartPole-v1"), "CartPole"),
        (dict(env_kwargs={"action_mode": "discrete"}), "action_mode must be 'continuous'"),
        (dict(eval_env_kwargs=["size", 3]), r"eval_env_kwargs=\['size', 3\] is not allowed"),
        (dict(classify_steps="every"), "classify_steps='every'"),
        (dict(warmup=-1), "warmup=-1"),
        (dict(env_kwargs={"split": "t10k-train", "size": object()}), r"env_kwargs\['size'\]=<object"),
    ],
)
def test_bad_training_options_are_named(config, changes, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{**config.__dict__, **changes}).check()


def test_learning_rate_warms_up_linearly_then_follows_its_schedule(config, tmp_path):
    config.steps, config.lr, config.lr_final, config.warmup = 5, 1e-3, 1e-4, 2
    trainer = Trainer(config, tmp_path / "run")
    rates = []
    for _ in range(5):
        trainer.train_step()
        rates.append(trainer.optimizer.param_groups[0]["lr"])
    cosine = [1e-4 + 0.5 * 9e-4 * (1 + np.cos(np.pi * u / 4)) for u in range(5)]
    np.testing.assert_allclose(rates, [cosine[0] / 2, cosine[1], *cosine[2:]], rtol=1e-12)


def test_paths_in_world_options_are_saved_as_strings(config, mnist_dir, tmp_path):
    config.env_kwargs = {**config.env_kwargs, "data_dir": mnist_dir}  # a Path, as library users write it
    trainer = Trainer(config, tmp_path / "run")
    trainer.save()
    assert Trainer.resume(tmp_path / "run").config.env_kwargs["data_dir"] == str(mnist_dir)


@pytest.mark.parametrize("signal", ["brightness", "stripes"])
def test_reinforce_moves_glimpses_to_where_the_answer_is(signal):
    """The class is visible only in the 4 left columns of a 16x16 image; the first glimpse (centre) sees nothing.
    Only a policy that learns to look left can beat 50 %: the learned one must, the fixed-centre one cannot.
    Both encodings must work (brightness: a network that normalises glimpses away would be blind to it)."""
    from activevision.agents.ram import RAM
    from activevision.agents.reinforce import hybrid_loss
    from activevision.agents.rollout import rollout
    from activevision.data import ArrayDataset
    from activevision.envs.vector import GlimpseVectorEnv

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 512)
    images = np.zeros((512, 16, 16), np.uint8)
    if signal == "brightness":
        images[:, :, 0:4] = np.where(labels == 1, 255, 60)[:, None, None]
    else:  # same mean brightness, different pattern
        images[:, :, 0:4] = 128
        images[labels == 1, ::2, 0:4], images[labels == 1, 1::2, 0:4] = 255, 0
    accuracy = {}
    for policy in ("learned", "center"):
        torch.manual_seed(0)
        envs = GlimpseVectorEnv(ArrayDataset(images, labels), 64, patch=4, scales=1, n_glimpses=2)
        agent = RAM(envs.single_observation_space, 2, hidden=64, glimpse_hidden=32)
        optimizer = torch.optim.Adam(agent.parameters(), lr=3e-3)
        generator = torch.Generator().manual_seed(1)
        for update in range(300):
            obs, _ = envs.reset(seed=update)
            episode = rollout(agent, envs, obs, policy=policy, std=0.2, generator=generator)
            loss, _ = hybrid_loss(episode)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        obs, _ = envs.reset(seed=999)
        episode = rollout(agent, envs, obs, policy=policy, deterministic=True)
        accuracy[policy] = episode.reward.mean().item()
    assert accuracy["learned"] > 0.9 and accuracy["center"] < 0.65  # measured: 1.0 and 0.52


def test_compiled_ram_trains_as_the_eager_one(config, tmp_path):
    """compile=True (torch.compile of the agent's step and the world's glimpse) changes speed, not what is learnt
    (within float32 rounding: the compiled kernels sum in their own order)."""
    eager = Trainer(config, tmp_path / "eager")
    compiled = Trainer(TrainConfig(**{**config.__dict__, "compile": True}), tmp_path / "compiled")
    for _ in range(3):
        a, b = eager.train_step(), compiled.train_step()
        assert a["accuracy"] == b["accuracy"]
    for key, value in eager.agent.state_dict().items():
        torch.testing.assert_close(value, compiled.agent.state_dict()[key], rtol=1e-4, atol=1e-5, msg=key)
