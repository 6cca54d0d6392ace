"""GlimpseEnv and the registered ids: the real Gymnasium and SB3 checkers, episode and reward rules,
seeding, rendering, and clear errors for bad input that leave the env usable."""

from __future__ import annotations

import dataclasses
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import activevision
from activevision.data import ArrayDataset
from activevision.envs import GlimpseEnv, ResetNeeded, rules
from activevision.render import glimpse_patches

IDS = list(activevision.ENV_IDS)
TABLE = {  # id: (image shape, patch, scales, glimpses, default grid)
    "GlimpseSVHN-v0": ((32, 32, 3), 12, 2, 6, 3),
    "GlimpseHouseNumbers-v0": ((32, 32, 3), 12, 2, 6, 3),
    "GlimpseMNIST-v0": ((28, 28, 1), 8, 1, 6, 4),
    "GlimpseTranslatedMNIST-v0": ((60, 60, 1), 12, 3, 8, 5),
    "GlimpseClutteredMNIST-v0": ((60, 60, 1), 12, 3, 8, 5),
    "GlimpseClutteredMNIST100-v0": ((100, 100, 1), 12, 4, 8, 9),
    "GlimpseLargeImage-v0": ((160, 160, 3), 12, 6, 8, 14),  # canvas 160 in the tests (1024 by default)
}


@pytest.mark.parametrize("mode", ["continuous", "discrete"])
@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_checker_passes_without_warnings(env_id, mode, world_kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        context = {} if env_id == "GlimpseLargeImage-v0" else {"context_size": 8}  # large worlds refuse it
        env = gym.make(env_id, action_mode=mode, render_mode="rgb_array", **context, **world_kwargs(env_id))
        check_env(env.unwrapped)
        plain = gym.make(env_id, action_mode=mode, **world_kwargs(env_id))
        check_env(plain.unwrapped, skip_render_check=True)
        chosen = gym.make(env_id, action_mode=mode, render_mode="rgb_array", start="choose", **world_kwargs(env_id))
        check_env(chosen.unwrapped)


@pytest.mark.parametrize("mode", ["continuous", "discrete"])
def test_start_choose_lets_the_first_action_place_the_first_glimpse(mode, world_kwargs):
    """start="choose": the reset shows a blank glimpse at loc (0, 0), t 0; the first action takes glimpse 1 where
    it says; the continuous episode lasts T + 1 steps (T glimpses, then the answer)."""
    env = gym.make("GlimpseMNIST-v0", action_mode=mode, start="choose", **world_kwargs("GlimpseMNIST-v0"))
    centre = gym.make("GlimpseMNIST-v0", action_mode=mode, **world_kwargs("GlimpseMNIST-v0"))
    obs, _ = env.reset(seed=0, options={"index": 3})
    assert not obs["glimpse"].any() and not obs["loc"].any() and obs["t"][0] == 0.0
    first, _ = centre.reset(seed=0, options={"index": 3})
    if mode == "continuous":
        action = np.zeros(env.action_space.shape, dtype=np.float32)  # centre
        obs, *_ = env.step(action)
        np.testing.assert_array_equal(obs["glimpse"], first["glimpse"])  # the centre start's first glimpse
        steps, done = 1, False
        while not done:
            obs, reward, done, _, info = env.step(action)
            steps += 1
        assert steps == env.unwrapped.n_glimpses + 1 and info["glimpses"] == env.unwrapped.n_glimpses
    else:
        obs, *_ = env.step(0)  # cell 0: the top-left one
        assert obs["t"][0] == 1 / env.unwrapped.n_glimpses
        np.testing.assert_allclose(obs["loc"], rules.grid_centres(env.unwrapped.grid)[0], atol=1e-6)


@pytest.mark.parametrize("mode", ["continuous", "discrete"])
@pytest.mark.parametrize("env_id", IDS)
def test_sb3_checker_passes(env_id, mode, world_kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_check_env(gym.make(env_id, action_mode=mode, **world_kwargs(env_id)))
    # The only remark allowed: SB3 suggests flattening the (scales, C, p, p) glimpse, which our spec fixes
    # and SB3's MultiInputPolicy flattens by itself.
    others = [str(w.message) for w in caught if "unconventional shape" not in str(w.message)]
    assert others == []


@pytest.mark.parametrize("env_id", IDS)
def test_registered_defaults(env_id, world_kwargs):
    shape, patch, scales, glimpses, grid = TABLE[env_id]
    env = gym.make(env_id, **world_kwargs(env_id)).unwrapped
    assert (env.height, env.width, env.channels) == shape
    assert env.observation_space["glimpse"].shape == (scales, shape[2], patch, patch)
    assert env.n_glimpses == glimpses and env.grid == grid
    assert env.action_space.shape == (12,)
    assert gym.make(env_id, action_mode="discrete", **world_kwargs(env_id)).action_space.n == grid * grid + 10


def test_namespaced_id_and_overrides(world_kwargs):
    env = gym.make("activevision:GlimpseSVHN-v0", patch=8, scales=3, n_glimpses=4, **world_kwargs("GlimpseSVHN-v0"))
    assert env.observation_space["glimpse"].shape == (3, 3, 8, 8) and env.unwrapped.n_glimpses == 4


# ---------------------------------------------------------------- episode rules on a world with known answers
def small_world(**kwargs) -> GlimpseEnv:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 16, 16), dtype=np.uint8)
    return GlimpseEnv(ArrayDataset(images, np.arange(20) % 5), patch=4, scales=2, **kwargs)


