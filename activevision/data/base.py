"""What a glimpse world reads: a dataset of same-sized images with integer labels.

Images are stored ``N x H x W x C``, uint8 (0-255) or float32 (0-1). ``ArrayDataset`` wraps arrays a user
already has; ``GeneratedDataset`` makes image ``i`` on demand from ``(seed, i)`` for procedural worlds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from activevision.checks import check_int

__all__ = ["ImageDataset", "ArrayDataset", "GeneratedDataset", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".npy")


class ImageDataset:
    """Interface of every dataset: ``len``, ``get(i) -> (image HxWxC, label)``, ``shape`` and ``num_classes``."""

    shape: tuple[int, int, int]
    num_classes: int
    dtype: np.dtype

    def __len__(self) -> int:
        raise NotImplementedError

    def get(self, index: int) -> tuple[np.ndarray, int]:
        """Image ``index`` (H x W x C) and its label."""
        raise NotImplementedError

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All images ``(N, H, W, C)`` and labels ``(N,)`` int64, materialised (for batched worlds)."""
        raise NotImplementedError


def _as_nhwc(images: Any) -> np.ndarray:
    """Check and convert user images to ``N x H x W x C`` uint8 or float32, naming what is wrong."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"images of shape {images.shape} are not allowed: use N x H x W (grey) or N x H x W x C with C = 1 or 3"
        )
    if images.shape[0] == 0:
        raise ValueError("images is empty: a dataset needs at least one image")
    if images.dtype == np.uint8:
        return np.ascontiguousarray(images)
    if images.dtype.kind != "f":
        raise ValueError(f"images of dtype {images.dtype} are not allowed: use uint8 (0-255) or float (0-1)")
    low, high = float(images.min()), float(images.max())
    if not (np.isfinite(low) and np.isfinite(high)) or low < 0.0 or high > 1.0:
        raise ValueError(
            f"float images must lie in [0, 1], got values in [{low}, {high}]; "
            "divide 0-255 images by 255 or pass them as uint8"
        )
    return np.ascontiguousarray(images, dtype=np.float32)


class ArrayDataset(ImageDataset):
    """Images and labels already in memory: any size, 1 or 3 channels, uint8 0-255 or float 0-1, NHWC or NHW."""

    def __init__(self, images: Any, labels: Any, num_classes: int | None = None) -> None:
        self.images = _as_nhwc(images)
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != self.images.shape[0]:
            raise ValueError(
                f"labels of shape {labels.shape} do not match {self.images.shape[0]} images: "
                "give one integer label per image"
            )
        if labels.dtype.kind not in "iu":
            raise ValueError(f"labels of dtype {labels.dtype} are not allowed: use integers 0..num_classes-1")
        self.labels = labels.astype(np.int64)
        low, high = int(self.labels.min()), int(self.labels.max())
        if num_classes is None:
            num_classes = high + 1
        if low < 0 or high >= num_classes:
            raise ValueError(f"labels span [{low}, {high}], outside 0..{num_classes - 1} (num_classes={num_classes})")
        self.num_classes = int(num_classes)
        self.classes = [str(label) for label in range(self.num_classes)]  # names; from_folder sets the folders'
        _, height, width, channels = self.images.shape
        self.shape = (int(height), int(width), int(channels))
        self.dtype = self.images.dtype

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, size: tuple[int, int] | None = None) -> ArrayDataset:
        """Images of ``folder/<class>/<file>`` (the ImageFolder layout): one subfolder per class, labels in the
        sorted order of their names (kept in ``classes``). Files: PNG, JPEG, BMP, TIFF, WebP (read by OpenCV,
        RGB; an alpha channel is dropped; 16-bit scaled to 8) or ``.npy`` arrays of one image (H x W or
        H x W x C, uint8 or float 0-1); other files are skipped. Grey images join colour ones as RGB. Images
        of different sizes need ``size=(height, width)``, to which every image is area-resized."""
        root = Path(folder)
        if size is not None and not (len(size) == 2 and all(isinstance(n, int) and n > 0 for n in size)):
            raise ValueError(f"size={size!r} is not allowed: use (height, width), two positive integers")
        if not root.is_dir():
            raise ValueError(f"folder={str(folder)!r} is not a directory: give a folder with one subfolder per class")
        classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not classes:
            raise ValueError(f"{root} has no class subfolders: put each class's images in {root}/<class name>/")
        images, labels = [], []
        for label, name in enumerate(classes):
            paths = sorted(
                p
                for p in (root / name).iterdir()
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            )
            if not paths:
                raise ValueError(f"{root / name} holds no images: allowed files end in {', '.join(IMAGE_SUFFIXES)}")
            for path in paths:
                images.append(_read_image(path, size))
                labels.append(label)
        if len({image.dtype for image in images}) > 1:
            raise ValueError(f"{root} mixes uint8 and float images: store them all one way")
        if len({image.shape[:2] for image in images}) > 1:
            sizes = sorted({image.shape[:2] for image in images})
            raise ValueError(
                f"{root} holds images of several sizes ({sizes[0]}, {sizes[-1]}, ...): pass "
                "size=(height, width) to resize them all"
            )
        if any(image.shape[2] == 3 for image in images):
            images = [np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image for image in images]
        dataset = cls(np.stack(images), np.array(labels, dtype=np.int64), num_classes=len(classes))
        dataset.classes = classes
        return dataset

    def __len__(self) -> int:
        return self.images.shape[0]

    def get(self, index: int) -> tuple[np.ndarray, int]:
        return self.images[index], int(self.labels[index])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return self.images, self.labels


def _read_image(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    """One image file as H x W x C (C = 1 or 3, RGB), uint8 or float32, area-resized to ``size`` if given."""
    if path.suffix.lower() == ".npy":
        image = np.load(path, allow_pickle=False)
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
            raise ValueError(
                f"{path}: array of shape {image.shape} is not one image: use H x W or H x W x C, C = 1 or 3"
            )
        image = _as_nhwc(image[None])[0]
    else:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ValueError(f"{path}: OpenCV cannot read it as an image")
        if image.dtype == np.uint16:
            image = np.right_shift(image, 8).astype(np.uint8)
        if image.dtype != np.uint8:
            raise ValueError(f"{path}: pixels of dtype {image.dtype} are not allowed: use 8- or 16-bit images")
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        image = image.reshape(image.shape[0], image.shape[1], -1)
    if size is not None:
        height, width = size
        if image.shape[:2] != (height, width):
            channels = image.shape[2]
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA).reshape(height, width, channels)
    return image


class GeneratedDataset(ImageDataset):
    """Procedural images made in seeded chunks on first use and kept: image ``i`` depends only on (seed, i).

    Subclasses set ``shape``/``num_classes``/``dtype`` and implement ``_generate(rng, start, stop)``, which
    returns images, labels and a dict of per-image metadata arrays named in ``meta_fields``.
    """

    chunk = 1024
    meta_fields: tuple[str, ...] = ()

    def __init__(self, length: int, seed: int, stream: int = 0) -> None:
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
            raise ValueError(f"size={length!r} is not allowed: it must be a positive integer")
        self.length = int(length)
        self.seed = check_int("seed", seed, 0)
        self.stream = check_int("stream", stream, 0)
        self._images: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self._meta: dict[str, np.ndarray] = {}
        self._done = np.zeros(-(-self.length // self.chunk), dtype=bool)

    def _generate(
        self, rng: np.random.Generator, start: int, stop: int
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        raise NotImplementedError

    def _chunk_rng(self, chunk: int) -> tuple[np.random.Generator, int, int]:
        """The generator and index range of a chunk: every random draw of image ``i`` comes from here."""
        start, stop = chunk * self.chunk, min((chunk + 1) * self.chunk, self.length)
        return np.random.default_rng([self.seed, self.stream, chunk]), start, stop

    def _fill(self, chunk: int) -> None:
        rng, start, stop = self._chunk_rng(chunk)
        images, labels, meta = self._generate(rng, start, stop)
        if self._images is None:
            self._images = np.zeros((self.length, *self.shape), dtype=self.dtype)
            self._labels = np.zeros(self.length, dtype=np.int64)
            self._meta = {
                name: np.zeros((self.length, *meta[name].shape[1:]), meta[name].dtype) for name in self.meta_fields
            }
        assert self._images is not None and self._labels is not None  # made with the first chunk
        self._images[start:stop], self._labels[start:stop] = images, labels
        for name in self.meta_fields:
            self._meta[name][start:stop] = meta[name]
        self._done[chunk] = True

    def __len__(self) -> int:
        return self.length

    def get(self, index: int) -> tuple[np.ndarray, int]:
        chunk = index // self.chunk
        if not self._done[chunk]:
            self._fill(chunk)
        assert self._images is not None and self._labels is not None
        return self._images[index], int(self._labels[index])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        for chunk in np.flatnonzero(~self._done):
            self._fill(int(chunk))
        assert self._images is not None and self._labels is not None
        return self._images, self._labels

    def meta(self, name: str) -> np.ndarray:
        """Per-image metadata of every image (e.g. ``"centre"`` of the label digit), materialised."""
        if name not in self.meta_fields:
            raise ValueError(f"meta {name!r} is not allowed: this dataset has {list(self.meta_fields)}")
        self.arrays()
        return self._meta[name]
