"""What the envs accept: refused resets change nothing, unknown options are refused, actions never pull the env into
autograd, both envs read an action by one rule, and every bad input is a ValueError naming the value."""

from __future__ import annotations

import re
import tracemalloc

import gymnasium as gym
import numpy as np
import pytest
import torch

from activevision.data import ArrayDataset, SyntheticHouseNumbers
from activevision.envs import GlimpseEnv
from activevision.envs.vector import GlimpseVectorEnv


def small_dataset(n: int = 12, side: int = 16, classes: int = 4) -> ArrayDataset:
    rng = np.random.default_rng(0)
    return ArrayDataset(rng.integers(0, 256, (n, side, side, 1), dtype=np.uint8), np.arange(n) % classes, classes)


WORLD = dict(patch=4, scales=2, n_glimpses=3, shift=2)


def test_a_refused_reset_leaves_the_episode_and_the_generator_as_they_were():
    env = GlimpseEnv(small_dataset(), **WORLD)
    env.reset(seed=0, options={"index": 0})
    label, glimpse, rng_state = env._label, env._glimpse.copy(), env.np_random.bit_generator.state
    for seed, options in [
        (None, {"index": 1, "shift": (5, 0)}),
        (7, {"index": -1}),
        (7, {"indx": 3}),
        (7, {"shift": (0.5, 0)}),
        (-3, None),
        ("7", None),
        (7, [("index", 1)]),
    ]:
        with pytest.raises(ValueError, match="not allowed"):
            env.reset(seed=seed, options=options)
        assert env._label == label and env.np_random.bit_generator.state == rng_state
        np.testing.assert_array_equal(env._glimpse, glimpse)
    obs, reward, terminated, _, info = env.step(np.zeros(6, np.float32))  # the episode goes on
    assert not terminated and env._steps == 1


def test_a_refused_batched_reset_leaves_every_env_and_the_generator_as_they_were():
    envs = GlimpseVectorEnv(small_dataset(), 4, **WORLD)
    envs.reset(seed=0)
    index, generator = envs.index.clone(), envs._generator.get_state()
    for seed, options in [
        (9, {"index": [0, 1, 2, 99]}),
        (9, {"shift": [[3, 0]] * 4}),
        (9, {"indx": [0] * 4}),
        (9, {"index": [0.0] * 4}),
        (-1, None),
        (1.5, None),
    ]:
        with pytest.raises(ValueError, match="not allowed"):
            envs.reset(seed=seed, options=options)
        assert torch.equal(envs.index, index) and torch.equal(envs._generator.get_state(), generator)


@pytest.mark.parametrize(
    "make", [lambda: GlimpseEnv(small_dataset(), **WORLD), lambda: GlimpseVectorEnv(small_dataset(), 2, **WORLD)]
)
def test_unknown_reset_options_are_refused_with_the_allowed_keys(make):
    with pytest.raises(ValueError, match=r"\['indx'\] are not allowed: the allowed keys are \['index', 'shift'\]"):
        make().reset(options={"indx": 3})


def test_actions_that_require_grad_never_pull_the_env_into_autograd():
    envs = GlimpseVectorEnv(small_dataset(), 8, **WORLD)
    envs.reset(seed=0)
    weights = torch.zeros(8, 6, requires_grad=True)
    for _ in range(7):
        obs, reward, *_ = envs.step(weights * 2.0 + 0.1)
    tensors = [value for value in vars(envs).values() if isinstance(value, torch.Tensor)] + list(obs.values())
    assert not any(t.requires_grad or t.grad_fn is not None for t in tensors + [reward])
    single = GlimpseEnv(small_dataset(), **WORLD)
    single.reset(seed=0)
    single.step(weights[0] * 2.0)  # a torch action that requires grad: accepted, detached
    assert single._locs[-1] == (0.0, 0.0)


def _episode_answers(actions: np.ndarray | torch.Tensor) -> tuple[int, int]:
    """The answer of the single env and of a batch of one, to the same final action."""
    single, batch = (
        GlimpseEnv(small_dataset(), n_glimpses=1, patch=4),
        GlimpseVectorEnv(small_dataset(), 1, n_glimpses=1, patch=4),
    )
    single.reset(seed=0)
    batch.reset(seed=0)
    info_single = single.step(actions)[4]
    info_batch = batch.step(actions[None])[4]["final_info"]
    return info_single["prediction"], int(info_batch["prediction"][0])


@pytest.mark.parametrize(
    "scores", [[0.0, 1.0, 1.0 + 1e-12, 0.0], [1e39, 3e39, 2e39, 0.0], [-1e300, -1e299, 0.0, 1e-320]]
)
def test_float64_answers_are_read_at_full_precision_by_both_envs(scores):
    actions = np.array([0.0, 0.0, *scores])
    expected = int(np.argmax(scores))
    assert _episode_answers(actions) == (expected, expected)
    assert _episode_answers(torch.tensor(actions)) == (expected, expected)


def test_half_precision_torch_actions_are_read_the_same_by_both_envs():
    actions = torch.tensor([0.5, -0.5, 0.1, 0.3, 0.2, 0.0], dtype=torch.bfloat16)
    assert _episode_answers(actions) == (1, 1)


