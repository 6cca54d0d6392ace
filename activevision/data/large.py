"""Canvases too large to hold in memory, read lazily: the images of a world as a uint8 memmap in a folder.

A folder holds ``meta.json`` (shape, classes), ``labels.npy`` and ``images.u8`` (N x H x W x C uint8, C-order).
Worlds never read it whole: the sensor builds summed-area tables next to the images on first use
(``activevision.sensor.table_files``), from which a glimpse at any scale costs ``(patch + 1)^2`` reads per scale
and channel, whatever the canvas size.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from activevision.data.base import ImageDataset

__all__ = ["LargeImageDataset", "write_large_canvases"]

FORMAT = 1


class LargeImageDataset(ImageDataset):
    """The canvases of a folder written by ``write_large_canvases`` (or by you, in its layout), opened lazily."""

    def __init__(self, folder: str | os.PathLike, phase_copies: bool = True) -> None:
        """``phase_copies=False`` keeps one copy of the tables (phase 1 only, not shifted: 2 or 4 bytes a pixel
        instead of 8 or 16 for 3-4 scales, more tiles per coarse glimpse): for tables that would otherwise not fit in
        memory, where every page a glimpse touches is a disk read."""
        if not isinstance(phase_copies, bool):
            raise ValueError(f"phase_copies={phase_copies!r} is not allowed: use True or False")
        self.folder = Path(folder)
        self.phase_copies = phase_copies
        meta_path = self.folder / "meta.json"
        if not meta_path.is_file():
            raise ValueError(
                f"{self.folder} is not a large-image folder: it has no meta.json (make one with "
                "activevision.data.write_large_canvases)"
            )
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
            raise ValueError(
                f"{images} is missing or not {n} x {height} x {width} x {channels} bytes as meta.json says"
            )
        if self.labels.shape != (n,) or self.labels.min() < 0 or self.labels.max() >= self.num_classes:
            raise ValueError(f"{self.folder / 'labels.npy'} must hold {n} labels in 0..{self.num_classes - 1}")
        self.images = np.memmap(images, np.uint8, "r", shape=(n, height, width, channels))

    def __len__(self) -> int:
        return self.images.shape[0]

    def get(self, index: int) -> tuple[np.ndarray, int]:
        """Canvas ``index`` as a read-only memmap view (nothing is read until used) and its label."""
        return self.images[index], int(self.labels[index])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Every canvas as one read-only memmap (nothing is read until used) and the labels."""
        return self.images, self.labels


def write_large_canvases(
    folder: str | os.PathLike,
    base: ImageDataset,
    n: int,
    canvas: int | tuple[int, int],
    n_distractors: int = 0,
    seed: int = 0,
    classes: list[str] | None = None,
) -> LargeImageDataset:
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
    (temporary / "meta.json").write_text(
        json.dumps(
            {
                "format": FORMAT,
                "shape": [n, height, width, channels],
                "classes": names,
                "seed": seed,
                "n_distractors": n_distractors,
            }
        )
    )
    try:
        os.replace(temporary, target)
    except OSError:  # another process finished the same folder first: keep theirs
        shutil.rmtree(temporary, ignore_errors=True)
        if not (target / "meta.json").is_file():
            raise
    return LargeImageDataset(target)
