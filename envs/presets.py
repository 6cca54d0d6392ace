"""The registered worlds: presets of ``GlimpseEnv`` over the built-in datasets, with their defaults.

Each preset accepts every ``GlimpseEnv`` option plus its dataset's options; anything else is a ValueError
that lists what is allowed. Datasets are cached per process, so many envs of one world share one copy.
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import Any

from activevision.checks import check_int
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
FILE_OPTIONS = {"split": "train", "data_dir": None, "download": True, "verify": True}

# id -> (world, world defaults, env defaults)
PRESETS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "GlimpseSVHN-v0": ("svhn", dict(FILE_OPTIONS), dict(patch=12, scales=2, n_glimpses=6)),
    "GlimpseHouseNumbers-v0": ("house_numbers", dict(split="train", size=None, data_seed=0),
                               dict(patch=12, scales=2, n_glimpses=6)),
    "GlimpseMNIST-v0": ("mnist", dict(FILE_OPTIONS), dict(patch=8, scales=1, n_glimpses=6)),
    "GlimpseTranslatedMNIST-v0": ("translated", dict(FILE_OPTIONS, canvas=60, size=None, data_seed=0),
                                  dict(patch=12, scales=3, n_glimpses=8)),
    "GlimpseClutteredMNIST-v0": ("cluttered", dict(FILE_OPTIONS, canvas=60, n_distractors=4, distractor_size=8,
                                                   size=None, data_seed=0), dict(patch=12, scales=3, n_glimpses=8)),
    "GlimpseClutteredMNIST100-v0": ("cluttered", dict(FILE_OPTIONS, canvas=100, n_distractors=8,
                                                      distractor_size=8, size=None, data_seed=0),
                                    dict(patch=12, scales=4, n_glimpses=8)),
    # Synthetic house-number tiles on large blank canvases, kept on disk (activevision.data.large): built once
    # into data_dir (default $ACTIVEVISION_DATA/large) and read lazily; glimpses cost the same at any canvas size.
    "GlimpseLargeImage-v0": ("large", dict(split="train", canvas=1024, size=64, n_distractors=0, data_seed=0,
                                           data_dir=None), dict(patch=12, scales=6, n_glimpses=8)),
}


@functools.lru_cache(maxsize=16)
def _cached_dataset(world: str, options: tuple[tuple[str, Any], ...]) -> ImageDataset:
    kw = dict(options)
    if world == "svhn":
        return SVHN(kw["split"], kw["data_dir"], kw["download"], kw["verify"])
    if world == "house_numbers":
        return SyntheticHouseNumbers(kw["split"], kw["size"], kw["data_seed"])
    if world == "mnist":
        return MNIST(kw["split"], kw["data_dir"], kw["download"], kw["verify"])
    if world == "large":
        name = (f"house_numbers-{kw['split']}-{kw['canvas']}px-{kw['size']}-d{kw['n_distractors']}"
                f"-seed{kw['data_seed']}")
        folder = data_root(kw["data_dir"], "large") / name
        if (folder / "meta.json").is_file():
            return LargeImageDataset(folder)
        stream = sorted(HOUSE_NUMBER_SPLITS).index(kw["split"])
        return write_large_canvases(folder, SyntheticHouseNumbers(kw["split"], None, kw["data_seed"]), kw["size"],
                                    kw["canvas"], kw["n_distractors"], seed=2 * kw["data_seed"] + stream)
    if kw["split"] not in MNIST_SPLITS:
        raise ValueError(f"split={kw['split']!r} is not allowed: choose one of {sorted(MNIST_SPLITS)}")
    base = _cached_dataset("mnist", tuple(sorted(dict(split=kw["split"], data_dir=kw["data_dir"],
                                                      download=kw["download"], verify=kw["verify"]).items())))
    stream = sorted(MNIST_SPLITS).index(kw["split"])  # each split gets its own placements
    if world == "translated":
        return TranslatedDataset(base, kw["canvas"], kw["data_seed"], kw["size"], stream)
    return ClutteredDataset(base, kw["canvas"], kw["n_distractors"], kw["distractor_size"], kw["data_seed"],
                            kw["size"], stream)


def make_dataset(env_id: str, **options: Any) -> ImageDataset:
    """The dataset behind a registered id, with its world options (split, data_dir, ...) applied."""
    world, defaults, _ = PRESETS[env_id]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f"{env_id}: unknown dataset option(s) {unknown}; allowed: {sorted(defaults)}")
    merged = {**defaults, **options}
    _check_world_options(env_id, merged)
    if world in ("house_numbers", "large") and merged["split"] not in HOUSE_NUMBER_SPLITS:
        raise ValueError(f"split={merged['split']!r} is not allowed for {env_id}: choose one of "
                         f"{sorted(HOUSE_NUMBER_SPLITS)}")
    if merged.get("data_dir") is not None:
        merged["data_dir"] = os.fspath(merged["data_dir"])
    return _cached_dataset(world, tuple(sorted(merged.items())))


# The lowest value of each integer world option (None is allowed where the default is None).
_WORLD_INTEGERS = {"data_seed": 0, "size": 1, "canvas": 1, "n_distractors": 0, "distractor_size": 1}


def _check_world_options(env_id: str, options: dict[str, Any]) -> None:
    """Every dataset option's type and range, before anything is read, made or cached."""
    for name, value in options.items():
        if name in _WORLD_INTEGERS and not (value is None and PRESETS[env_id][1][name] is None):
            check_int(name, value, _WORLD_INTEGERS[name])
        elif name in ("download", "verify") and not isinstance(value, bool):
            raise ValueError(f"{name}={value!r} is not allowed: use True or False")
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
        raise ValueError(f"{env_id}: unknown option(s) {unknown}; allowed: "
                         f"{sorted(set(world_defaults) | set(env_options))}")
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


