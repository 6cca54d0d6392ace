"""Fuzzing with Hypothesis (derandomized: the same inputs every run). Each input is either accepted, and the env or
run works, or refused with a ValueError naming it, and nothing changed. How many inputs each test tries is its
``max_examples`` (about 9,000 in all)."""

from __future__ import annotations

import dataclasses as _dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from activevision.agents.trainer import TrainConfig, Trainer
from activevision.data import ArrayDataset
from activevision.data.mnist import read_idx
from activevision.envs import GlimpseEnv
from activevision.envs.vector import GlimpseVectorEnv
from tests.conftest import cli_train_args


def fuzz(examples: int):
    return settings(
        max_examples=examples, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )


DATASET = ArrayDataset(np.random.default_rng(0).integers(0, 256, (12, 16, 16, 1), dtype=np.uint8), np.arange(12) % 4, 4)
WORLD = dict(patch=4, scales=2, n_glimpses=5, shift=2)
N = 3  # batched envs

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0.0, -0.0, 1e-320, 3.5e38, -1e300, 0.5]),
)
SHAPES = [(), (1,), (5,), (6,), (7,), (1, 6), (6, 1), (2, 3), (N,), (N, 6), (N, 5), (N, 1), (1, N)]
NUMPY_DTYPES = [
    np.float16,
    np.float32,
    np.float64,
    np.int8,
    np.int32,
    np.int64,
    np.uint8,
    np.uint64,
    np.bool_,
    np.complex64,
]
TORCH_DTYPES = [
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.int32,
    torch.int64,
    torch.uint8,
    torch.bool,
]