def scores_for(label: int, num_classes: int = 5, loc=(0.3, -0.2)) -> np.ndarray:
    action = np.zeros(2 + num_classes, np.float32)
    action[:2] = loc
    action[2 + label] = 1.0
    return action


@pytest.mark.parametrize("reward_mode", ["final", "dense"])
def test_continuous_episode(reward_mode):
    env = small_world(n_glimpses=4, reward_mode=reward_mode)
    obs, info = env.reset(seed=1, options={"index": 7})
    label = 7 % 5
    assert "label" not in info and obs["t"][0] == pytest.approx(0.25) and obs["loc"].tolist() == [0, 0]
    rewards, answers = [], [label, (label + 1) % 5, label, label]
    for step, answer in enumerate(answers, start=1):
        obs, reward, terminated, truncated, info = env.step(scores_for(answer))
        rewards.append(reward)
        assert truncated is False and terminated is (step == 4)
        assert ("label" in info) is (step == 4)
    assert obs["t"][0] == 1.0
    assert info["label"] == label and info["correct"] is True and info["glimpses"] == 4
    expected = [0, 0, 0, 1.0] if reward_mode == "final" else [0.25, 0, 0.25, 0.25]
    assert rewards == pytest.approx(expected)
    with pytest.raises(ResetNeeded):
        env.step(scores_for(label))


def test_continuous_location_is_clipped_and_taken():
    env = small_world(n_glimpses=3)
    env.reset(seed=0, options={"index": 2})
    obs, *_ = env.step(scores_for(0, loc=(5.0, -7.0)))
    assert obs["loc"].tolist() == [1.0, -1.0]
    expected = env.source.sensor.glimpse(env.source.sensor.prepare(env.dataset.get(2)[0]), (1.0, -1.0))
    np.testing.assert_array_equal(obs["glimpse"], expected)


def test_discrete_episode_rules():
    env = small_world(n_glimpses=3, action_mode="discrete", glimpse_cost=0.01)
    assert env.grid == 4 and env.action_space.n == 16 + 5
    obs, _ = env.reset(seed=0, options={"index": 3})
    obs, reward, terminated, _, info = env.step(5)  # cell row 1, column 1
    assert obs["loc"].tolist() == [-0.25, -0.25] and reward == pytest.approx(-0.01) and not terminated
    obs, reward, terminated, _, info = env.step(np.int64(16 + 3))  # right answer
    assert terminated and reward == pytest.approx(1.0) and info["correct"] and info["glimpses"] == 2
    # Budget spent without an answer: terminated with reward 0.
    env.reset(seed=0, options={"index": 3})
    assert env.step(0)[1:3] == (pytest.approx(-0.01), False)
    assert env.step(np.array(1))[1:3] == (pytest.approx(-0.01), False)
    obs, reward, terminated, truncated, info = env.step(2)
    assert (reward, terminated, truncated) == (0.0, True, False)
    assert info["correct"] is False and info["prediction"] == -1 and info["glimpses"] == 3 and obs["t"][0] == 1.0
    # A wrong answer.
    env.reset(seed=0, options={"index": 3})
    assert env.step(16 + 4)[1:3] == (0.0, True)


