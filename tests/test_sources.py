"""Glimpse sources: each kind of image store has its source, every source has the interface the envs use, and a
store of a user's own is added to both envs by one row of ``SOURCES``, without editing them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from activevision.data import MNIST, ArrayDataset, ClutteredDataset, TranslatedDataset, write_large_canvases
from activevision.envs import GlimpseEnv, GlimpseVectorEnv
from activevision.envs.sources import (
    SOURCES,
    CanvasSource,
    GlimpseSource,
    ImageView,
    MemorySource,
    TableSource,
    open_source,
)
from activevision.sensor import GlimpseGeometry


def test_every_kind_of_store_gets_its_source(mnist_dir, tmp_path, device):
    base = MNIST("t10k-test", data_dir=mnist_dir, download=False)
    small = ArrayDataset(base.images[:20], base.labels[:20], num_classes=10)
    stores = {
        MemorySource: [small, ClutteredDataset(small, canvas=40, seed=0)],  # clutter is painted: held in memory
        CanvasSource: [TranslatedDataset(small, canvas=40, seed=0)],
        TableSource: [write_large_canvases(tmp_path / "large", small, n=3, canvas=64)],
    }
    geometry = GlimpseGeometry(8, 2)
    for kind, datasets in stores.items():
        for dataset in datasets:
            source = open_source(dataset, geometry, device=torch.device(device))
            assert type(source) is kind and isinstance(source, GlimpseSource)
            view = source.view(1, (0, 0))
            assert isinstance(view, ImageView) and view.label == dataset.get(1)[1]
            glimpse = view.look((0.0, 0.0))
            batched = source.glimpses(torch.zeros((1, 2), dtype=torch.float64), torch.tensor([1]), torch.zeros((1, 2)))
            np.testing.assert_allclose(batched[0].cpu().numpy(), glimpse, atol=1e-6)
            assert 0.0 < view.pixels_seen() <= 1.0 and source.memory_bytes() > 0
    with pytest.raises(ValueError, match="dataset=list is not allowed"):
        open_source([1, 2], geometry)


class Reversed(ArrayDataset):
    """A store of its own: images kept in reverse order (a stand-in for a slide or a zarr array)."""


class ReversedSource(MemorySource):
    """Reads a ``Reversed`` store, counting the glimpses each env asks of it."""

    def __init__(self, dataset: Reversed, geometry: GlimpseGeometry, **options) -> None:
        flipped = ArrayDataset(dataset.images[::-1], dataset.labels[::-1], num_classes=dataset.num_classes)
        super().__init__(flipped, geometry, **options)
        self.reads = 0

    def glimpses(self, loc, index, shift):
        self.reads += len(index)
        return super().glimpses(loc, index, shift)

    def view(self, index, shift):
        self.reads += 1
        return super().view(index, shift)


@pytest.fixture
def reversed_store():
    """``SOURCES`` with a row for ``Reversed`` first (as a user adds one), restored afterwards."""
    SOURCES.insert(0, (Reversed, ReversedSource))
    yield
    SOURCES.remove((Reversed, ReversedSource))


def test_a_store_of_your_own_is_one_row_of_sources(mnist_dir, reversed_store, device):
    """Both envs read a new store through its source (no change to either env): what they show equals the same
    images held in plain memory."""
    base = MNIST("t10k-test", data_dir=mnist_dir, download=False)
    images, labels = base.images[:16], base.labels[:16]
    store, plain = Reversed(images[::-1], labels[::-1]), ArrayDataset(images, labels)
    options = dict(patch=8, scales=2, n_glimpses=3, start="random")
    ours, theirs = GlimpseEnv(store, **options), GlimpseEnv(plain, **options)
    assert type(ours.source) is ReversedSource
    for seed in range(3):
        np.testing.assert_array_equal(ours.reset(seed=seed)[0]["glimpse"], theirs.reset(seed=seed)[0]["glimpse"])
    assert ours.source.reads == 3
    batched = GlimpseVectorEnv(store, 4, device=device, **options)
    plain_batched = GlimpseVectorEnv(plain, 4, device=device, **options)
    obs, _ = batched.reset(seed=0)
    torch.testing.assert_close(obs["glimpse"], plain_batched.reset(seed=0)[0]["glimpse"])
    assert batched.source.reads == 4