@st.composite
def arrays(draw) -> np.ndarray:
    shape = draw(st.sampled_from(SHAPES))
    values = draw(st.lists(numbers, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    dtype = draw(st.sampled_from(NUMPY_DTYPES))
    with np.errstate(all="ignore"):
        return (
            np.array(np.array(values, dtype=object).astype(np.float64), dtype=np.float64).astype(dtype)
            if dtype != np.uint64
            else np.abs(np.nan_to_num(np.array(values, dtype=np.float64))).astype(dtype)
        )


@st.composite
def tensors(draw) -> torch.Tensor:
    array = draw(arrays())
    dtype = draw(st.sampled_from(TORCH_DTYPES))
    tensor = torch.from_numpy(array.real.astype(np.float64)).to(dtype)
    if dtype.is_floating_point and draw(st.booleans()):
        tensor = tensor.requires_grad_(True) * 1.0
    return tensor


def shaped(shape: tuple[int, ...]) -> st.SearchStrategy:
    """Float arrays and tensors of the right shape: mostly good actions, some with NaN or inf."""
    values = st.lists(st.one_of(st.floats(-3, 3), numbers), min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))

    def cast(pair):
        with np.errstate(over="ignore"):  # large numbers become inf in float16 / float32: refused, as they must be
            return np.array(pair[0], dtype=np.float64).reshape(shape).astype(pair[1])

    array = st.tuples(values, st.sampled_from([np.float16, np.float32, np.float64])).map(cast)
    tensor = st.tuples(values, st.sampled_from([torch.float32, torch.float64, torch.bfloat16]), st.booleans()).map(
        lambda t: torch.tensor(t[0], dtype=torch.float64).reshape(shape).to(t[1]).requires_grad_(t[2])
    )
    return st.one_of(array, tensor, values.map(lambda v: np.reshape(v, shape).tolist()))


junk = st.one_of(
    st.none(),
    st.text(max_size=5),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.lists(st.one_of(numbers, st.lists(numbers, max_size=3)), max_size=8),
    numbers,
    st.booleans(),
)
actions = st.one_of(arrays(), tensors(), junk)


def as_float64(value) -> np.ndarray | None:
    """The action as float64 numbers when it is a float array or tensor, else None (refused)."""
    if isinstance(value, torch.Tensor):
        return value.detach().double().numpy() if value.dtype.is_floating_point else None
    if isinstance(value, list):  # plain lists of numbers are taken as numpy takes them
        try:
            value = np.asarray(value)
        except ValueError:
            return None
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value.astype(np.float64)
    return None


def single_state(env: GlimpseEnv) -> tuple:
    return (
        env._steps,
        list(env._locs),
        env._glimpse.copy().tobytes(),
        env._label,
        env._active,
        env._index,
        json.dumps(env.np_random.bit_generator.state, default=str),
    )


def batch_state(envs: GlimpseVectorEnv) -> tuple:
    tensors_ = (
        envs.index,
        envs.label,
        envs.steps,
        envs.glimpses,
        envs.locs,
        envs.glimpse,
        envs.shift,
        envs._generator.get_state(),
    )
    return tuple(t.clone().numpy().tobytes() for t in tensors_)


def refused_cleanly(call, state_of, env) -> None:
    event("refused")
    before = state_of(env)
    with pytest.raises(ValueError, match="not allowed"):
        call()
    assert state_of(env) == before


# ---------------------------------------------------------------- actions
@fuzz(2000)
@given(action=st.one_of(shaped((6,)), actions))
def test_single_env_continuous_actions(action):
    env = GlimpseEnv(DATASET, **WORLD)
    env.reset(seed=1)
    values = as_float64(action)
    if values is not None and values.shape == (6,) and np.isfinite(values).all():
        event("accepted")
        obs, reward, terminated, truncated, _ = env.step(action)
        assert env.observation_space.contains(obs) and np.isfinite(reward) and not truncated
    else:
        refused_cleanly(lambda: env.step(action), single_state, env)
    obs, *_ = env.step(np.zeros(6, np.float32))  # usable afterwards
    assert env.observation_space.contains(obs)


@fuzz(1000)
@given(
    action=st.one_of(
        st.integers(-5, 30),
        st.integers(-5, 30).map(np.int64),
        st.integers(0, 30).map(np.array),
        st.integers(-5, 30).map(torch.tensor),
        actions,
    )
)
def test_single_env_discrete_actions(action):
    env = GlimpseEnv(DATASET, **{**WORLD, "action_mode": "discrete"})
    env.reset(seed=1)
    n = env.action_space.n
    integer = (isinstance(action, (int, np.integer)) and not isinstance(action, (bool, np.bool_))) or (
        isinstance(action, (np.ndarray, torch.Tensor))
        and tuple(action.shape) == ()
        and not (
            action.dtype.is_floating_point or action.dtype == torch.bool
            if isinstance(action, torch.Tensor)
            else action.dtype.kind not in "iu"
        )
    )
    if integer and 0 <= int(action) < n:
        event("accepted")
        obs, *_ = env.step(action)
        assert env.observation_space.contains(obs)
    else:
        refused_cleanly(lambda: env.step(action), single_state, env)


@fuzz(1000)
@given(action=st.one_of(shaped((N, 6)), actions))
def test_batched_continuous_actions(action):
    envs = GlimpseVectorEnv(DATASET, N, **WORLD)
    envs.reset(seed=1)
    values = as_float64(action)
    if values is not None and values.shape == (N, 6) and np.isfinite(values).all():
        event("accepted")
        obs, reward, *_ = envs.step(action)
        assert not any(t.requires_grad for t in (*obs.values(), reward, envs.locs, envs.glimpse))
        assert envs.single_observation_space.contains({k: v[0].numpy() for k, v in obs.items()})
    else:
        refused_cleanly(lambda: envs.step(action), batch_state, envs)
    envs.step(np.zeros((N, 6), np.float32))


@fuzz(500)
@given(action=st.one_of(actions, st.lists(st.integers(-3, 30), min_size=N, max_size=N).map(np.array)))
def test_batched_discrete_actions(action):
    envs = GlimpseVectorEnv(DATASET, N, **{**WORLD, "action_mode": "discrete"})
    envs.reset(seed=1)
    n = envs.single_action_space.n
    kind_ok = (isinstance(action, np.ndarray) and action.dtype.kind in "iu") or (
        isinstance(action, torch.Tensor) and not action.dtype.is_floating_point and action.dtype != torch.bool
    )
    if kind_ok and tuple(action.shape) == (N,) and all(0 <= int(a) < n for a in action.tolist()):
        event("accepted")
        envs.step(action)
    else:
        refused_cleanly(lambda: envs.step(action), batch_state, envs)


# ---------------------------------------------------------------- resets
seeds = st.one_of(
    st.none(), st.integers(-3, 2**66), st.integers(0, 100), st.floats(), st.text(max_size=2), st.booleans()
)
option_values = st.one_of(
    st.none(),
    st.integers(-3, 14),
    st.floats(-3, 3),
    st.text(max_size=2),
    st.booleans(),
    st.tuples(st.integers(-4, 4), st.integers(-4, 4)),
    st.lists(st.integers(-4, 14), max_size=4),
    st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3)), min_size=N, max_size=N),
)
good_options = st.fixed_dictionaries(
    {},
    optional={
        "index": st.one_of(st.integers(-1, 12), st.lists(st.integers(-1, 12), min_size=N, max_size=N)),
        "shift": st.one_of(
            st.tuples(st.integers(-3, 3), st.integers(-3, 3)),
            st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3)), min_size=N, max_size=N),
        ),
    },
)
any_keys = st.dictionaries(st.sampled_from(["index", "shift", "indx", "seed", 3]), option_values, max_size=3)
options = st.one_of(st.none(), good_options, any_keys, st.lists(st.integers(), max_size=2))


