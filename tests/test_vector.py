"""The batched torch world: same meaning as a SyncVectorEnv of single envs, autoreset, seeding, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import activevision
from activevision.envs.vector import GlimpseVectorEnv
from tests.conftest import assert_same_tensors

B = 5


def as_numpy(value):
    return value.cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def assert_obs_equal(batched: dict, single: dict, rows=None) -> None:
    for key, value in single.items():
        ours = as_numpy(batched[key])
        theirs = np.asarray(value)
        if rows is not None:
            ours, theirs = ours[rows], theirs[rows]
        np.testing.assert_allclose(ours, theirs, atol=1e-5, err_msg=key)


def assert_info_equal(ours: dict, theirs: dict) -> None:
    """Same keys and masks; values equal where the mask is set."""
    assert sorted(k for k in ours if not k.startswith("_")) == sorted(k for k in theirs if not k.startswith("_"))
    for key, value in theirs.items():
        if key.startswith("_"):
            np.testing.assert_array_equal(as_numpy(ours[key]), value, err_msg=key)
            continue
        mask = theirs[f"_{key}"]
        if key == "final_obs":
            for env in np.flatnonzero(mask):
                assert_obs_equal({k: as_numpy(v)[env] for k, v in ours[key].items()}, value[env])
        elif isinstance(value, dict):
            assert_info_equal(ours[key], value)
        else:
            np.testing.assert_allclose(
                as_numpy(ours[key])[mask].astype(float), value[mask].astype(float), atol=1e-9, err_msg=key
            )


def random_actions(space_single, rng, steps):
    if isinstance(space_single, gym.spaces.Discrete):
        cells = space_single.n - 10
        # Mostly glimpses, sometimes answers, so episodes end at different steps.
        glimpse = rng.integers(0, cells, (steps, B))
        answer = rng.integers(cells, space_single.n, (steps, B))
        return np.where(rng.random((steps, B)) < 0.3, answer, glimpse)
    return rng.uniform(-1.3, 1.3, (steps, B, space_single.shape[0])).astype(np.float32)


@pytest.mark.parametrize("start", ["center", "choose"])
@pytest.mark.parametrize("autoreset", ["SameStep", "NextStep"])
@pytest.mark.parametrize("mode", ["continuous", "discrete"])
@pytest.mark.parametrize("env_id", ["GlimpseMNIST-v0", "GlimpseHouseNumbers-v0", "GlimpseTranslatedMNIST-v0"])
def test_batched_equals_sync_vector_of_single_envs(env_id, mode, autoreset, start, world_kwargs, device):
    options = dict(world_kwargs(env_id), action_mode=mode, order="sequential", start=start)
    if env_id != "GlimpseMNIST-v0":  # contexts of images in memory and of blank canvases read from their digit
        options["context_size"] = 8
    batched = gym.make_vec(env_id, num_envs=B, autoreset_mode=autoreset, device=device, **options)
    assert isinstance(batched, GlimpseVectorEnv) and batched.metadata["autoreset_mode"] == AutoresetMode(autoreset)
    sync = SyncVectorEnv(
        [lambda: gym.make(env_id, stride=B, **options) for _ in range(B)], autoreset_mode=AutoresetMode(autoreset)
    )
    sync.reset(seed=0)
    first = [sync.envs[j].reset(options={"index": j}) for j in range(B)]  # env j sweeps j, j + B, ...
    obs, info = batched.reset(seed=0)
    assert_obs_equal(obs, {k: np.stack([o[k] for o, _ in first]) for k in first[0][0]})
    np.testing.assert_array_equal(as_numpy(info["index"]), [i["index"] for _, i in first])

    ends = 0
    for actions in random_actions(sync.single_action_space, np.random.default_rng(1), 30):
        ours = batched.step(torch.from_numpy(actions))
        theirs = sync.step(actions)
        assert_obs_equal(ours[0], theirs[0])
        np.testing.assert_allclose(as_numpy(ours[1]), theirs[1], atol=1e-6)
        np.testing.assert_array_equal(as_numpy(ours[2]), theirs[2])
        np.testing.assert_array_equal(as_numpy(ours[3]), theirs[3])
        assert_info_equal(ours[4], theirs[4])
        ends += int(theirs[2].sum())
    assert ends >= 2 * B  # several episodes per env were compared


@pytest.mark.parametrize("env_id", ["GlimpseHouseNumbers-v0", "GlimpseTranslatedMNIST-v0"])
def test_context_of_shifted_images_equals_single_env(env_id, world_kwargs, device):
    """With shift and context_size, each env's context is its image at its shift, area-averaged: as the single env
    shows it for the same image and shift; a later autoreset makes the new episodes' contexts."""
    options = dict(world_kwargs(env_id), context_size=8, shift=3, n_glimpses=2)
    batched = gym.make_vec(env_id, num_envs=B, device=device, **options)
    single = gym.make(env_id, **options)
    shifts = np.array([[3, -2], [0, 0], [-3, 3], [1, -1]])[np.arange(B) % 4]
    obs, _ = batched.reset(options={"index": np.arange(B), "shift": shifts})
    for j in range(B):
        theirs, _ = single.reset(options={"index": j, "shift": tuple(shifts[j])})
        np.testing.assert_allclose(obs["context"][j].cpu().numpy(), theirs["context"], atol=1e-6)
    first = obs["context"].clone()
    actions = torch.zeros((B, *batched.single_action_space.shape))
    for _ in range(2):
        obs, *_, info = batched.step(actions)
    assert torch.equal(info["final_obs"]["context"], first)  # kept while the episode lasted
    for j in range(B):  # the new episodes: drawn shifts, the next images of each sweep
        shift = tuple(batched.unwrapped.shift[j].tolist())
        theirs, _ = single.reset(options={"index": int(info["index"][j]), "shift": shift})
        np.testing.assert_allclose(obs["context"][j].cpu().numpy(), theirs["context"], atol=1e-6)


