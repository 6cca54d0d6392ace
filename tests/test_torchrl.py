"""The TorchRL adapter: TorchRL's own spec checker on every world in both action modes, envs reset one by one through
the ``_reset`` mask, and TorchRL's PPO (its loss module, GAE and collector) learning on MNIST."""

from __future__ import annotations

import pytest
import torch
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.collectors import Collector
from torchrl.envs.utils import check_env_specs
from torchrl.modules import ProbabilisticActor, ValueOperator
from torchrl.objectives import ClipPPOLoss
from torchrl.objectives.value import GAE

import activevision
from activevision.torchrl import GlimpseTorchRLEnv


@pytest.mark.parametrize("action_mode", ["continuous", "discrete"])
@pytest.mark.parametrize("env_id", sorted(activevision.ENV_IDS))
def test_torchrls_checker_passes_on_every_world(env_id, action_mode, world_kwargs, device):
    env = GlimpseTorchRLEnv(env_id, 3, device=device, action_mode=action_mode, **world_kwargs(env_id))
    check_env_specs(env, seed=0)
    td = env.rollout(4, break_when_any_done=False)
    assert td.batch_size == (3, 4) and td.device.type == env.device.type == device
    assert td["glimpse"].device.type == device  # never copied to the host
    assert td["glimpse"].dtype == torch.float32 and td["next", "reward"].shape == (3, 4, 1)


def test_finished_envs_are_reset_alone(world_kwargs, device):
    env = GlimpseTorchRLEnv("GlimpseMNIST-v0", 5, device=device, n_glimpses=3, **world_kwargs("GlimpseMNIST-v0"))
    env.set_seed(0)
    td = env.rollout(9, break_when_any_done=False)
    done = td["next", "done"].squeeze(-1)
    assert done[:, 2::3].all() and not done[:, 0::3].any()  # every 3rd step ends an episode, in every env
    # After an end, the env starts anew: its first glimpse at t = 1/3, taken at the centre.
    assert torch.allclose(td["t"][:, 3::3].cpu(), torch.full((5, 2, 1), 1 / 3))
    assert torch.equal(td["loc"][:, 3::3].cpu(), torch.zeros(5, 2, 2))
    with pytest.raises(ValueError, match="device='gpu' is not allowed"):
        GlimpseTorchRLEnv("GlimpseMNIST-v0", 2, device="gpu", **world_kwargs("GlimpseMNIST-v0"))


class Net(nn.Module):
    """A small MLP of the newest glimpse, its location and the time (no memory)."""

    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(inputs + 3, 128), nn.Tanh(), nn.Linear(128, outputs))

    def forward(self, glimpse: torch.Tensor, loc: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([glimpse.flatten(-4), loc, t], dim=-1))


def test_torchrls_ppo_learns_to_answer_on_mnist(mnist_dir, device):
    torch.manual_seed(0)
    env = GlimpseTorchRLEnv(
        "GlimpseMNIST-v0",
        64,
        device=device,
        action_mode="discrete",
        data_dir=mnist_dir,
        split="t10k-train",
        download=False,
    )
    env.set_seed(0)
    actions, size = env.action_spec.space.n, 64  # one 8 x 8 glimpse
    actor = ProbabilisticActor(
        TensorDictModule(Net(size, actions), ["glimpse", "loc", "t"], ["logits"]),
        in_keys=["logits"],
        distribution_class=torch.distributions.Categorical,
        spec=env.action_spec,
        return_log_prob=True,
    )
    value = ValueOperator(Net(size, 1), in_keys=["glimpse", "loc", "t"])
    actor, value = actor.to(device), value.to(device)
    loss = ClipPPOLoss(actor, value, entropy_coeff=0.01)
    advantage = GAE(gamma=1.0, lmbda=0.95, value_network=value)
    optimizer = torch.optim.Adam(loss.parameters(), lr=1e-3)
    collector = Collector(
        env, actor, frames_per_batch=1024, total_frames=1024 * 30, auto_register_policy_transforms=False
    )
    accuracies = []
    for data in collector:
        with torch.no_grad():
            advantage(data)
        flat = data.reshape(-1)
        for _ in range(4):
            for index in torch.randperm(len(flat)).split(256):
                losses = loss(flat[index])
                optimizer.zero_grad()
                (losses["loss_objective"] + losses["loss_critic"] + losses["loss_entropy"]).backward()
                optimizer.step()
        ended = data["next", "done"].squeeze(-1)
        accuracies.append((data["next", "reward"].squeeze(-1)[ended] > 0).float().mean().item())
    collector.shutdown()
    # Right answers among ended episodes: about chance (0.1) at first, far above it after 30 batches.
    assert accuracies[0] < 0.2 and min(accuracies[-5:]) > 0.35, accuracies