@pytest.mark.parametrize(
    "action",
    [
        [0.0, [1.0, 2.0], 0.0, 0.0, 0.0, 0.0],  # ragged
        torch.zeros(6).to_sparse(),
        torch.zeros(6, device="meta"),
        "abcdef",
        {"x": 0.0},
        np.zeros(6, dtype=complex),
        None,
    ],
)
def test_bad_continuous_actions_are_value_errors_naming_what_is_allowed(action):
    for env, batch in (
        (GlimpseEnv(small_dataset(), **WORLD), False),
        (GlimpseVectorEnv(small_dataset(), 1, **WORLD), True),
    ):
        env.reset(seed=0)
        with pytest.raises(ValueError, match="not allowed: use .*floats of shape"):
            env.step([action] if batch and isinstance(action, list) else action)


@pytest.mark.parametrize("action", [np.array([3]), np.array([[3]]), 3.0, np.float32(3), True, [3], "3"])
def test_discrete_actions_must_be_one_integer_as_the_space_says(action):
    env = GlimpseEnv(small_dataset(), action_mode="discrete", patch=4)
    env.reset(seed=0)
    if isinstance(action, (np.ndarray, float, np.floating)):
        assert not env.action_space.contains(action)
    with pytest.raises(ValueError, match="not allowed: use an integer in"):
        env.step(action)
    for good in (3, np.int64(3), np.array(3), torch.tensor(3)):
        assert env.action_space.contains(good) or isinstance(good, torch.Tensor)
        env.reset(seed=0)
        env.step(good)


@pytest.mark.parametrize(
    "options,match",
    [
        (dict(glimpse_cost=None), "glimpse_cost=None is not allowed"),
        (dict(glimpse_cost="abc"), "glimpse_cost='abc' is not allowed"),
        (dict(glimpse_cost=float("nan")), "glimpse_cost=nan is not allowed"),
        (dict(n_glimpses=10**12), r"n_glimpses=1000000000000 is not allowed: it must be an integer in \[1, 1,024\]"),
        (dict(scales=60), r"scales=60 is not allowed: it must be an integer in \[1, 31\]"),
        (dict(scales=28, patch=16), "scales=28 is not allowed with patch=16"),
    ],
)
def test_bad_world_options_are_value_errors_before_anything_is_allocated(options, match):
    with pytest.raises(ValueError, match=match):
        GlimpseEnv(small_dataset(), **{**WORLD, **options})
    with pytest.raises(ValueError, match=match):
        GlimpseVectorEnv(small_dataset(), 4, **{**WORLD, **options})


@pytest.mark.parametrize("data_seed", [None, "a", -1, 1.5, [1]])
def test_bad_house_number_seeds_are_value_errors(data_seed):
    with pytest.raises(ValueError, match=re.escape(f"data_seed={data_seed!r} is not allowed")):
        gym.make("GlimpseHouseNumbers-v0", size=64, data_seed=data_seed)
    with pytest.raises(ValueError, match="seed=1.5 is not allowed"):
        SyntheticHouseNumbers("train", 64, seed=1.5)


@pytest.mark.parametrize(
    "device", ["gpu", 5, "mps", "cuda:a", None] + ([] if torch.cuda.is_available() else ["cuda", "cuda:0"])
)
def test_devices_this_machine_lacks_are_value_errors(device):
    with pytest.raises(ValueError, match=re.escape(f"device={device!r} is not allowed")):
        gym.make_vec("GlimpseHouseNumbers-v0", num_envs=2, device=device, size=64)


def test_many_scales_keep_the_single_env_small():
    env = GlimpseEnv(small_dataset(side=28), patch=8, scales=11)
    tracemalloc.start()
    obs, _ = env.reset(seed=0, options={"index": 0})
    for _ in range(5):
        obs, *_ = env.step(np.array([0.9, -0.9, 0, 0, 0, 0], np.float32))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2**20, peak  # before: 2.8 GB of padded levels
    batch = GlimpseVectorEnv(small_dataset(side=28), 1, patch=8, scales=11)
    batch.reset(seed=0, options={"index": [0]})
    batch._look(torch.arange(1), torch.tensor([[0.9, -0.9]]))
    np.testing.assert_allclose(obs["glimpse"], batch.glimpse[0].numpy(), atol=1e-6)


def test_reset_envs_starts_only_the_envs_asked_and_checks_its_mask():
    envs = GlimpseVectorEnv(small_dataset(), 3, **WORLD)
    with pytest.raises(ValueError, match="before reset"):
        envs.reset_envs([True, False, True])
    envs.reset(seed=0)
    envs.step(np.full((3, 6), 0.5, np.float32))
    obs = envs.reset_envs(torch.tensor([True, False, True]))
    assert envs.steps.tolist() == [0, 1, 0] and obs["t"][:, 0].tolist() == pytest.approx([1 / 3, 2 / 3, 1 / 3])
    for mask in ([1, 0, 1], [True, False], "yes"):
        with pytest.raises(ValueError, match="not allowed: use 3 bools"):
            envs.reset_envs(mask)