def test_huge_blank_canvas_is_read_from_the_digit(mnist_dir):
    """A 4096 x 4096 translated world: canvases are never painted, glimpses equal those of painted canvases."""
    from activevision.data import MNIST, TranslatedDataset
    from activevision.sensor import NumpySensor

    world = TranslatedDataset(MNIST("t10k-test", data_dir=mnist_dir, download=False), canvas=4096, seed=0)
    envs = GlimpseVectorEnv(world, 3, patch=12, scales=3, n_glimpses=4, order="sequential")
    assert type(envs.source).__name__ == "CanvasSource" and envs.memory_bytes()["dataset"] < 50_000_000
    digits, offsets = world.layout()
    obs, _ = envs.reset(seed=0)
    # Look straight at each env's digit (its centre in canvas coordinates).
    centre = (torch.from_numpy(offsets[:3]).float() + 14.0) / 2048.0 - 1.0
    obs, *_ = envs.step(torch.cat([centre, torch.zeros(3, 10)], dim=1))
    sensor = NumpySensor(12, 3)
    for env in range(3):
        canvas = world.canvas_of(env)
        expected = sensor.glimpse(sensor.prepare(canvas), tuple(centre[env].double().tolist()))
        np.testing.assert_allclose(obs["glimpse"][env].numpy(), expected, atol=1e-5)
        assert expected[0].max() > 0.5  # the digit is really in view


def test_same_step_autoreset_returns_the_next_episode():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 16, 16), dtype=np.uint8)
    envs = GlimpseVectorEnv(activevision.data.ArrayDataset(images, np.arange(40) % 4), 3, patch=4, n_glimpses=2)
    envs.reset(seed=0)
    actions = torch.zeros((3, 6))
    envs.step(actions)
    obs, reward, terminated, truncated, info = envs.step(actions)
    assert terminated.all() and not truncated.any()
    assert torch.allclose(obs["t"], torch.full((3, 1), 0.5))  # first glimpse of the new episode
    assert torch.allclose(info["final_obs"]["t"], torch.ones(3, 1))
    assert info["_final_info"].all() and set(info["final_info"]) >= {"label", "correct", "pixels_seen", "_label"}


def test_next_step_autoreset_ignores_the_action_after_the_end():
    images = np.random.default_rng(0).integers(0, 256, (40, 16, 16), dtype=np.uint8)
    data = activevision.data.ArrayDataset(images, np.arange(40) % 4)
    envs = GlimpseVectorEnv(data, 2, patch=4, n_glimpses=3, action_mode="discrete", autoreset_mode="NextStep")
    envs.reset(seed=0)
    obs, reward, terminated, *_ = envs.step(torch.tensor([16, 0]))  # env 0 answers, env 1 looks
    assert terminated.tolist() == [True, False]
    obs, reward, terminated, _, info = envs.step(torch.tensor([17, 1]))  # env 0's action is ignored
    assert reward[0] == 0 and not terminated[0] and obs["t"][0, 0] == pytest.approx(1 / 3)
    assert info["_index"].tolist() == [True, False]


