"""The top-down Q-learning agent: n-step targets against a hand computation, targets from the target network only,
glimpses inside the chosen regions, exploration schedule, a tiny run that learns, checkpoints and resume."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

import activevision  # noqa: F401  (registers the ids)
from activevision.agents.qlearning import n_step_targets, q_learning_loss
from activevision.agents.rollout import location_decisions, rollout
from activevision.agents.topdown import TopDown
from activevision.agents.trainer import TrainConfig, Trainer, load_run
from activevision.cli import main
from tests.conftest import assert_learns_above_chance, assert_resumes_exactly, cli_train_args


@pytest.fixture()
def config(mnist_dir, device) -> TrainConfig:
    return TrainConfig(
        agent="topdown",
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
        target_every=2,
    )


def test_n_step_targets_match_a_hand_computation():
    """Three rounds, the reward after the last; bootstrap[j] stands for max_a Q_target(s_{j+1}, a)."""
    rewards = torch.tensor([[0.0, 0.5], [0.0, 0.0], [1.0, 0.0]])
    bootstrap = torch.tensor([[0.3, 0.7], [0.6, 0.2], [9.0, 9.0]])  # last row never used: the episode ends
    gamma = 0.9
    one = n_step_targets(rewards, bootstrap, gamma, 1)
    torch.testing.assert_close(
        one, torch.stack([rewards[0] + gamma * bootstrap[0], rewards[1] + gamma * bootstrap[1], rewards[2]])
    )
    two = n_step_targets(rewards, bootstrap, gamma, 2)
    torch.testing.assert_close(
        two,
        torch.stack(
            [rewards[0] + gamma * rewards[1] + gamma**2 * bootstrap[1], rewards[1] + gamma * rewards[2], rewards[2]]
        ),
    )
    monte_carlo = n_step_targets(rewards, bootstrap, gamma, 5)
    torch.testing.assert_close(monte_carlo[0], rewards[0] + gamma * rewards[1] + gamma**2 * rewards[2])


def episode(rounds: int = 2, epsilon: float = 0.0, seed: int = 0):
    envs = gym.make_vec("GlimpseHouseNumbers-v0", num_envs=8, device="cpu", size=40, context_size=16, n_glimpses=7)
    torch.manual_seed(seed)
    agent = TopDown(envs.single_observation_space, 10, hidden=32, glimpse_hidden=16, grid=3, rounds=rounds)
    obs, _ = envs.reset(seed=seed)
    placer = agent.placer(obs, location_decisions(envs.world), epsilon, torch.Generator().manual_seed(seed))
    result = rollout(agent, envs, obs, std=0.5, generator=torch.Generator().manual_seed(1), place=placer)
    return agent, placer, result, result.locs.transpose(0, 1)


def test_q_targets_come_from_the_target_network_and_the_final_reward():
    """Round 0's target is max_a Q_target(s_1, a) (gamma 1, one step), the last round's the reward; changing the
    online network changes neither."""
    agent, placer, result, _ = episode(rounds=2)
    with torch.no_grad():
        agent.target.where.add_(0.25)  # target and online networks now differ
        expected = agent.target(agent.target.context(placer.context), placer.states[1], 1).max(1).values
    loss, _ = q_learning_loss(agent, placer, result.reward)
    by_hand = torch.nn.functional.smooth_l1_loss(torch.stack(placer.q_values), torch.stack([expected, result.reward]))
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)
    agent.sync_target()
    for key, value in agent.q.state_dict().items():
        assert torch.equal(value, agent.target.state_dict()[key]), key
    assert not any(p.requires_grad for p in agent.target.parameters())


@pytest.mark.parametrize("epsilon", [0.0, 1.0])
def test_glimpses_stay_inside_the_chosen_regions(epsilon):
    """The world receives absolute locations: every glimpse of a round lies in the region chosen for it (grid 3:
    regions 2/3 wide in [-1, 1] coordinates); greedy choices are the Q-network's argmax."""
    agent, placer, _, locs = episode(rounds=2, epsilon=epsilon, seed=4)
    decisions = locs.shape[1] - 1
    for decision in range(decisions):
        action = placer.actions[placer.round_of(decision)]
        column, row = action % 3, action // 3
        loc = locs[:, decision + 1]  # decision d places glimpse d + 1 (the first is at the centre)
        assert bool(((loc[:, 0] >= -1 + 2 * column / 3 - 1e-6) & (loc[:, 0] <= -1 + 2 * (column + 1) / 3 + 1e-6)).all())
        assert bool(((loc[:, 1] >= -1 + 2 * row / 3 - 1e-6) & (loc[:, 1] <= -1 + 2 * (row + 1) / 3 + 1e-6)).all())
    assert [placer.round_of(d) for d in range(decisions)] == [0, 0, 0, 1, 1, 1]
    if epsilon == 0.0:
        with torch.no_grad():
            greedy = agent.q(placer.features, placer.states[0], 0).argmax(1)
        assert torch.equal(greedy, placer.actions[0])
    else:  # all random: not all the same region
        assert len(set(torch.cat(placer.actions).tolist())) > 1


