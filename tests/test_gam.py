"""GAM: shapes, causal masking, cached decoding equal to full recomputation, a tiny run that learns, the trainer,
checkpoints and CLI shared with RAM."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import activevision  # noqa: F401  (registers the ids)
from activevision.agents.gam import GAM
from activevision.agents.trainer import TrainConfig, Trainer, load_run, make_agent
from activevision.cli import main
from tests.conftest import assert_learns_above_chance, assert_resumes_exactly

STEPS = 5


@pytest.fixture()
def config(mnist_dir, device) -> TrainConfig:
    return TrainConfig(
        agent="gam",
        env="GlimpseMNIST-v0",
        env_kwargs=dict(data_dir=str(mnist_dir), split="t10k-train", download=False),
        eval_split="t10k-test",
        steps=6,
        batch=16,
        eval_every=1000,
        checkpoint_every=1000,
        eval_batch=500,
        device=device,
        hidden=32,
        glimpse_hidden=16,
    )


def episode_inputs(
    layers: int = 1, seed: int = 0, encoder_skip: bool = False, device: str = "cpu"
) -> tuple[GAM, dict, torch.Tensor, torch.Tensor]:
    """A GAM over house-number worlds (2 scales, 3 channels) and random glimpses and locations of 4 episodes."""
    envs = gym.make_vec("GlimpseHouseNumbers-v0", num_envs=4, device=device, context_size=12, size=50)
    obs, _ = envs.reset(seed=seed)
    torch.manual_seed(seed)
    model = GAM(
        envs.single_observation_space,
        10,
        hidden=32,
        glimpse_hidden=16,
        layers=layers,
        heads=4,
        encoder_skip=encoder_skip,
    ).eval()
    torch.nn.init.normal_(model.locator[2].weight)  # a trained locator: the fresh one puts every mean at the centre
    if encoder_skip:
        torch.nn.init.normal_(model.encoder_skip.weight, std=0.1)  # likewise
    glimpses = torch.rand(4, STEPS, *envs.single_observation_space["glimpse"].shape)
    locs = torch.rand(4, STEPS, 2) * 2.0 - 1.0
    return model.to(device), obs, glimpses.to(device), locs.to(device)


def incremental(model: GAM, obs: dict, glimpses: torch.Tensor, locs: torch.Tensor):
    state = model.initial_state(obs)
    logits, means, baselines = [], [state.first_mean], []
    for t in range(glimpses.shape[1]):
        state, scores, mean, baseline = model(glimpses[:, t], locs[:, t], state)
        logits.append(scores)
        means.append(mean)
        baselines.append(baseline)
    return torch.stack(logits, 1), torch.stack(means, 1), torch.stack(baselines, 1)


@pytest.mark.parametrize("layers,encoder_skip", [(1, False), (2, False), (1, True)])
def test_cached_decoding_equals_full_recomputation(layers, encoder_skip, device):
    """One new token per layer per step (cached keys and values) gives what the whole sequence with causal masks
    gives: class scores (B, T, K), location means (B, T + 1, 2) in [-1, 1] and baselines (B, T)."""
    model, obs, glimpses, locs = episode_inputs(layers, encoder_skip=encoder_skip, device=device)
    with torch.no_grad():
        full = model.sequence(glimpses, locs, obs["context"])
        steps = incremental(model, obs, glimpses, locs)
    assert [tuple(x.shape) for x in full] == [(4, STEPS, 10), (4, STEPS + 1, 2), (4, STEPS)]
    assert bool((full[1].abs() <= 1).all())
    for a, b in zip(full, steps):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    state = model.initial_state(obs)
    for t in range(3):
        state, *_ = model(glimpses[:, t], locs[:, t], state)
    assert state.steps == 3 and state.encoder[0][0].shape[2] == 3  # keys of 3 glimpses kept, per layer
    assert state.decoder[0][0].shape[2] == 4 and state.memory[0][0].shape[2] == 4  # start token / context too


def test_a_later_glimpse_cannot_change_an_earlier_steps_output():
    """Causal masking: a different glimpse at step k leaves the scores of steps < k and the location means up to
    step k (chosen before it was seen) exactly as they were, and changes the later ones."""
    model, obs, glimpses, locs = episode_inputs(layers=2)
    k = 2
    other = glimpses.clone()
    other[:, k] = torch.rand_like(other[:, k])
    with torch.no_grad():
        before = model.sequence(glimpses, locs, obs["context"])
        after = model.sequence(other, locs, obs["context"])
    assert torch.equal(before[0][:, :k], after[0][:, :k])
    assert torch.equal(before[1][:, : k + 1], after[1][:, : k + 1])
    assert not torch.allclose(before[0][:, k:], after[0][:, k:])
    assert not torch.allclose(before[1][:, k + 1 :], after[1][:, k + 1 :])


def test_encoder_skip_feeds_the_newest_encoder_token_to_the_location_head_only():
    """With the skip the means after a glimpse move with the encoder token (the first, before any glimpse, does
    not), and the location loss reaches the skip's map but, as the decoder's memory, not the encoder or the glimpse
    network: the encoder token enters detached."""
    model, obs, glimpses, locs = episode_inputs(encoder_skip=True)
    means = model.sequence(glimpses, locs, obs["context"])[1]
    means.sum().backward()
    assert model.encoder_skip.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in [*model.glimpse_net.parameters(), *model.encoder.parameters()])
    with torch.no_grad():
        model.encoder_skip.weight.mul_(2.0)
        after = model.sequence(glimpses, locs, obs["context"])[1]
    assert torch.equal(after[:, 0], means[:, 0].detach()) and not torch.allclose(after[:, 1:], means[:, 1:])
    space = gym.make("GlimpseHouseNumbers-v0", size=10, context_size=12).observation_space
    assert GAM(space, 10).encoder_skip is None  # the paper's head by default


def test_context_steers_locations_but_not_the_answer():
    """The context enters the decoder's memory only: the class scores come from the glimpses alone."""
    model, obs, glimpses, locs = episode_inputs()
    with torch.no_grad():
        a = model.sequence(glimpses, locs, obs["context"])
        b = model.sequence(glimpses, locs, torch.rand_like(obs["context"]))
    assert torch.equal(a[0], b[0]) and not torch.allclose(a[1], b[1])


