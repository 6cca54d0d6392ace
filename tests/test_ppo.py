"""PPO for glimpse policies: GAE and ratio clipping against hand computations, replay equal to collection, tiny runs
that learn, checkpoints and resume, the CLI."""

from __future__ import annotations

import math

import gymnasium as gym
import pytest
import torch

import activevision  # noqa: F401  (registers the ids)
from activevision.agents.gam import GAM
from activevision.agents.ppo import GaussianPolicy, clipped_surrogate, gae, replay
from activevision.agents.ram import RAM
from activevision.agents.rollout import location_decisions, rollout
from activevision.agents.trainer import TrainConfig, Trainer, evaluate, load_run
from activevision.cli import main
from tests.conftest import assert_learns_above_chance, assert_resumes_exactly, cli_train_args


@pytest.fixture()
def config(mnist_dir, device) -> TrainConfig:
    return TrainConfig(
        agent="ppo-ram",
        env="GlimpseMNIST-v0",
        env_kwargs=dict(data_dir=str(mnist_dir), split="t10k-train", download=False),
        eval_split="t10k-test",
        steps=4,
        batch=16,
        eval_every=1000,
        checkpoint_every=1000,
        eval_batch=500,
        device=device,
        hidden=32,
        glimpse_hidden=16,
        core="gru",
    )


def test_gae_matches_a_hand_computation():
    """Three decisions, reward 1 after the last; gamma 0.9, lambda 0.8, worked out term by term."""
    values = torch.tensor([[0.2, 0.5], [0.4, 0.1], [0.6, 0.3]])
    rewards = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    gamma, lam = 0.9, 0.8
    d2 = rewards[2] - values[2]  # the episode ends: no value after the last decision
    d1 = rewards[1] + gamma * values[2] - values[1]
    d0 = rewards[0] + gamma * values[1] - values[0]
    by_hand = torch.stack([d0 + gamma * lam * d1 + (gamma * lam) ** 2 * d2, d1 + gamma * lam * d2, d2])
    torch.testing.assert_close(gae(rewards, values, gamma, lam), by_hand)
    # lambda 1, gamma 1: the advantage is the return (the final reward) minus the value
    torch.testing.assert_close(gae(rewards, values, 1.0, 1.0), rewards[2][None] - values)


def test_ratio_clipping_matches_a_hand_computation():
    """Ratios 0.5, 1.0, 1.5 with positive and negative advantages, clip 0.2: PPO keeps the pessimistic term."""
    ratios = torch.tensor([0.5, 1.0, 1.5, 0.5, 1.0, 1.5])
    advantages = torch.tensor([2.0, 2.0, 2.0, -2.0, -2.0, -2.0])
    old = torch.zeros(6)
    loss, fraction = clipped_surrogate(ratios.log(), old, advantages, 0.2)
    # A > 0: min(r A, clip(r) A) = 0.5*2, 1*2, 1.2*2; A < 0: min(-r 2, -clip(r) 2) = -0.8*2, -2, -1.5*2
    by_hand = -(1.0 + 2.0 + 2.4 - 1.6 - 2.0 - 3.0) / 6
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)
    assert fraction.item() == pytest.approx(4 / 6)
    # the gradient is zero where the clipped term is the smaller one
    log_ratio = ratios.log().requires_grad_()
    clipped_surrogate(log_ratio, old, advantages, 0.2)[0].backward()
    assert log_ratio.grad[2] == 0 and log_ratio.grad[3] == 0 and log_ratio.grad[0] != 0 and log_ratio.grad[5] != 0


