"""The registered worlds: ``activevision.catalog``'s ids as ``GlimpseEnv`` / ``GlimpseVectorEnv`` over their
datasets, with their defaults.

Each preset accepts every ``GlimpseEnv`` option plus its dataset's options; anything else is a ValueError
that lists what is allowed. Datasets are cached per process, so many envs of one world share one copy.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import Any

from activevision.catalog import CATALOG, FILE_OPTIONS
from activevision.checks import check_bool, check_int
from activevision.data.base import ImageDataset
from activevision.data.compose import ClutteredDataset, TranslatedDataset
from activevision.data.files import data_root
from activevision.data.large import LargeImageDataset, write_large_canvases
from activevision.data.mnist import MNIST, MNIST_SPLITS
from activevision.data.svhn import SVHN
from activevision.data.synthetic import HOUSE_NUMBER_SPLITS, SyntheticHouseNumbers
from activevision.envs.glimpse_env import GlimpseEnv
from activevision.envs.vector import GlimpseVectorEnv

__all__ = ["PRESETS", "make_preset", "make_preset_vec", "make_dataset", "ENV_OPTIONS", "VECTOR_OPTIONS"]

ENV_OPTIONS = tuple(p for p in inspect.signature(GlimpseEnv.__init__).parameters if p not in ("self", "dataset"))
VECTOR_OPTIONS = ENV_OPTIONS + ("device", "autoreset_mode", "compile")

# id -> (dataset kind, dataset defaults, env defaults): the catalog's entries as tuples (the name users know).
PRESETS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    env_id: (entry.dataset, entry.dataset_options, entry.env_options) for env_id, entry in CATALOG.items()
}


def _svhn(kw: dict[str, Any]) -> ImageDataset:
    return SVHN(kw["split"], kw["data_dir"], kw["download"], kw["verify"])


def _house_numbers(kw: dict[str, Any]) -> ImageDataset:
    return SyntheticHouseNumbers(kw["split"], kw["size"], kw["data_seed"])


def _mnist(kw: dict[str, Any]) -> ImageDataset:
    return MNIST(kw["split"], kw["data_dir"], kw["download"], kw["verify"])


def _large(kw: dict[str, Any]) -> ImageDataset:
    name = f"house_numbers-{kw['split']}-{kw['canvas']}px-{kw['size']}-d{kw['n_distractors']}-seed{kw['data_seed']}"
    folder = data_root(kw["data_dir"], "large") / name
    if (folder / "meta.json").is_file():
        return LargeImageDataset(folder)
    stream = sorted(HOUSE_NUMBER_SPLITS).index(kw["split"])
    return write_large_canvases(
        folder,
        SyntheticHouseNumbers(kw["split"], None, kw["data_seed"]),
        kw["size"],
        kw["canvas"],
        kw["n_distractors"],
        seed=2 * kw["data_seed"] + stream,
    )


def _mnist_base(kw: dict[str, Any]) -> tuple[ImageDataset, int]:
    """The MNIST split a composed canvas draws its digits from, and the split's stream (its own placements)."""
    if kw["split"] not in MNIST_SPLITS:
        raise ValueError(f"split={kw['split']!r} is not allowed: choose one of {sorted(MNIST_SPLITS)}")
    base = _cached_dataset("mnist", tuple(sorted({k: kw[k] for k in FILE_OPTIONS}.items())))
    return base, sorted(MNIST_SPLITS).index(kw["split"])


def _translated(kw: dict[str, Any]) -> ImageDataset:
    base, stream = _mnist_base(kw)
    return TranslatedDataset(base, kw["canvas"], kw["data_seed"], kw["size"], stream)


def _cluttered(kw: dict[str, Any]) -> ImageDataset:
    base, stream = _mnist_base(kw)
    return ClutteredDataset(
        base, kw["canvas"], kw["n_distractors"], kw["distractor_size"], kw["data_seed"], kw["size"], stream
    )


# Dataset kind (the catalog's ``dataset``) -> the builder of its dataset from the merged options.
DATASET_BUILDERS: dict[str, Callable[[dict[str, Any]], ImageDataset]] = {
    "svhn": _svhn,
    "house_numbers": _house_numbers,
    "mnist": _mnist,
    "large": _large,
    "translated": _translated,
    "cluttered": _cluttered,
}