def test_grid_centres_row_major():
    np.testing.assert_allclose(rules.grid_centres(2), [[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.5]])
    # Per cell, numpy and torch alike, bit-equal (no table: a 5,462-cell-wide grid has 30 million cells).
    cells = np.array([0, 7, 5462 * 5462 - 1])
    centres = rules.cell_centres(cells, 5462)
    np.testing.assert_array_equal(centres, rules.cell_centres(torch.as_tensor(cells), 5462).numpy())
    np.testing.assert_allclose(centres[[0, 2]], [[-1 + 1 / 5462] * 2, [1 - 1 / 5462] * 2], atol=1e-12)
    assert rules.default_grid(28, 28, 8) == 4 and rules.default_grid(32, 32, 12) == 3
    assert rules.default_grid(60, 60, 12) == 5


def test_pixels_seen_by_hand_and_against_the_union_rule(world_kwargs):
    env = gym.make("GlimpseMNIST-v0", **world_kwargs("GlimpseMNIST-v0")).unwrapped
    env.reset(seed=0)
    for _ in range(6):
        *_, info = env.step(scores_for(0, num_classes=10, loc=(0.0, 0.0)))
    assert info["pixels_seen"] == pytest.approx(64 / 784)  # one 8x8 patch, seen 6 times
    rng = np.random.default_rng(0)
    for episode in range(20):
        env.reset(seed=episode)
        for _ in range(6):
            *_, info = env.step(rng.uniform(-1.3, 1.3, 12).astype(np.float32))
        boxes = env.world.geometry.boxes(np.array(env._locs), 28, 28)[:, 0]
        union = rules.covered_fraction(boxes, np.array(len(boxes)), 28, 28)
        assert info["pixels_seen"] == pytest.approx(float(union), abs=1e-12)


def test_covered_fraction_numpy_and_torch_agree():
    rng = np.random.default_rng(0)
    starts = rng.integers(-10, 40, (64, 6, 2))
    boxes = np.concatenate([starts, starts + 12], axis=-1)
    counts = rng.integers(1, 7, 64)
    a = rules.covered_fraction(boxes, counts, 32, 32)
    b = rules.covered_fraction(torch.from_numpy(boxes), torch.from_numpy(counts), 32, 32).numpy()
    masks = np.zeros((64, 32, 32), bool)
    for i in range(64):
        for x0, y0, x1, y1 in boxes[i, : counts[i]]:
            masks[i, max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = True
    np.testing.assert_allclose(a, masks.mean(axis=(1, 2)), atol=1e-12)
    np.testing.assert_allclose(b, a, atol=1e-12)


# ---------------------------------------------------------------- seeding, context, rendering
@pytest.mark.parametrize("start", ["center", "random"])
def test_same_seed_same_episodes(start, world_kwargs):
    def rollout(seed):
        env = gym.make("GlimpseHouseNumbers-v0", start=start, **world_kwargs("GlimpseHouseNumbers-v0"))
        env.action_space.seed(seed)
        out, obs = [], env.reset(seed=seed)[0]
        for _ in range(20):
            obs, reward, terminated, _, info = env.step(env.action_space.sample())
            out.append((obs["glimpse"].copy(), obs["loc"].copy(), reward))
            if terminated:
                out.append(info["label"])
                obs = env.reset()[0]
                out.append(obs["glimpse"].copy())
        return out

    first, again, other = rollout(3), rollout(3), rollout(4)
    for a, b in zip(first, again):
        assert all(np.array_equal(x, y) for x, y in zip(a, b)) if isinstance(a, tuple) else np.array_equal(a, b)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other) if isinstance(a, tuple))


def test_context_is_the_area_averaged_image():
    env = small_world(context_size=4)
    obs, _ = env.reset(seed=0, options={"index": 0})
    image = env.dataset.get(0)[0].astype(np.float64) / 255.0
    expected = image.reshape(4, 4, 4, 4).mean(axis=(1, 3))
    np.testing.assert_allclose(obs["context"][0], expected, atol=1e-6)


def test_render_shows_glimpse_squares_and_path():
    env = small_world(render_mode="rgb_array", n_glimpses=4)
    env.reset(seed=0)
    first = env.render()
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3 and min(first.shape[:2]) >= 128
    obs, *_ = env.step(scores_for(0, loc=(0.8, 0.8)))
    second = env.render()
    assert second.shape == first.shape and not np.array_equal(first, second)
    patches = glimpse_patches(obs["glimpse"], size=40)  # the 2 scales side by side, with a 2-pixel gap
    assert patches.shape == (40, 2 * 40 + 2, 3) and patches.dtype == np.uint8
    plain = small_world(n_glimpses=4)
    plain.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert plain.render() is None