def test_seeded_and_deterministic_and_vectorised_draws(world_kwargs):
    def run(seed):
        envs = gym.make_vec("GlimpseHouseNumbers-v0", num_envs=16, size=4096, start="random")
        obs, info = envs.reset(seed=seed)
        rng = np.random.default_rng(0)
        out = [info["index"].clone(), obs["glimpse"].clone()]
        for _ in range(14):
            obs, reward, *_ = envs.step(torch.from_numpy(rng.uniform(-1, 1, (16, 12)).astype(np.float32)))
            out += [obs["glimpse"].clone(), reward.clone()]
        return out

    a, b, c = run(1), run(1), run(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])
    big = gym.make_vec("GlimpseMNIST-v0", num_envs=65_536, **world_kwargs("GlimpseMNIST-v0"))
    _, info = big.reset(seed=0)
    index = info["index"]
    assert index.shape == (65_536,) and int(index.min()) >= 0 and int(index.max()) < 2000
    assert len(torch.unique(index)) == 2000  # 65,536 draws cover every image


def test_returned_observations_are_never_modified_later(world_kwargs):
    envs = gym.make_vec("GlimpseMNIST-v0", num_envs=4, **world_kwargs("GlimpseMNIST-v0"))
    obs, _ = envs.reset(seed=0)
    kept = {k: v.clone() for k, v in obs.items()}
    for _ in range(8):
        envs.step(envs.action_space.sample())
    for key in kept:
        assert torch.equal(obs[key], kept[key]), key


def test_make_vec_spaces_and_render(world_kwargs):
    envs = gym.make_vec(
        "GlimpseTranslatedMNIST-v0", num_envs=6, render_mode="rgb_array", **world_kwargs("GlimpseTranslatedMNIST-v0")
    )
    assert envs.observation_space["glimpse"].shape == (6, 3, 1, 12, 12)
    assert envs.action_space.shape == (6, 12)
    envs.reset(seed=0)
    envs.step(envs.action_space.sample())
    frames = envs.render()
    assert len(frames) == 4 and all(f.dtype == np.uint8 and min(f.shape[:2]) >= 128 for f in frames)


@pytest.mark.parametrize(
    "actions,match",
    [
        (np.zeros((3, 12), np.float32), r"shape \(3, 12\)"),
        (np.zeros((4, 12), np.int64), "dtype torch.int64"),
        (np.full((4, 12), np.nan, np.float32), "env 0 .* finite"),
    ],
)
def test_bad_batched_actions(actions, match, world_kwargs):
    envs = gym.make_vec("GlimpseMNIST-v0", num_envs=4, **world_kwargs("GlimpseMNIST-v0"))
    with pytest.raises(ValueError, match="before reset"):
        envs.step(np.zeros((4, 12), np.float32))
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        envs.step(actions)
    obs, *_ = envs.step(np.zeros((4, 12), np.float32))  # still usable, nothing counted
    assert torch.allclose(obs["t"], torch.full((4, 1), 2 / 6))


def test_bad_batched_discrete_actions_and_options(world_kwargs):
    envs = gym.make_vec("GlimpseMNIST-v0", num_envs=3, action_mode="discrete", **world_kwargs("GlimpseMNIST-v0"))
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"action 26 of env 1 .*\[0, 26\)"):
        envs.step(np.array([0, 26, 1]))
    with pytest.raises(ValueError, match="dtype torch.float32"):
        envs.step(np.array([0.0, 1.0, 2.0], np.float32))
    with pytest.raises(ValueError, match=r"options\['index'\]"):
        envs.reset(options={"index": [0, 1, 5000]})
    with pytest.raises(ValueError, match="num_envs=0"):
        gym.make_vec("GlimpseMNIST-v0", num_envs=0, **world_kwargs("GlimpseMNIST-v0"))
    with pytest.raises(ValueError, match="autoreset_mode='Sometimes'"):
        gym.make_vec("GlimpseMNIST-v0", num_envs=2, autoreset_mode="Sometimes", **world_kwargs("GlimpseMNIST-v0"))
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['colour'\]"):
        gym.make_vec("GlimpseMNIST-v0", num_envs=2, colour=1, **world_kwargs("GlimpseMNIST-v0"))
    envs.step(np.array([0, 1, 2]))


