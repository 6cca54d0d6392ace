"""Training in several processes with the real torchrun and gloo on the CPU: the ranks stay in sync, see different
episodes, only rank 0 writes, and a run resumes (with the same number of processes) exactly as if uninterrupted."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from activevision.agents import trainer as trainer_module
from activevision.agents.reinforce import hybrid_loss
from activevision.agents.rollout import rollout
from activevision.agents.trainer import TrainConfig, Trainer
from tests.conftest import assert_same_tensors


def _train(
    tmp_path: Path, mnist_dir: Path, *args: str, agent: str = "ram", device: str = "cpu"
) -> subprocess.CompletedProcess:
    world = json.dumps({"data_dir": str(mnist_dir), "split": "t10k-train", "download": False})
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    command = [
        *launcher,
        "-m",
        "activevision",
        "train",
        agent,
        "--env",
        "GlimpseMNIST-v0",
        "--env-kwargs",
        world,
        "--eval-split",
        "t10k-test",
        "--batch",
        "32",
        "--hidden",
        "32",
        "--glimpse-hidden",
        "16",
        "--device",
        device,
        "--quiet",
        "--eval-every",
        "1000",
        "--checkpoint-every",
        "2",
        "--eval-batch",
        "500",
        # The plain defaults: a constant rate (a recipe's cosine decay depends on --steps, which the resume raises).
        "--recipe",
        "none",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **({"CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else {})}
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_two_processes_stay_in_sync_and_resume_exactly(tmp_path, mnist_dir):
    first = _train(tmp_path, mnist_dir, "--steps", "3", "--out", "split")
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("3 updates: t10k-test accuracy") == 1  # rank 0 alone reports
    state = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)
    assert state["update"] == 3 and state["world_size"] == 2
    assert len(state["digests"]) == 2 and state["digests"][0] == state["digests"][1]  # identical on both ranks
    assert not torch.equal(state["generators"][0], state["generators"][1])  # each rank its own stream
    # The same 3 updates by hand: two shards whose gradients are averaged give the processes' parameters.
    config = TrainConfig(**json.loads((tmp_path / "split" / "config.json").read_text()))
    expected = reference_two_ranks(config, tmp_path / "reference", updates=3)
    for name, value in expected.items():
        torch.testing.assert_close(state["model"][name], value, rtol=1e-5, atol=1e-6, msg=name)

    resumed = _train(tmp_path, mnist_dir, "--resume", "split", "--steps", "6")
    whole = _train(tmp_path, mnist_dir, "--steps", "6", "--out", "whole")
    assert resumed.returncode == 0 and whole.returncode == 0, resumed.stderr[-2000:] + whole.stderr[-2000:]
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)
    assert a["update"] == b["update"] == 6 and a["digests"] == b["digests"]
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    single = subprocess.run(
        [sys.executable, "-m", "activevision", "train", "ram", "--resume", "split", "--steps", "8", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode != 0 and "trained with 2 process(es)" in single.stderr


@pytest.mark.parametrize("agent,marker", [("gam", "context_net"), ("ppo-ram", "log_std"), ("topdown", "target.where")])
def test_other_agents_train_in_two_processes(tmp_path, mnist_dir, agent, marker):
    """GAM, PPO (one all-reduce per minibatch step) and the top-down agent: the ranks end with equal parameters."""
    run = _train(tmp_path, mnist_dir, "--steps", "2", "--out", agent, agent=agent)
    assert run.returncode == 0, run.stderr[-3000:]
    state = torch.load(tmp_path / agent / "checkpoint.pt", weights_only=False)
    assert state["update"] == 2 and state["world_size"] == 2 and state["digests"][0] == state["digests"][1]
    assert any(name.startswith(marker) for name in state["model"]), sorted(state["model"])[:5]


def reference_two_ranks(config: TrainConfig, out: Path, updates: int) -> dict[str, torch.Tensor]:
    """By hand, in one process: two copies of the agent, each rolling out its rank's shard (batch / 2 episodes
    from that rank's seeds), their gradients averaged, clipped, one Adam step each; returns the parameters."""
    shard = dataclasses.replace(config, batch=config.batch // 2)
    trainers = [Trainer(shard, out / f"rank{rank}") for rank in range(2)]
    for rank, trainer in enumerate(trainers):
        trainer.generator.manual_seed(config.seed + 1 + rank * trainer_module.RANK_SEED_STRIDE)
    labels = []
    for update in range(updates):
        grads = []
        for rank, trainer in enumerate(trainers):
            seed = config.seed * 1_000_003 + update + rank * trainer_module.RANK_SEED_STRIDE
            obs, _ = trainer.envs.reset(seed=seed)
            labels.append(trainer.envs.label.clone())
            episode = rollout(
                trainer.agent, trainer.envs, obs, policy=config.policy, std=trainer.std(), generator=trainer.generator
            )
            trainer.optimizer.zero_grad(set_to_none=True)
            trainer.update = update  # the learning-rate schedule of this update
            for group in trainer.optimizer.param_groups:
                group["lr"] = trainer.lr()
            hybrid_loss(episode, config.entropy, config.classify_steps)[0].backward()
            grads.append([p.grad for p in trainer.agent.parameters()])
        for trainer in trainers:
            for p, a, b in zip(trainer.agent.parameters(), *grads):
                p.grad = (a + b) / 2
            torch.nn.utils.clip_grad_norm_(trainer.agent.parameters(), config.clip)
            trainer.optimizer.step()
    assert not torch.equal(labels[0], labels[1])  # the two shards hold different episodes
    return trainers[0].agent.state_dict()


def test_a_batch_the_processes_cannot_share_is_refused(monkeypatch, mnist_dir, tmp_path):
    monkeypatch.setattr(trainer_module, "init_distributed", lambda device: (0, 3))
    config = TrainConfig(
        env="GlimpseMNIST-v0",
        env_kwargs=dict(data_dir=str(mnist_dir), split="t10k-train", download=False),
        batch=32,
        device="cpu",
    )
    with pytest.raises(ValueError, match="batch=32 is not allowed with 3 processes"):
        Trainer(config, tmp_path / "run")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL across processes needs two CUDA devices")
def test_two_gpus_with_nccl_stay_in_sync_and_resume(tmp_path, mnist_dir, device):
    if device != "cuda":
        pytest.skip("runs under --device cuda (make test-gpu)")
    first = _train(tmp_path, mnist_dir, "--steps", "3", "--out", "split", device="cuda")
    assert first.returncode == 0, first.stderr[-3000:]
    state = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)
    assert state["world_size"] == 2 and state["digests"][0] == state["digests"][1]
    resumed = _train(tmp_path, mnist_dir, "--resume", "split", "--steps", "6", device="cuda")
    whole = _train(tmp_path, mnist_dir, "--steps", "6", "--out", "whole", device="cuda")
    assert resumed.returncode == 0 and whole.returncode == 0, resumed.stderr[-2000:] + whole.stderr[-2000:]
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)
    for name, value in a["model"].items():
        assert_same_tensors(value, b["model"][name], name)