def _good_seed(seed) -> bool:
    return seed is None or (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**64)


def _ints(value, shape) -> np.ndarray | None:
    array = np.asarray(value, dtype=object) if isinstance(value, (list, tuple)) else None
    if (
        array is None
        or array.shape != shape
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in array.reshape(-1))
    ):
        return None
    return array.astype(np.int64)


@fuzz(1000)
@given(seed=seeds, opts=options)
def test_single_env_resets(seed, opts):
    env = GlimpseEnv(DATASET, **WORLD)
    env.reset(seed=0)
    good = _good_seed(seed) and (opts is None or (isinstance(opts, dict) and set(opts) <= {"index", "shift"}))
    if good and opts:
        index, shift = opts.get("index"), opts.get("shift")
        good &= index is None or (isinstance(index, int) and not isinstance(index, bool) and 0 <= index < 12)
        pair = None if shift is None else _ints(shift, (2,))
        good &= shift is None or (pair is not None and bool((np.abs(pair) <= 2).all()))
    if good:
        event("accepted")
        obs, info = env.reset(seed=seed, options=opts)
        assert env.observation_space.contains(obs)
        assert opts is None or opts.get("index") is None or info["index"] == opts["index"]
    else:
        refused_cleanly(lambda: env.reset(seed=seed, options=opts), single_state, env)
        env.step(np.zeros(6, np.float32))


@fuzz(1000)
@given(seed=seeds, opts=options)
def test_batched_resets(seed, opts):
    envs = GlimpseVectorEnv(DATASET, N, **WORLD)
    envs.reset(seed=0)
    good = _good_seed(seed) and (opts is None or (isinstance(opts, dict) and set(opts) <= {"index", "shift"}))
    if good and opts:
        index, shift = opts.get("index"), opts.get("shift")
        index = None if index is None else _ints(index, (N,))
        good &= opts.get("index") is None or (index is not None and bool(((index >= 0) & (index < 12)).all()))
        pairs = None if shift is None else _ints(shift, (N, 2))
        good &= shift is None or (pairs is not None and bool((np.abs(pairs) <= 2).all()))
    if good:
        event("accepted")
        obs, info = envs.reset(seed=seed, options=opts)
        assert obs["glimpse"].shape == (N, 2, 1, 4, 4)
    else:
        refused_cleanly(lambda: envs.reset(seed=seed, options=opts), batch_state, envs)
        envs.step(np.zeros((N, 6), np.float32))


# ---------------------------------------------------------------- constructors
def _choices(*good):
    """Mostly (4 in 5) one of the ``good`` values, else one of every kind of bad one."""
    return st.one_of(
        *[st.sampled_from(good)] * 4, st.sampled_from([None, -1, 0, 2.5, "2", True, float("nan"), 10**9, [2]])
    )


world_options = st.fixed_dictionaries(
    {},
    optional={
        "patch": _choices(1, 4, 16, 17),
        "scales": _choices(1, 3, 30),
        "scale_factor": _choices(2, 3),
        "n_glimpses": _choices(1, 6, 1024, 1025),
        "action_mode": _choices("continuous", "discrete", "Discrete"),
        "grid": _choices(1, 5),
        "glimpse_cost": _choices(0.0, 0.1, 3),
        "reward_mode": _choices("final", "dense"),
        "start": _choices("center", "random", "choose"),
        "context_size": _choices(4, 16, 17),
        "order": _choices("random", "sequential"),
        "stride": _choices(1, 5),
        "shift": _choices(0, 3, 15, 16),
        "render_mode": _choices("rgb_array", "human"),
    },
)