def test_single_env_sequential_order(world_kwargs):
    env = gym.make("GlimpseMNIST-v0", order="sequential", stride=7, **world_kwargs("GlimpseMNIST-v0"))
    seen = [env.reset(options={"index": 3})[1]["index"]] + [env.reset()[1]["index"] for _ in range(3)]
    assert seen == [3, 10, 17, 24]
    with pytest.raises(ValueError, match="order='shuffled'"):
        gym.make("GlimpseMNIST-v0", order="shuffled", **world_kwargs("GlimpseMNIST-v0"))


def test_compiled_whole_batch_glimpse_equals_eager(world_kwargs, device):
    """compile=True (torch.compile of the whole-batch glimpse) changes speed only."""
    eager = gym.make_vec("GlimpseHouseNumbers-v0", num_envs=8, device=device, **world_kwargs("GlimpseHouseNumbers-v0"))
    compiled = gym.make_vec(
        "GlimpseHouseNumbers-v0", num_envs=8, compile=True, device=device, **world_kwargs("GlimpseHouseNumbers-v0")
    )
    a, _ = eager.reset(seed=0)
    b, _ = compiled.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(8):
        actions = torch.from_numpy(rng.uniform(-1, 1, (8, 12)).astype(np.float32))
        a, ra, *_ = eager.step(actions)
        b, rb, *_ = compiled.step(actions)
        assert_same_tensors(a["glimpse"], b["glimpse"])
        assert torch.equal(ra, rb)
    with pytest.raises(ValueError, match="compile='yes'"):
        gym.make_vec("GlimpseMNIST-v0", num_envs=2, compile="yes", **world_kwargs("GlimpseMNIST-v0"))


@pytest.mark.parametrize("env_id", ["GlimpseMNIST-v0", "GlimpseTranslatedMNIST-v0"])
def test_batched_shift_equals_single_env_shift(env_id, world_kwargs):
    """Pinned shifts: the batched env (reading through the sensor's offset) equals single envs (moving the image),
    glimpses, coverage and renders; drawn shifts are seeded and within bounds."""
    kwargs = dict(world_kwargs(env_id), shift=3)
    batched = gym.make_vec(env_id, num_envs=B, render_mode="rgb_array", **kwargs)
    singles = [gym.make(env_id, render_mode="rgb_array", **kwargs) for _ in range(B)]
    rng = np.random.default_rng(0)
    index, shift = rng.integers(0, 100, B), rng.integers(-3, 4, (B, 2))
    obs, _ = batched.reset(options={"index": index, "shift": shift})
    expected = [env.reset(options={"index": int(i), "shift": tuple(s)})[0] for env, i, s in zip(singles, index, shift)]
    assert_obs_equal(obs, {k: np.stack([o[k] for o in expected]) for k in expected[0]})
    for frame, env in zip(batched.render(), singles):
        np.testing.assert_array_equal(frame, env.render())
    for t in range(batched.world.n_glimpses):
        actions = rng.uniform(-1, 1, (B, batched.single_action_space.shape[0])).astype(np.float32)
        obs, _, done, _, info = batched.step(torch.from_numpy(actions))
        steps = [env.step(a) for env, a in zip(singles, actions)]
        final = obs if t + 1 < batched.world.n_glimpses else info["final_obs"]
        assert_obs_equal(final, {k: np.stack([s[0][k] for s in steps]) for k in steps[0][0]})
    np.testing.assert_allclose(as_numpy(info["final_info"]["pixels_seen"]), [s[4]["pixels_seen"] for s in steps])
    batched.reset(seed=4)
    first = batched.unwrapped.shift.clone()
    batched.reset(seed=4)
    assert torch.equal(batched.unwrapped.shift, first) and int(first.abs().max()) <= 3
    with pytest.raises(ValueError, match=r"options\['shift'\] is not allowed: use 5 pairs"):
        batched.reset(options={"shift": np.full((B, 2), 4)})
