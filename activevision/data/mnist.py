"""MNIST from the original idx files (gz or raw), with the splits our learning benchmarks use."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from activevision.data.base import ArrayDataset
from activevision.data.files import DataUnavailableError, data_root, fetch

__all__ = ["MNIST", "read_idx", "MNIST_SPLITS"]

MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# split -> (file prefix, slice of that file): "t10k-train"/"t10k-test" split the 10k test set 8,000 / 2,000
# for learning benchmarks where only t10k exists.
MNIST_SPLITS = {
    "train": ("train", slice(None)),
    "test": ("t10k", slice(None)),
    "t10k-train": ("t10k", slice(0, 8000)),
    "t10k-test": ("t10k", slice(8000, None)),
}


def read_idx(path: Path) -> np.ndarray:
    """Read an idx file (``.gz`` or raw): uint8 array of the shape its header gives."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not a uint8 idx file (magic {data[:4].hex()})")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path} is truncated: header says {dims}, found {body.size} bytes of data")
    return body.reshape(dims).copy()  # writable, independent of the file buffer


def _locate(folder: Path, gz_name: str, download: bool) -> Path:
    """The raw file if present (unpacked by the user), else the gz file, fetched if allowed."""
    raw = folder / gz_name[: -len(".gz")]
    if raw.is_file():
        return raw
    return fetch(folder, gz_name, [m + gz_name for m in MIRRORS], FILES[gz_name], download)


class MNIST(ArrayDataset):
    """MNIST digits, 28 x 28 x 1 uint8, labels 0-9.

    ``split``: "train" (60k), "test" (t10k), "t10k-train" (first 8,000 of t10k), "t10k-test" (last 2,000).
    ``data_dir`` holds the idx files (see ``activevision.data.files.data_root`` for the default).
    """

    def __init__(self, split: str = "train", data_dir: str | os.PathLike | None = None, download: bool = True) -> None:
        if split not in MNIST_SPLITS:
            raise ValueError(f"split={split!r} is not allowed for MNIST: choose one of {sorted(MNIST_SPLITS)}")
        prefix, part = MNIST_SPLITS[split]
        folder = data_root(data_dir, "mnist")
        images = read_idx(_locate(folder, f"{prefix}-images-idx3-ubyte.gz", download))
        labels = read_idx(_locate(folder, f"{prefix}-labels-idx1-ubyte.gz", download))
        if images.shape[0] != labels.shape[0]:
            raise DataUnavailableError(f"{folder}: {images.shape[0]} images but {labels.shape[0]} labels")
        super().__init__(images[part][..., None], labels[part], num_classes=10)
        self.split = split
