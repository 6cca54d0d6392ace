"""The registered ids, listed once: each id's dataset, the dataset's options with their defaults, and the env's
defaults (patch, scales, glimpse budget). Registration and the single and batched entry points are all built from
this table, so a new id is one entry here (and, for a new kind of dataset, one builder in ``envs/presets.py``).

Kept free of torch and of the envs: ``import activevision`` reads it to register the ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CatalogEntry", "CATALOG", "FILE_OPTIONS"]

# Options of the datasets read from official files.
FILE_OPTIONS: dict[str, Any] = {"split": "train", "data_dir": None, "download": True, "verify": True}


@dataclass(frozen=True)
class CatalogEntry:
    """One registered id: ``dataset`` names its dataset builder; ``name`` is the short name of its old factory
    functions (``activevision.envs.presets.mnist()`` / ``mnist_vec()``)."""

    name: str
    dataset: str
    summary: str
    dataset_options: dict[str, Any] = field(default_factory=dict)
    env_options: dict[str, Any] = field(default_factory=dict)


CATALOG: dict[str, CatalogEntry] = {
    entry_id: entry
    for entry_id, entry in (
        (
            "GlimpseSVHN-v0",
            CatalogEntry(
                "svhn",
                "svhn",
                "real SVHN cropped digits, 32x32x3, 2 scales of 12x12, 6 glimpses",
                dict(FILE_OPTIONS),
                dict(patch=12, scales=2, n_glimpses=6),
            ),
        ),
        (
            "GlimpseHouseNumbers-v0",
            CatalogEntry(
                "house_numbers",
                "house_numbers",
                "synthetic house numbers (offline), 32x32x3, 2 scales of 12x12, 6 glimpses",
                dict(split="train", size=None, data_seed=0),
                dict(patch=12, scales=2, n_glimpses=6),
            ),
        ),
        (
            "GlimpseMNIST-v0",
            CatalogEntry(
                "mnist",
                "mnist",
                "MNIST 28x28, 1 scale of 8x8, 6 glimpses",
                dict(FILE_OPTIONS),
                dict(patch=8, scales=1, n_glimpses=6),
            ),
        ),
        (
            "GlimpseTranslatedMNIST-v0",
            CatalogEntry(
                "translated_mnist",
                "translated",
                "an MNIST digit on a 60x60 canvas, 3 scales of 12x12, 8 glimpses",
                dict(FILE_OPTIONS, canvas=60, size=None, data_seed=0),
                dict(patch=12, scales=3, n_glimpses=8),
            ),
        ),
        (
            "GlimpseClutteredMNIST-v0",
            CatalogEntry(
                "cluttered_mnist",
                "cluttered",
                "translated 60x60 plus 4 8x8 distractors, 3 scales of 12x12, 8 glimpses",
                dict(FILE_OPTIONS, canvas=60, n_distractors=4, distractor_size=8, size=None, data_seed=0),
                dict(patch=12, scales=3, n_glimpses=8),
            ),
        ),
        (
            "GlimpseClutteredMNIST100-v0",
            CatalogEntry(
                "cluttered_mnist100",
                "cluttered",
                "100x100 canvas, 8 distractors, 4 scales of 12x12, 8 glimpses",
                dict(FILE_OPTIONS, canvas=100, n_distractors=8, distractor_size=8, size=None, data_seed=0),
                dict(patch=12, scales=4, n_glimpses=8),
            ),
        ),
        # Synthetic house-number tiles on large blank canvases, kept on disk (activevision.data.large): built once
        # into data_dir (default $ACTIVEVISION_DATA/large) and read lazily; glimpses cost the same at any canvas size.
        (
            "GlimpseLargeImage-v0",
            CatalogEntry(
                "large_image",
                "large",
                "house-number tiles on 1024x1024 canvases read lazily from disk, 6 scales of 12x12 "
                "(12 to 384 pixels), 8 glimpses",
                dict(split="train", canvas=1024, size=64, n_distractors=0, data_seed=0, data_dir=None),
                dict(patch=12, scales=6, n_glimpses=8),
            ),
        ),
    )
}
