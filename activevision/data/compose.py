"""Composed worlds from the RAM paper: a digit at a random place on a larger canvas, optionally with clutter.

Image ``i`` takes digit ``i mod len(base)`` of the base dataset and a position (and distractors) drawn from
``(seed, stream, i // chunk)``, so the same seed gives the same canvases, made lazily in chunks.
"""

from __future__ import annotations

import functools

import numpy as np

from activevision.data.base import GeneratedDataset, ImageDataset

__all__ = ["CanvasDataset", "TranslatedDataset", "ClutteredDataset"]


class CanvasDataset(GeneratedDataset):
    """Canvases of ``canvas x canvas`` pixels, each holding base image ``i mod len(base)`` at a random position
    (the first draws of its chunk): what translated and cluttered worlds share.

    ``size`` defaults to ``len(base)`` (one canvas per digit); a larger size re-places the digits elsewhere.
    """

    def __init__(
        self, base: ImageDataset, canvas: int = 60, seed: int = 0, size: int | None = None, stream: int = 0
    ) -> None:
        height, width, channels = base.shape
        if isinstance(canvas, bool) or not isinstance(canvas, (int, np.integer)) or canvas < max(height, width):
            raise ValueError(
                f"canvas={canvas!r} is not allowed: it must be an integer >= the base image side {max(height, width)}"
            )
        super().__init__(len(base) if size is None else size, seed, stream)
        self.base = base
        self.canvas = int(canvas)
        self.shape = (self.canvas, self.canvas, channels)
        self.num_classes = base.num_classes
        self.dtype = np.dtype(base.dtype)

    def _positions(self, rng: np.random.Generator, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-left ``(ys, xs)`` of the digits of canvases ``start..stop`` (the chunk's first draws)."""
        height, width, _ = self.base.shape
        ys = rng.integers(0, self.canvas - height + 1, stop - start)
        xs = rng.integers(0, self.canvas - width + 1, stop - start)
        return ys, xs

    def _place(self, rng: np.random.Generator, images: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Paste the digits; returns their labels."""
        height, width, _ = self.base.shape
        ys, xs = self._positions(rng, start, stop)
        labels = np.empty(stop - start, np.int64)
        for j, (y, x) in enumerate(zip(ys.tolist(), xs.tolist())):
            digit, labels[j] = self.base.get((start + j) % len(self.base))
            images[j, y : y + height, x : x + width] = digit
        return labels

    def _generate(self, rng: np.random.Generator, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, dict]:
        images = np.zeros((stop - start, *self.shape), self.dtype)
        return images, self._place(rng, images, start, stop), {}


class TranslatedDataset(CanvasDataset):
    """Each base image pasted at a uniformly random position on a black ``canvas x canvas`` image, nothing else.

    ``layout()`` gives the placements without painting canvases: worlds read glimpses straight from the digit
    (``activevision.sources.CanvasSource``), so their cost does not depend on the canvas size.
    """

    @functools.cached_property
    def _layout(self) -> tuple[np.ndarray, np.ndarray]:
        ys, xs = zip(*(self._positions(*self._chunk_rng(chunk)) for chunk in range(len(self._done))))
        offsets = np.stack([np.concatenate(xs), np.concatenate(ys)], axis=1).astype(np.int64)
        return np.arange(self.length) % len(self.base), offsets

    def layout(self) -> tuple[np.ndarray, np.ndarray]:
        """Without painting any canvas: the base image of each canvas ``(N,)`` and its top-left ``(N, 2)`` as
        ``(x, y)`` pixels (drawn once, then kept)."""
        return self._layout

    def painted(self, index: int) -> tuple[np.ndarray, int]:
        """Canvas ``index`` painted on its own (without filling its chunk) and its label."""
        digits, offsets = self._layout
        digit, label = self.base.get(int(digits[index]))
        height, width, _ = self.base.shape
        image = np.zeros(self.shape, self.dtype)
        x, y = offsets[index]
        image[y : y + height, x : x + width] = digit
        return image, label

    def canvas_of(self, index: int) -> np.ndarray:
        """Canvas ``index`` painted on its own (for pictures of huge canvases, without filling its chunk)."""
        return self.painted(index)[0]


class ClutteredDataset(CanvasDataset):
    """A translated digit plus ``n_distractors`` ``distractor_size``-square pieces cut from random other digits,
    each at a random position; overlapping ink combines by maximum."""

    def __init__(
        self,
        base: ImageDataset,
        canvas: int = 60,
        n_distractors: int = 4,
        distractor_size: int = 8,
        seed: int = 0,
        size: int | None = None,
        stream: int = 0,
    ) -> None:
        super().__init__(base, canvas, seed, size, stream)
        height, width, _ = base.shape
        if isinstance(n_distractors, bool) or not isinstance(n_distractors, (int, np.integer)) or n_distractors < 0:
            raise ValueError(f"n_distractors={n_distractors!r} is not allowed: it must be an integer >= 0")
        if (
            isinstance(distractor_size, bool)
            or not isinstance(distractor_size, (int, np.integer))
            or not 1 <= distractor_size <= min(height, width)
        ):
            raise ValueError(
                f"distractor_size={distractor_size!r} is not allowed: it must be an integer in "
                f"[1, {min(height, width)}]"
            )
        self.n_distractors = int(n_distractors)
        self.distractor_size = int(distractor_size)

    def _generate(self, rng: np.random.Generator, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, dict]:
        images, labels, meta = super()._generate(rng, start, stop)
        n, k, piece = stop - start, self.n_distractors, self.distractor_size
        height, width, _ = self.base.shape
        sources = rng.integers(0, len(self.base), (n, k))
        cut_y = rng.integers(0, height - piece + 1, (n, k))
        cut_x = rng.integers(0, width - piece + 1, (n, k))
        put_y = rng.integers(0, self.canvas - piece + 1, (n, k))
        put_x = rng.integers(0, self.canvas - piece + 1, (n, k))
        for j in range(n):
            for src, cy, cx, py, px in zip(
                sources[j].tolist(), cut_y[j].tolist(), cut_x[j].tolist(), put_y[j].tolist(), put_x[j].tolist()
            ):
                cut = self.base.get(src)[0][cy : cy + piece, cx : cx + piece]
                target = images[j, py : py + piece, px : px + piece]
                np.maximum(target, cut, out=target)
        return images, labels, meta