@fuzz(500)
@given(options=world_options)
def test_single_and_batched_envs_accept_and_refuse_the_same_options(options):
    outcomes = []
    for make in (lambda: GlimpseEnv(DATASET, **options), lambda: GlimpseVectorEnv(DATASET, 2, **options)):
        try:
            env = make()
        except ValueError as error:
            assert "not allowed" in str(error) or "smaller than" in str(error), error
            outcomes.append(str(error))
            event("refused")
            continue
        outcomes.append("built")
        event("accepted")
        obs, _ = env.reset(seed=0)
        space = env.observation_space
        assert space.contains(obs) if isinstance(env, GlimpseEnv) else obs["glimpse"].shape[0] == 2
        env.step(env.action_space.sample())
    assert (outcomes[0] == "built") == (outcomes[1] == "built"), outcomes


# ---------------------------------------------------------------- data files
@fuzz(500)
@given(data=st.data())
def test_damaged_idx_files_are_value_errors_naming_the_file(data, mnist_dir, tmp_path_factory):
    original = (mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()
    damaged = bytearray(original)
    for _ in range(data.draw(st.integers(0, 4))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        damaged = damaged[: data.draw(st.integers(0, len(damaged)))]
    path = tmp_path_factory.mktemp("idx") / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(bytes(damaged))
    try:
        labels = read_idx(path)
    except ValueError as error:
        assert str(path) in str(error)
        event("refused")
        return
    event("accepted")
    assert labels.dtype == np.uint8  # a change gzip's CRC cannot see (in its header) reads as the same file
    assert bytes(damaged) == original or labels.shape == (10000,)


@fuzz(100)  # each read runs in a child process
@given(data=st.data())
def test_damaged_svhn_files_are_value_errors_naming_the_file(data, tmp_path_factory):
    from activevision.data import SVHN
    from tests.conftest import write_svhn_mat

    folder = tmp_path_factory.mktemp("svhn")
    path = folder / "test_32x32.mat"
    write_svhn_mat(path, 6, seed=0)
    damaged = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        damaged = damaged[: data.draw(st.integers(0, len(damaged)))]
    path.write_bytes(bytes(damaged))
    try:
        dataset = SVHN("test", data_dir=folder, download=False, verify=False)
    except ValueError as error:
        assert str(path) in str(error)
        event("refused")
        return
    event("accepted")
    images, labels = dataset.arrays()
    assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3) and labels.min() >= 0 and labels.max() <= 9


# ---------------------------------------------------------------- run folders
@pytest.fixture(scope="module")
def run_folder(mnist_dir, tmp_path_factory) -> Path:
    from activevision.cli import main

    out = tmp_path_factory.mktemp("fuzz_runs") / "run"
    main(
        cli_train_args(
            mnist_dir,
            "ram",
            out,
            "--steps",
            "1",
            "--batch",
            "4",
            "--hidden",
            "8",
            "--glimpse-hidden",
            "4",
            "--eval-batch",
            "100",
        )
    )
    return out


config_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 3),
    st.sampled_from([10**9, 0.5, -1e-3, 1e308]),
    st.text(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.just({"size": 5}),
    st.sampled_from(["gam", "ram", "GlimpseMNIST-v0", "gru", "all", "random", "continuous"]),
)


@fuzz(200)
@given(
    changes=st.dictionaries(
        st.sampled_from(tuple(item.name for item in _dataclasses.fields(TrainConfig)) + ("nonsense",)),
        config_values,
        min_size=1,
        max_size=2,
    )
)
def test_edited_config_files_are_refused_by_name_or_load(changes, run_folder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("edited") / "run"
    shutil.copytree(run_folder, folder)
    settings_ = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**settings_, **changes}))
    try:
        trainer = Trainer.resume(folder, device="cpu")
    except ValueError as error:
        message = str(error)
        assert "\n" not in message and ("config.json" in message or "checkpoint.pt" in message), message
        event("refused")
        return
    event("accepted")
    assert trainer.update == 1


@fuzz(200)
@given(data=st.data())
def test_damaged_checkpoints_are_refused_or_read_unchanged(data, run_folder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("flipped") / "run"
    shutil.copytree(run_folder, folder)
    path = folder / "checkpoint.pt"
    damaged = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(damaged) - 1))
        damaged[at] ^= data.draw(st.integers(1, 255))
    path.write_bytes(bytes(damaged))
    try:
        trainer = Trainer.resume(folder, device="cpu")
    except ValueError as error:
        assert str(path) in str(error) and "\n" not in str(error)
        event("refused")
        return
    event("accepted")
    reference = Trainer.resume(run_folder, device="cpu")  # a flip in the archive's padding changes nothing
    for key, value in reference.agent.state_dict().items():
        assert torch.equal(value, trainer.agent.state_dict()[key])