# ---------------------------------------------------------------- bad input: clear errors, env stays usable
@pytest.mark.parametrize(
    "action,match",
    [
        (np.zeros(6, np.float32), r"shape \(6,\)"),
        (np.zeros(7, np.int64), "dtype int64"),
        (np.array([0, 0, 1, np.nan, 0, 0, 0], np.float32), "finite"),
        (np.array([np.inf, 0, 1, 0, 0, 0, 0], np.float32), "finite"),
        ("left", "dtype <U4"),
    ],
)
def test_bad_continuous_actions(action, match):
    env = small_world(n_glimpses=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)
    obs, reward, terminated, *_ = env.step(scores_for(1))  # still usable, nothing was counted
    assert obs["t"][0] == pytest.approx(2 / 3) and not terminated


@pytest.mark.parametrize(
    "action,match",
    [(21, r"action 21 .*\[0, 21\)"), (-1, "action -1"), (2.0, "2.0"), (np.array([1, 2]), r"array\(\[1, 2\]\)")],
)
def test_bad_discrete_actions(action, match):
    env = small_world(n_glimpses=3, action_mode="discrete")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)
    assert env.step(0)[2] is False


def test_step_before_reset_is_a_value_error(world_kwargs):
    env = gym.make("GlimpseMNIST-v0", **world_kwargs("GlimpseMNIST-v0"))
    with pytest.raises(ValueError, match="reset"):
        env.step(env.action_space.sample())
    env.reset(seed=0)
    env.step(env.action_space.sample())


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(colour=True), r"unknown option\(s\) \['colour'\]"),
        (dict(action_mode="grid"), "action_mode='grid'"),
        (dict(reward_mode="sparse"), "reward_mode='sparse'"),
        (dict(start="corner"), "start='corner'"),
        (dict(n_glimpses=0), "n_glimpses=0"),
        (dict(patch=40), "smaller than the finest patch"),
        (dict(render_mode="human"), "render_mode='human'"),
        (dict(glimpse_cost=-1), "glimpse_cost"),
        (dict(action_mode="discrete", reward_mode="dense"), "reward_mode='dense' is not allowed with"),
        (dict(split="valid"), "split='valid'"),
    ],
)
def test_bad_options_are_value_errors(kwargs, match, world_kwargs):
    with pytest.raises(ValueError, match=match):
        gym.make("GlimpseMNIST-v0", **{**world_kwargs("GlimpseMNIST-v0"), **kwargs})


def test_image_smaller_than_patch_and_bad_index():
    with pytest.raises(ValueError, match="6x6 are smaller than the finest patch"):
        GlimpseEnv(ArrayDataset(np.zeros((2, 6, 6), np.uint8), [0, 1]), patch=8)
    with pytest.raises(ValueError, match="dataset=list"):
        GlimpseEnv([1, 2, 3])
    env = small_world()
    with pytest.raises(ValueError, match=r"options\['index'\]=99"):
        env.reset(options={"index": 99})
    env.reset(options={"index": 19})


def test_own_float_images_make_a_world():
    rng = np.random.default_rng(0)
    env = GlimpseEnv(
        ArrayDataset(rng.random((10, 20, 24)), rng.integers(0, 3, 10)), patch=6, scales=2, action_mode="discrete"
    )
    obs, _ = env.reset(seed=0)
    assert obs["glimpse"].shape == (2, 1, 6, 6) and env.action_space.n == 4 * 4 + 3
    check_env(env, skip_render_check=True)