@pytest.mark.parametrize("core,start", [("ram", "center"), ("ram", "choose"), ("gam", "center"), ("gam", "choose")])
def test_replay_recomputes_what_the_collection_saw(core, start, device):
    """Replaying the recorded glimpses with unchanged parameters gives the collection's log-densities and values
    (the recurrent state is recomputed correctly), for both cores and both starts."""
    envs = gym.make_vec("GlimpseHouseNumbers-v0", num_envs=6, device=device, size=60, context_size=8, start=start)
    space = envs.single_observation_space
    torch.manual_seed(0)
    inner = RAM(space, 10, hidden=32, glimpse_hidden=16, core="gru") if core == "ram" else GAM(space, 10, 32, 16)
    if core == "gam":
        torch.nn.init.normal_(inner.locator[2].weight)  # means away from the centre
    agent = GaussianPolicy(inner, 0.2).to(device)
    obs, _ = envs.reset(seed=3)
    with torch.no_grad():
        generator = torch.Generator(device=device).manual_seed(0)
        data = rollout(agent, envs, obs, std=float(agent.std()), generator=generator, record_glimpses=True)
    decisions = envs.world.n_glimpses - 1 + (start == "choose")
    assert location_decisions(envs.world) == decisions
    assert data.log_probs.shape == (decisions, 6) and data.glimpses.shape[:2] == (envs.world.n_glimpses, 6)
    ids = torch.tensor([4, 0, 2], device=device)
    with torch.no_grad():
        means, values, logits = replay(
            agent, {k: v[ids] for k, v in data.first_obs.items()}, data.glimpses[:, ids], data.locs[:, ids], decisions
        )
    log_probs = torch.distributions.Normal(means, agent.std()).log_prob(data.actions[:, ids]).sum(-1)
    torch.testing.assert_close(log_probs, data.log_probs[:, ids], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(values, data.baselines[:, ids])
    assert logits.shape == (envs.world.n_glimpses, 3, 10)


def test_ppo_ram_learns_above_chance(config, tmp_path):
    """40 updates of 64 episodes: measured classify loss 2.3 -> 1.1, accuracy 0.6-0.7 (chance 0.1)."""
    config.steps, config.batch, config.hidden, config.glimpse_hidden = 40, 64, 128, 64
    assert_learns_above_chance(config, tmp_path / "run")


def test_ppo_gam_learns_above_chance(config, tmp_path):
    """PPO with the GAM core, 50 updates of 32 episodes, 2 epochs x 2 minibatches: measured (AMD EPYC VM, 1 and 2
    threads) classify loss down 0.80-0.82, accuracy 0.50-0.52; with 30 updates the loss fell only 0.38-0.39 on this
    VM (0.4 needed; it had passed on earlier VMs), so the margin is kept wide."""
    config.agent, config.steps, config.batch, config.lr, config.ppo_epochs, config.minibatches = (
        "ppo-gam",
        50,
        32,
        2e-3,
        2,
        2,
    )
    config.agent_settings = {}  # the fixture's are RAM's (core)
    config.hidden, config.glimpse_hidden = 32, 32
    assert_learns_above_chance(config, tmp_path / "run")


def test_ppo_learns_its_std_and_logs_ppo_terms(config, tmp_path):
    """The location std is a parameter (entropy bonus pushes it up); the logged terms are PPO's."""
    config.entropy, config.lr = 0.5, 1e-2
    trainer = Trainer(config, tmp_path / "run")
    assert isinstance(trainer.agent, GaussianPolicy) and trainer.agent.std().item() == pytest.approx(0.17)
    metrics = [trainer.train_step() for _ in range(3)]
    assert metrics[-1]["std"] > 0.17 and {"policy", "value", "approx_kl", "clip_fraction"} <= set(metrics[-1])
    assert all(0.0 <= p["clip_fraction"] <= 1.0 for p in metrics)


def test_ppo_checkpoint_and_resume_equals_uninterrupted(config, tmp_path):
    assert isinstance(assert_resumes_exactly(config, tmp_path, stop=2, total=4).agent, GaussianPolicy)


def test_cli_train_eval_render_ppo(mnist_dir, tmp_path, capsys):
    out = tmp_path / "ppo"
    main(
        cli_train_args(
            mnist_dir,
            "ppo-ram",
            out,
            "--steps",
            "2",
            "--batch",
            "8",
            "--hidden",
            "16",
            "--ppo-epochs",
            "2",
            "--minibatches",
            "2",
            "--clip-range",
            "0.1",
            "--gae-lambda",
            "0.9",
        )
    )
    assert "ppo-ram on GlimpseMNIST-v0 (learned locations), 2 updates" in capsys.readouterr().out
    config, agent, device = load_run(out, "cpu")
    assert (config.ppo_epochs, config.minibatches, config.clip_range, config.gae_lambda) == (2, 2, 0.1, 0.9)
    assert math.isclose(evaluate(agent, config, device, split="t10k-test", mc=2, limit=50)["images"], 50)
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


@pytest.mark.parametrize(
    "changes,match",
    [
        (dict(std_final=0.05), "std_final=0.05 is not allowed for ppo-ram"),
        (dict(policy="random"), "policy='random' is not allowed for ppo-ram"),
        (dict(minibatches=32), "minibatches=32 is not allowed with batch=16"),
        (dict(clip_range=0.0), "clip_range=0.0"),
        (dict(gae_lambda=1.5), "gae_lambda=1.5"),
        (dict(ppo_epochs=0), "ppo_epochs=0"),
        (dict(compile=True), "compile=True is not allowed for ppo-ram"),
    ],
)
def test_bad_ppo_options_are_named(config, changes, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{**config.__dict__, **changes}).check()