def test_random_locations_cover_the_whole_image_and_skip_the_regions(config, tmp_path):
    """The random-location baseline of the top-down agent is random locations, as for every agent: uniform over the
    image (not inside a Q-chosen region), and no Q-learning step (no region was chosen)."""
    envs = gym.make_vec("GlimpseHouseNumbers-v0", num_envs=256, device="cpu", size=300, context_size=16, n_glimpses=3)
    torch.manual_seed(0)
    agent = TopDown(envs.single_observation_space, 10, hidden=32, glimpse_hidden=16, grid=3, rounds=1)
    obs, _ = envs.reset(seed=0)
    placer = agent.placer(obs, location_decisions(envs.world), 0.0, torch.Generator().manual_seed(0))
    result = rollout(agent, envs, obs, policy="random", generator=torch.Generator().manual_seed(1), place=placer)
    second = result.locs[1]  # decision 0, over the batch: one region would keep it inside a third of each axis
    assert not placer.actions
    assert float(second[:, 0].min()) < -0.5 and float(second[:, 0].max()) > 0.5
    assert float(second[:, 1].min()) < -0.5 and float(second[:, 1].max()) > 0.5
    config.policy = "random"
    metrics = Trainer(config, tmp_path / "run").train_step()
    assert "q_loss" not in metrics


def test_exploration_anneals_and_targets_sync(config, tmp_path):
    config.steps, config.epsilon, config.epsilon_final, config.epsilon_fraction = 10, 0.8, 0.1, 0.5
    trainer = Trainer(config, tmp_path / "run")
    assert trainer.algorithm.epsilon(0, 10) == pytest.approx(0.8)
    assert trainer.algorithm.epsilon(5, 10) == pytest.approx(0.1)
    metrics = trainer.train_step()
    assert {"q_loss", "q_mean", "epsilon"} <= set(metrics)
    trainer.train_step()  # update 2: target_every=2 copies the online network
    for key, value in trainer.agent.q.state_dict().items():
        assert torch.equal(value, trainer.agent.target.state_dict()[key]), key


def test_topdown_learns_above_chance(config, tmp_path):
    """150 updates of 64 episodes: measured classify loss 2.3 -> ~1.5, accuracy ~0.6 (chance 0.1)."""
    config.steps, config.batch, config.hidden, config.glimpse_hidden, config.target_every = 150, 64, 128, 64, 50
    assert_learns_above_chance(config, tmp_path / "run")


def test_topdown_checkpoint_and_resume_equals_uninterrupted(config, tmp_path):
    """The target network and the exploration stream are part of the checkpoint: a resumed run is bit-equal."""
    assert isinstance(assert_resumes_exactly(config, tmp_path, stop=3, total=5).agent, TopDown)


def test_cli_train_eval_topdown(mnist_dir, tmp_path, capsys):
    out = tmp_path / "td"
    main(
        cli_train_args(
            mnist_dir,
            "topdown",
            out,
            "--steps",
            "2",
            "--batch",
            "8",
            "--hidden",
            "16",
            "--regions",
            "2",
            "--rounds",
            "3",
            "--n-step",
            "2",
        )
    )
    assert "topdown on GlimpseMNIST-v0 (learned locations), 2 updates" in capsys.readouterr().out
    config, agent, _ = load_run(out, "cpu")
    assert (agent.grid, agent.rounds, config.env_kwargs["context_size"]) == (2, 3, 24)
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


def test_topdown_needs_a_context_and_valid_options(config):
    space = gym.make("GlimpseHouseNumbers-v0", size=10).observation_space
    with pytest.raises(ValueError, match="the top-down agent needs the world's context"):
        TopDown(space, 10)
    for changes, match in (
        (dict(regions=0), "regions=0"),
        (dict(epsilon=1.5), "epsilon=1.5"),
        (dict(n_step=0), "n_step=0"),
    ):
        with pytest.raises(ValueError, match=match):
            TrainConfig(**{**config.__dict__, **changes}).check()


def test_one_glimpse_leaves_nothing_to_choose(config, tmp_path):
    """With one glimpse (at the centre) there is no location decision: no region is chosen, no Q term is trained."""
    config.env_kwargs = {**config.env_kwargs, "n_glimpses": 1}
    trainer = Trainer(config, tmp_path / "run")
    metrics = trainer.train_step()
    assert "q_loss" not in metrics and metrics["classify"] > 0