def test_gam_learns_above_chance(config, tmp_path):
    """150 updates of 64 episodes (~25 s): measured loss 2.30 -> 0.94 (means of 15 updates), accuracy 0.74."""
    config.steps, config.batch, config.lr, config.hidden, config.glimpse_hidden = 150, 64, 1e-3, 64, 64
    assert_learns_above_chance(config, tmp_path / "run")


def test_gam_defaults_checkpoint_and_resume_equals_uninterrupted(config, tmp_path):
    """Unset settings take GAM's paper defaults, the world gets a context; a resumed run continues bit for bit."""
    defaults = TrainConfig(agent="gam").check()
    assert (defaults.hidden, defaults.lr, defaults.combine, defaults.what) == (64, 1e-4, "mul", "conv")
    assert defaults.env_kwargs["context_size"] == 12 and TrainConfig().check().hidden == 256
    assert isinstance(assert_resumes_exactly(config, tmp_path, stop=2, total=4).agent, GAM)


def test_cli_train_eval_render_gam(mnist_dir, svhn_dir, tmp_path, capsys):
    out = tmp_path / "gam"
    kwargs = f'{{"data_dir": "{mnist_dir}", "split": "t10k-train", "download": false, "context_size": 14}}'
    main(
        [
            "train",
            "gam",
            "--env",
            "GlimpseMNIST-v0",
            "--env-kwargs",
            kwargs,
            "--eval-split",
            "t10k-test",
            "--steps",
            "2",
            "--batch",
            "8",
            "--hidden",
            "16",
            "--layers",
            "2",
            "--heads",
            "2",
            "--encoder-skip",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert "gam on GlimpseMNIST-v0" in capsys.readouterr().out
    config, agent, _ = load_run(out, "cpu")
    assert config.agent == "gam" and len(agent.encoder) == 2 and config.env_kwargs["context_size"] == 14
    assert config.encoder_skip and agent.encoder_skip is not None
    main(["eval", str(out), "--split", "t10k-test", "--device", "cpu"])
    assert "accuracy over 2000 images" in capsys.readouterr().out
    main(
        [
            "render",
            str(out),
            "--split",
            "t10k-test",
            "--examples",
            "2",
            "--out",
            str(tmp_path / "g.png"),
            "--device",
            "cpu",
        ]
    )
    assert (tmp_path / "g.png").is_file()
    svhn = f'{{"data_dir": "{svhn_dir}", "download": false, "verify": false}}'  # real .mat layout, own files
    main(
        [
            "train",
            "gam",
            "--env",
            "GlimpseSVHN-v0",
            "--env-kwargs",
            svhn,
            "--steps",
            "2",
            "--batch",
            "8",
            "--eval-batch",
            "30",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "svhn"),
            "--quiet",
        ]
    )
    assert "gam on GlimpseSVHN-v0 (learned locations), 2 updates: test accuracy" in capsys.readouterr().out


@pytest.mark.parametrize(
    "changes,match",
    [
        (dict(compile=True), "compile=True is not allowed for gam"),
        (dict(hidden=30, heads=4), "hidden=30 is not allowed with heads=4"),
        (dict(layers=0), "layers=0"),
        (dict(agent="ram", encoder_skip=True), "encoder_skip=True is not allowed for ram"),
        (dict(encoder_skip="yes"), "encoder_skip='yes' is not allowed"),
        (dict(agent="dram"), "agent='dram'"),
    ],
)
def test_bad_gam_options_are_named(config, changes, match):
    with pytest.raises(ValueError, match=match):
        candidate = TrainConfig(**{**config.__dict__, **changes}).check()
        make_agent(candidate, gym.make("GlimpseMNIST-v0", context_size=8, **config.env_kwargs).observation_space, 10)


def test_gam_needs_a_context():
    space = gym.make("GlimpseHouseNumbers-v0", size=10).observation_space
    with pytest.raises(ValueError, match="GAM needs the world's context observation"):
        GAM(space, 10)


def test_start_choose_lets_the_context_place_the_first_glimpse(config, tmp_path):
    """In a world whose start is "choose" the first glimpse goes where the start token (context only) says, a
    different place per image; the episode's REINFORCE terms then cover all T locations; training runs."""
    from activevision.agents.rollout import rollout

    config.env_kwargs = {**config.env_kwargs, "start": "choose"}
    trainer = Trainer(config, tmp_path / "run")
    assert np.isfinite(trainer.train_step()["loss"])
    envs = trainer.envs
    obs, _ = envs.reset(seed=1)
    with torch.no_grad():
        first = trainer.agent.first(trainer.agent.initial_state(obs))[0]
        episode = rollout(trainer.agent, envs, obs, deterministic=True)
    assert len(episode.locs) == envs.world.n_glimpses == episode.log_probs.shape[0] == episode.step_logits.shape[0]
    torch.testing.assert_close(episode.locs[0], first)
    assert float(first.std(0).sum()) > 0  # each image's context gives its own first location
