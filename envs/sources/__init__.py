"""Glimpse sources: what a world reads from its images, one implementation per kind of image store.

``GlimpseEnv`` and ``GlimpseVectorEnv`` hold one ``GlimpseSource`` each and never ask what stores the images:
``open_source`` picks the source of a dataset once, from ``SOURCES``. A new store (a slide, a zarr array, video
frames) is an ``ImageDataset`` subclass and a source class with these methods, added by one row:
``SOURCES.insert(0, (MyDataset, MySource))`` (``tests/test_sources.py`` does so).

Sources in this package:
- ``MemorySource``: images held in memory (any ``ImageDataset``), each glimpse read from integral images on the
  device (batched) or from per-scale block means of one image (single env);
- ``CanvasSource``: a blank canvas with one image at an offset (``TranslatedDataset``), read from that image, so
  neither cost nor memory grows with the canvas;
- ``TableSource``: canvases too large for memory (``LargeImageDataset``), read from summed-area tables on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from activevision.data.base import ImageDataset
from activevision.data.compose import TranslatedDataset
from activevision.data.large import LargeImageDataset
from activevision.envs.sources.base import GlimpseSource, ImageView
from activevision.envs.sources.canvas import CanvasSource
from activevision.envs.sources.memory import MemorySource
from activevision.envs.sources.tables import TableSource
from activevision.sensor import GlimpseGeometry

__all__ = ["GlimpseSource", "ImageView", "SOURCES", "open_source", "MemorySource", "CanvasSource", "TableSource"]


# The source of a dataset: the first row whose type it is an instance of (most specific first).
SOURCES: list[tuple[type, Callable[..., GlimpseSource]]] = [
    (LargeImageDataset, TableSource),
    (TranslatedDataset, CanvasSource),
    (ImageDataset, MemorySource),
]


def open_source(
    dataset: Any,
    geometry: GlimpseGeometry,
    *,
    shift: int = 0,
    context_size: int | None = None,
    device: torch.device | None = None,
) -> GlimpseSource:
    """The source that reads ``dataset``'s images, for glimpses of ``geometry`` in worlds with these options."""
    for kind, make in SOURCES:
        if isinstance(dataset, kind):
            return make(dataset, geometry, shift=shift, context_size=context_size, device=device)
    raise ValueError(
        f"dataset={type(dataset).__name__} is not allowed: pass an activevision ImageDataset, "
        "e.g. ArrayDataset(images, labels)"
    )
