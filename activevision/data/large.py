"""Canvases too large to hold in memory, read lazily: the images of a world as a uint8 memmap in a folder, with
their summed-area tables (built once on first use, kept next to them) from which a glimpse at any scale costs
``(patch + 1)^2`` reads per scale and channel, whatever the canvas size.

A folder holds ``meta.json`` (shape, classes), ``labels.npy``, ``images.u8`` (N x H x W x C uint8, C-order) and,
after the first world over it, ``integral.i32`` (N x C x (H + 1) x (W + 1)): the sums modulo 2^32, 4 bytes a
pixel at any canvas size. A block's sum is the usual four-corner difference taken modulo 2^32, exact for every
block of up to ``MAX_BLOCK``^2 pixels (255 * 4104^2 < 2^32), far beyond any glimpse's coarsest block. Only the
pages a glimpse touches are read; ``overview`` gives a small picture of a canvas for rendering, also from the tables.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from activevision.data.base import ImageDataset

__all__ = ["LargeImageDataset", "write_large_canvases"]

FORMAT = 1
BAND_ELEMENTS = 1 << 24  # table entries built per pass (128 MB of int64): memory stays bounded at any canvas size
MAX_BLOCK = math.isqrt((2**32 - 1) // 255)  # 4104: the widest square block whose sum is exact modulo 2^32


class LargeImageDataset(ImageDataset):
    """The canvases of a folder written by ``write_large_canvases`` (or by you, in its layout), opened lazily."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        meta_path = self.folder / "meta.json"
        if not meta_path.is_file():
            raise ValueError(f"{self.folder} is not a large-image folder: it has no meta.json (make one with "
                             "activevision.data.write_large_canvases)")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{meta_path}: format {meta.get('format')!r} is not allowed: this version reads {FORMAT}")
        n, height, width, channels = (int(v) for v in meta["shape"])
        self.shape = (height, width, channels)
        self.dtype = np.dtype(np.uint8)
        self.classes = [str(name) for name in meta["classes"]]
        self.num_classes = len(self.classes)
        self.labels = np.load(self.folder / "labels.npy").astype(np.int64)
        images = self.folder / "images.u8"
        if not images.is_file() or images.stat().st_size != n * height * width * channels:
            raise ValueError(f"{images} is missing or not {n} x {height} x {width} x {channels} bytes as meta.json "
                             "says")
        if self.labels.shape != (n,) or self.labels.min() < 0 or self.labels.max() >= self.num_classes:
            raise ValueError(f"{self.folder / 'labels.npy'} must hold {n} labels in 0..{self.num_classes - 1}")
        self.images = np.memmap(images, np.uint8, "r", shape=(n, height, width, channels))
        self._integral: np.ndarray | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def get(self, index: int) -> tuple[np.ndarray, int]:
        """Canvas ``index`` as a read-only memmap view (nothing is read until used) and its label."""
        return self.images[index], int(self.labels[index])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        raise ValueError(f"{self.folder} is a large-image world: it is never loaded whole (worlds read glimpses "
                         "from integral(); get(i) gives one canvas as a memmap)")

    def integral(self) -> np.ndarray:
        """Summed-area tables ``(N, C, (H + 1) * (W + 1))`` int32 modulo 2^32, a read-only memmap; built band
        by band on first use (into a temporary file renamed when complete: a killed build leaves no partial table)."""
        if self._integral is None:
            n, (height, width, channels) = len(self), self.shape
            dtype = np.dtype(np.int32)
            path = self.folder / "integral.i32"
            expected = n * channels * (height + 1) * (width + 1) * dtype.itemsize
            if path.is_file() and path.stat().st_size != expected:
                raise ValueError(f"{path} has {path.stat().st_size} bytes, not {expected}: delete it to rebuild it")
            if not path.is_file():
                _build_integral(self.images, path, dtype)
            # Read-only and shared: a writable private (copy-on-write) map of tables larger than memory is refused
            # by the kernel's overcommit check (measured: ENOMEM for 34 GB on a 24 GB machine).
            self._integral = np.memmap(path, dtype, "r", shape=(n, channels, (height + 1) * (width + 1)))
        return self._integral

    def overview(self, index: int, max_side: int = 512) -> tuple[np.ndarray, int]:
        """Canvas ``index`` area-averaged by an integer factor ``f`` to at most ``max_side`` pixels per side
        (edge blocks average what they hold), read from the tables; returns ``(picture uint8, f)``."""
        height, width, channels = self.shape
        factor = max(1, -(-max(height, width) // max_side))
        if factor > MAX_BLOCK:
            least = -(-max(height, width) // MAX_BLOCK)
            raise ValueError(f"max_side={max_side} is not allowed for a {height} x {width} canvas: blocks of "
                             f"{factor} pixels exceed {MAX_BLOCK}; use max_side >= {least}")
        ys = np.minimum(np.arange(0, height + factor, factor), height)
        xs = np.minimum(np.arange(0, width + factor, factor), width)
        table = self.integral()[index].reshape(channels, height + 1, width + 1)
        corners = table[:, ys][:, :, xs].astype(np.int64)  # (C, rows + 1, cols + 1)
        sums = (corners[:, 1:, 1:] - corners[:, :-1, 1:] - corners[:, 1:, :-1] + corners[:, :-1, :-1]) & 0xFFFFFFFF
        area = np.diff(ys)[:, None] * np.diff(xs)[None, :]
        return np.round(sums / area).astype(np.uint8).transpose(1, 2, 0), factor


def _build_integral(images: np.ndarray, path: Path, dtype: np.dtype) -> None:
    """Write the summed-area tables of ``images`` (N, H, W, C) to ``path``, a band of rows at a time."""
    n, height, width, channels = images.shape
    temporary = path.with_name(f"{path.name}.partial-{os.getpid()}")
    table = np.memmap(temporary, dtype, "w+", shape=(n, channels, height + 1, width + 1))
    band = max(1, BAND_ELEMENTS // ((width + 1) * channels))
    for i in range(n):
        carry = np.zeros((channels, width + 1), np.int64)  # the table's row above the band
        for y0 in range(0, height, band):
            rows = images[i, y0 : y0 + band].transpose(2, 0, 1).astype(np.int64)  # (C, b, W)
            sums = rows.cumsum(axis=2).cumsum(axis=1)
            sums += carry[:, None, 1:]
            table[i, :, y0 + 1 : y0 + 1 + rows.shape[1], 1:] = sums.astype(dtype)  # wraps modulo 2^32
            carry[:, 1:] = sums[:, -1]
    table.flush()
    del table
    os.replace(temporary, path)


def write_large_canvases(folder: str | os.PathLike, base: ImageDataset, n: int, canvas: int | tuple[int, int],
                         n_distractors: int = 0, seed: int = 0, classes: list[str] | None = None) -> LargeImageDataset:
    """Make ``n`` blank canvases (``canvas`` pixels per side, or ``(height, width)``) with one image of ``base``
    each at a random place (the label) and ``n_distractors`` other base images at random places (drawn from
    ``seed``), written canvas by canvas into a memmap: memory holds one base image at a time. The folder
    appears complete or not at all (built under a temporary name, then renamed)."""
    height, width = (canvas, canvas) if isinstance(canvas, int) else canvas
    piece_height, piece_width, channels = base.shape
    if height < piece_height or width < piece_width:
        raise ValueError(f"canvas={canvas!r} is not allowed: it must hold a {piece_height} x {piece_width} image")
    if n < 1 or n_distractors < 0:
        raise ValueError(f"n={n!r} / n_distractors={n_distractors!r} are not allowed: use n >= 1, n_distractors >= 0")
    target = Path(folder)
    if target.exists():
        raise ValueError(f"{target} exists: large-image folders are written once (delete it or pick another)")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f"{target.name}.partial-", dir=target.parent))
    rng = np.random.default_rng(seed)
    images = np.memmap(temporary / "images.u8", np.uint8, "w+", shape=(n, height, width, channels))  # sparse zeros
    labels = np.empty(n, np.int64)
    for i in range(n):
        for k, which in enumerate(rng.integers(len(base), size=1 + n_distractors)):
            piece, label = base.get(int(which))
            if piece.dtype != np.uint8:
                piece = (np.clip(piece, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
            y, x = int(rng.integers(height - piece_height + 1)), int(rng.integers(width - piece_width + 1))
            window = images[i, y : y + piece_height, x : x + piece_width]
            np.maximum(window, piece, out=window)
            if k == 0:
                labels[i] = label
    images.flush()
    del images
    np.save(temporary / "labels.npy", labels)
    names = classes or getattr(base, "classes", None) or [str(c) for c in range(base.num_classes)]
    (temporary / "meta.json").write_text(json.dumps({"format": FORMAT, "shape": [n, height, width, channels],
                                                     "classes": names, "seed": seed, "n_distractors": n_distractors}))
    try:
        os.replace(temporary, target)
    except OSError:  # another process finished the same folder first: keep theirs
        shutil.rmtree(temporary, ignore_errors=True)
        if not (target / "meta.json").is_file():
            raise
    return LargeImageDataset(target)
