"""MNIST from the original idx files (gz or raw), with the splits our learning benchmarks use."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from activevision.checks import check_bool
from activevision.data.base import ArrayDataset
from activevision.data.files import DataUnavailableError, damaged_file, data_root, fetch, verify_file

__all__ = ["MNIST", "read_idx", "MNIST_SPLITS"]

MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# The same files unpacked (a user may keep them so), and the official sizes that cap a download.
RAW_FILES = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
SIZES = {
    "train-images-idx3-ubyte.gz": 9_912_422,
    "train-labels-idx1-ubyte.gz": 28_881,
    "t10k-images-idx3-ubyte.gz": 1_648_877,
    "t10k-labels-idx1-ubyte.gz": 4_542,
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
    """Read an idx file (``.gz`` or raw): uint8 array of the shape its header gives; a ValueError naming the path
    and the fix if it is damaged."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise damaged_file(path, f"{type(error).__name__}: {error}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise damaged_file(path, f"not a uint8 idx file: magic {data[:4].hex() or 'missing'}")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise damaged_file(path, f"its header is cut short ({len(data)} bytes)")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise damaged_file(path, f"truncated: its header says {dims}, found {body.size} bytes of data")
    return body.reshape(dims).copy()  # writable, independent of the file buffer


def _locate(folder: Path, gz_name: str, download: bool, verify: bool) -> Path:
    """The raw file if present (unpacked by the user), else the gz file, fetched if allowed; with ``verify``, its
    md5 checked against the official file's on first use."""
    raw = folder / gz_name[: -len(".gz")]
    if raw.is_file():
        return verify_file(raw, RAW_FILES[raw.name]) if verify else raw
    path = fetch(folder, gz_name, [m + gz_name for m in MIRRORS], FILES[gz_name], download, size=SIZES[gz_name])
    return verify_file(path, FILES[gz_name]) if verify else path


class MNIST(ArrayDataset):
    """MNIST digits, 28 x 28 x 1 uint8, labels 0-9.

    ``split``: "train" (60k), "test" (t10k), "t10k-train" (first 8,000 of t10k), "t10k-test" (last 2,000).
    ``data_dir`` holds the idx files (see ``activevision.data.files.data_root`` for the default). ``verify``: check
    the files' md5 against the official ones on first use (``False`` reads a copy of your own in the same layout).
    """

    def __init__(
        self,
        split: str = "train",
        data_dir: str | os.PathLike | None = None,
        download: bool = True,
        verify: bool = True,
    ) -> None:
        if split not in MNIST_SPLITS:
            raise ValueError(f"split={split!r} is not allowed for MNIST: choose one of {sorted(MNIST_SPLITS)}")
        check_bool("download", download)
        check_bool("verify", verify)
        prefix, part = MNIST_SPLITS[split]
        folder = data_root(data_dir, "mnist")
        image_path = _locate(folder, f"{prefix}-images-idx3-ubyte.gz", download, verify)
        label_path = _locate(folder, f"{prefix}-labels-idx1-ubyte.gz", download, verify)
        images, labels = read_idx(image_path), read_idx(label_path)
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise damaged_file(image_path, f"images of shape {images.shape}, not N x 28 x 28")
        if labels.ndim != 1 or int(labels.max(initial=0)) > 9:
            raise damaged_file(
                label_path, f"labels of shape {labels.shape} up to {int(labels.max(initial=0))}, not N labels 0-9"
            )
        if images.shape[0] != labels.shape[0]:
            raise DataUnavailableError(f"{folder}: {images.shape[0]} images but {labels.shape[0]} labels")
        super().__init__(images[part][..., None], labels[part], num_classes=10)
        self.split = split