def svhn(**kwargs: Any) -> GlimpseEnv:
    """GlimpseSVHN-v0: real SVHN cropped digits, 32x32x3, 2 scales of 12x12, 6 glimpses."""
    return make_preset("GlimpseSVHN-v0", **kwargs)


def house_numbers(**kwargs: Any) -> GlimpseEnv:
    """GlimpseHouseNumbers-v0: synthetic house numbers (offline), 32x32x3, 2 scales of 12x12, 6 glimpses."""
    return make_preset("GlimpseHouseNumbers-v0", **kwargs)


def mnist(**kwargs: Any) -> GlimpseEnv:
    """GlimpseMNIST-v0: MNIST 28x28, 1 scale of 8x8, 6 glimpses."""
    return make_preset("GlimpseMNIST-v0", **kwargs)


def translated_mnist(**kwargs: Any) -> GlimpseEnv:
    """GlimpseTranslatedMNIST-v0: an MNIST digit on a 60x60 canvas, 3 scales of 12x12, 8 glimpses."""
    return make_preset("GlimpseTranslatedMNIST-v0", **kwargs)


def cluttered_mnist(**kwargs: Any) -> GlimpseEnv:
    """GlimpseClutteredMNIST-v0: translated 60x60 plus 4 8x8 distractors, 3 scales of 12x12, 8 glimpses."""
    return make_preset("GlimpseClutteredMNIST-v0", **kwargs)


def cluttered_mnist100(**kwargs: Any) -> GlimpseEnv:
    """GlimpseClutteredMNIST100-v0: 100x100 canvas, 8 distractors, 4 scales of 12x12, 8 glimpses."""
    return make_preset("GlimpseClutteredMNIST100-v0", **kwargs)


def large_image(**kwargs: Any) -> GlimpseEnv:
    """GlimpseLargeImage-v0: house-number tiles on 1024x1024 canvases read lazily from disk, 6 scales of 12x12
    (12 to 384 pixels), 8 glimpses."""
    return make_preset("GlimpseLargeImage-v0", **kwargs)


def _vector_factory(env_id: str):
    def make(num_envs: int = 1, **kwargs: Any) -> GlimpseVectorEnv:
        return make_preset_vec(env_id, num_envs, **kwargs)

    make.__doc__ = f"{env_id}, batched on a torch device: ``gym.make_vec('{env_id}', num_envs, device=...)``."
    return make


svhn_vec = _vector_factory("GlimpseSVHN-v0")
house_numbers_vec = _vector_factory("GlimpseHouseNumbers-v0")
mnist_vec = _vector_factory("GlimpseMNIST-v0")
translated_mnist_vec = _vector_factory("GlimpseTranslatedMNIST-v0")
cluttered_mnist_vec = _vector_factory("GlimpseClutteredMNIST-v0")
cluttered_mnist100_vec = _vector_factory("GlimpseClutteredMNIST100-v0")
large_image_vec = _vector_factory("GlimpseLargeImage-v0")
