"""SVHN cropped digits (format 2, 32 x 32 x 3) from the official ``.mat`` files, read with scipy.io."""

from __future__ import annotations

import os

import numpy as np
import scipy.io

from activevision.data.base import ArrayDataset
from activevision.data.files import data_root, fetch

__all__ = ["SVHN", "SVHN_FILES"]

URL = "http://ufldl.stanford.edu/housenumbers/"
SVHN_FILES = {
    "train": ("train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373"),
    "test": ("test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3"),
    "extra": ("extra_32x32.mat", "a93ce644f1a588dc4d68dda5feec44a7"),
}


class SVHN(ArrayDataset):
    """SVHN digits, 32 x 32 x 3 uint8, labels 0-9 (the files' label 10 means digit 0).

    ``split``: "train" (73,257), "test" (26,032) or "extra" (531,131). Downloaded once into ``data_dir``.
    """

    def __init__(self, split: str = "train", data_dir: str | os.PathLike | None = None, download: bool = True) -> None:
        if split not in SVHN_FILES:
            raise ValueError(f"split={split!r} is not allowed for SVHN: choose one of {sorted(SVHN_FILES)}")
        name, md5 = SVHN_FILES[split]
        path = fetch(data_root(data_dir, "svhn"), name, [URL + name], md5, download)
        mat = scipy.io.loadmat(path, variable_names=["X", "y"])
        x, y = mat.get("X"), mat.get("y")
        if x is None or y is None or x.ndim != 4 or x.shape[:3] != (32, 32, 3) or y.size != x.shape[3]:
            raise ValueError(f"{path} is not in the SVHN format-2 layout (X: 32x32x3xN uint8, y: Nx1)")
        labels = y.reshape(-1).astype(np.int64)
        labels[labels == 10] = 0
        super().__init__(np.ascontiguousarray(x.transpose(3, 0, 1, 2), dtype=np.uint8), labels, num_classes=10)
        self.split = split