def test_translate_moves_the_image_with_zero_fill():
    from activevision.sensor import translate

    image = np.arange(1, 13, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(translate(image, 1, -1), [[0, 5, 6, 7], [0, 9, 10, 11], [0, 0, 0, 0]])
    np.testing.assert_array_equal(translate(image, 0, 0), image)
    assert not translate(image, 4, 0).any() and translate(image, -2, 2)[2, :2].tolist() == [3, 4]


@pytest.mark.parametrize("env_id", ["GlimpseMNIST-v0", "GlimpseTranslatedMNIST-v0"])
def test_shift_shows_the_moved_image(env_id, world_kwargs):
    """A shifted episode equals an unshifted world over the moved images: glimpses, coverage, render."""
    from activevision.envs.presets import make_dataset
    from activevision.sensor import translate

    kwargs = world_kwargs(env_id)
    env = gym.make(env_id, shift=3, render_mode="rgb_array", **kwargs).unwrapped
    dataset = make_dataset(env_id, **{k: v for k, v in kwargs.items()})
    rng = np.random.default_rng(0)
    for index, shift in [(0, (3, -2)), (5, (-3, 3)), (9, (0, 1))]:
        image, label = dataset.get(index)
        moved = GlimpseEnv(
            ArrayDataset(translate(image, *shift)[None], [label], 10),
            patch=env.world.geometry.patch,
            scales=env.world.geometry.scales,
            n_glimpses=env.n_glimpses,
            render_mode="rgb_array",
        )
        obs, _ = env.reset(options={"index": index, "shift": shift})
        expected, _ = moved.reset(options={"index": 0})
        np.testing.assert_allclose(obs["glimpse"], expected["glimpse"], atol=1e-6)
        for _ in range(env.n_glimpses):
            action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            obs, _, done, _, info = env.step(action)
            expected, _, _, _, expected_info = moved.step(action)
            np.testing.assert_allclose(obs["glimpse"], expected["glimpse"], atol=1e-6)
        assert done and info["pixels_seen"] == expected_info["pixels_seen"]
        np.testing.assert_array_equal(env.render(), moved.render())


def test_shift_draws_are_seeded_and_bounded(world_kwargs):
    env = gym.make("GlimpseMNIST-v0", shift=2, **world_kwargs("GlimpseMNIST-v0")).unwrapped
    env.reset(seed=3)
    first = [env._draw_shift() for _ in range(50)]
    env.reset(seed=3)
    assert [env._draw_shift() for _ in range(50)] == first
    assert {v for pair in first for v in pair} == {-2, -1, 0, 1, 2}
    plain = gym.make("GlimpseMNIST-v0", **world_kwargs("GlimpseMNIST-v0"))
    a, _ = plain.reset(seed=0)
    b, _ = gym.make("GlimpseMNIST-v0", shift=0, **world_kwargs("GlimpseMNIST-v0")).reset(seed=0)
    np.testing.assert_array_equal(a["glimpse"], b["glimpse"])  # shift=0 draws nothing: old seeds still hold


@pytest.mark.parametrize(
    "kwargs,options,match",
    [
        (dict(shift=-1), None, "shift=-1"),
        (dict(shift=28), None, r"shift=28 is not allowed for 28x28 images: use 0 <= shift < 28"),
        (dict(context_size=29), None, r"context_size=29 is not allowed for 28x28 images: use 1 <= context_size <= 28"),
        (dict(shift=2), {"shift": (3, 0)}, r"options\['shift'\]=\(3, 0\) is not allowed: .*\[-2, 2\]"),
        (dict(shift=2), {"shift": (0.5, 0)}, r"options\['shift'\]"),
        (dict(), {"shift": (1, 0)}, r"\[-0, 0\]"),
    ],
)
def test_bad_shift_is_a_value_error(kwargs, options, match, world_kwargs):
    with pytest.raises(ValueError, match=match):
        env = gym.make("GlimpseMNIST-v0", **{**world_kwargs("GlimpseMNIST-v0"), **kwargs})
        env.reset(options=options)


def test_one_catalog_builds_registration_and_both_entry_points(world_kwargs):
    from activevision.catalog import CATALOG
    from activevision.envs import GlimpseVectorEnv, presets

    assert set(activevision.ENV_IDS) == set(CATALOG) and all(env_id in gym.registry for env_id in CATALOG)
    for env_id, entry in CATALOG.items():
        single = gym.make(env_id, **world_kwargs(env_id)).unwrapped
        batched = gym.make_vec(env_id, num_envs=2, **world_kwargs(env_id))
        assert isinstance(batched, GlimpseVectorEnv)
        assert dataclasses.replace(single.world, stride=batched.world.stride) == batched.world  # the same world
        assert single.world.n_glimpses == entry.env_options["n_glimpses"]
        old = getattr(presets, entry.name)(**world_kwargs(env_id))  # the factories of earlier versions still work
        assert type(old) is type(single)
        assert getattr(presets, entry.name + "_vec")(3, **world_kwargs(env_id)).num_envs == 3