@functools.lru_cache(maxsize=16)
def _cached_dataset(kind: str, options: tuple[tuple[str, Any], ...]) -> ImageDataset:
    return DATASET_BUILDERS[kind](dict(options))


def make_dataset(env_id: str, **options: Any) -> ImageDataset:
    """The dataset behind a registered id, with its world options (split, data_dir, ...) applied."""
    kind, defaults, _ = PRESETS[env_id]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f"{env_id}: unknown dataset option(s) {unknown}; allowed: {sorted(defaults)}")
    merged = {**defaults, **options}
    _check_world_options(env_id, merged)
    if kind in ("house_numbers", "large") and merged["split"] not in HOUSE_NUMBER_SPLITS:
        raise ValueError(
            f"split={merged['split']!r} is not allowed for {env_id}: choose one of {sorted(HOUSE_NUMBER_SPLITS)}"
        )
    if merged.get("data_dir") is not None:
        merged["data_dir"] = os.fspath(merged["data_dir"])
    return _cached_dataset(kind, tuple(sorted(merged.items())))


# The lowest value of each integer world option (None is allowed where the default is None).
_WORLD_INTEGERS = {"data_seed": 0, "size": 1, "canvas": 1, "n_distractors": 0, "distractor_size": 1}


def _check_world_options(env_id: str, options: dict[str, Any]) -> None:
    """Every dataset option's type and range, before anything is read, made or cached."""
    for name, value in options.items():
        if name in _WORLD_INTEGERS and not (value is None and PRESETS[env_id][1][name] is None):
            check_int(name, value, _WORLD_INTEGERS[name])
        elif name in ("download", "verify"):
            check_bool(name, value)
        elif name == "split" and not isinstance(value, str):
            raise ValueError(f"split={value!r} is not allowed: use a split name (a string)")
        elif name == "data_dir" and not (value is None or isinstance(value, (str, os.PathLike))):
            raise ValueError(f"data_dir={value!r} is not allowed: use a folder path or None")


def _split_options(env_id: str, kwargs: dict[str, Any], env_options: tuple[str, ...]) -> tuple[ImageDataset, dict]:
    """The world's dataset and the env options (defaults overridden), or a ValueError naming unknown options."""
    if env_id not in PRESETS:
        raise ValueError(f"env id {env_id!r} is not allowed: choose one of {sorted(PRESETS)}")
    _, world_defaults, env_defaults = PRESETS[env_id]
    unknown = sorted(set(kwargs) - set(world_defaults) - set(env_options))
    if unknown:
        raise ValueError(
            f"{env_id}: unknown option(s) {unknown}; allowed: {sorted(set(world_defaults) | set(env_options))}"
        )
    dataset = make_dataset(env_id, **{k: v for k, v in kwargs.items() if k in world_defaults})
    return dataset, {**env_defaults, **{k: v for k, v in kwargs.items() if k in env_options}}


def make_preset(env_id: str, **kwargs: Any) -> GlimpseEnv:
    """Build registered world ``env_id`` with ``kwargs`` overriding its defaults."""
    dataset, options = _split_options(env_id, kwargs, ENV_OPTIONS)
    return GlimpseEnv(dataset, **options)


def make_preset_vec(env_id: str, num_envs: int = 1, **kwargs: Any) -> GlimpseVectorEnv:
    """Batched ``env_id`` (``gym.make_vec``'s entry point): every env option, plus ``device``, ``autoreset_mode``,
    ``compile``."""
    dataset, options = _split_options(env_id, kwargs, VECTOR_OPTIONS)
    return GlimpseVectorEnv(dataset, num_envs, **options)


_OLD_NAMES = {entry.name: env_id for env_id, entry in CATALOG.items()}


def __getattr__(name: str) -> Callable[..., GlimpseEnv | GlimpseVectorEnv]:
    """The factories of earlier versions, made from the catalog: ``mnist(**kwargs)`` is
    ``make_preset("GlimpseMNIST-v0", **kwargs)`` and ``mnist_vec(num_envs, **kwargs)`` its batched form."""
    batched = name.endswith("_vec")
    env_id = _OLD_NAMES.get(name[: -len("_vec")] if batched else name)
    if env_id is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return functools.partial(make_preset_vec if batched else make_preset, env_id)
