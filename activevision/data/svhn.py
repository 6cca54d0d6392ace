"""SVHN cropped digits (format 2, 32 x 32 x 3) from the official ``.mat`` files, read with scipy.io."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import scipy.io

from activevision.checks import check_bool
from activevision.data.base import ArrayDataset
from activevision.data.files import damaged_file, data_root, fetch, verify_file

__all__ = ["SVHN", "SVHN_FILES"]

URL = "http://ufldl.stanford.edu/housenumbers/"
# split -> (file, md5, size in bytes)
SVHN_FILES = {
    "train": ("train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373", 182_040_794),
    "test": ("test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3", 64_275_384),
    "extra": ("extra_32x32.mat", "a93ce644f1a588dc4d68dda5feec44a7", 1_329_278_602),
}


def _read_mat(path: Path) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``X`` and ``y`` of a .mat file (None where missing), or a ValueError naming the path and the fix."""
    try:
        mat = scipy.io.loadmat(path, variable_names=["X", "y"])
    except Exception as error:  # scipy's reader raises many kinds (MatReadError, OSError, IndexError, ...)
        raise damaged_file(path, f"{type(error).__name__}: {error}") from None
    return mat.get("X"), mat.get("y")


# Run in a child process: scipy's compiled reader can crash (SIGSEGV) on a damaged file, which would take the
# caller's process with it; the arrays come back as .npy files, read without pickle.
_CHILD = """
import sys, numpy as np, scipy.io
mat = scipy.io.loadmat(sys.argv[1], variable_names=["X", "y"])
for name in ("X", "y"):
    if name in mat:
        np.save(f"{sys.argv[2]}/{name}.npy", mat[name], allow_pickle=False)
"""


def _read_mat_apart(path: Path) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``_read_mat`` of a file whose md5 was not checked, read in a child process so that a damaged file is an
    error, never a crash."""
    with tempfile.TemporaryDirectory() as folder:
        result = subprocess.run([sys.executable, "-c", _CHILD, str(path), folder], capture_output=True, text=True)
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines()
            died = f"the reader died of signal {-result.returncode}"
            problem = lines[-1] if result.returncode > 0 and lines else died
            raise damaged_file(path, problem[:300])
        arrays = [Path(folder) / f"{name}.npy" for name in ("X", "y")]
        images, labels = (np.load(p, allow_pickle=False) if p.exists() else None for p in arrays)
        return images, labels


class SVHN(ArrayDataset):
    """SVHN digits, 32 x 32 x 3 uint8, labels 0-9 (the files' label 10 means digit 0).

    ``split``: "train" (73,257), "test" (26,032) or "extra" (531,131). Downloaded once into ``data_dir``.
    ``verify``: check the file's md5 against the official one on first use (``False`` reads a file of your own in
    the same layout: X 32 x 32 x 3 x N uint8, y N x 1 integers 1-10; it is then read in a child process, since
    scipy's reader can crash on a damaged file).
    """

    def __init__(
        self,
        split: str = "train",
        data_dir: str | os.PathLike | None = None,
        download: bool = True,
        verify: bool = True,
    ) -> None:
        if split not in SVHN_FILES:
            raise ValueError(f"split={split!r} is not allowed for SVHN: choose one of {sorted(SVHN_FILES)}")
        check_bool("download", download)
        check_bool("verify", verify)
        name, md5, size = SVHN_FILES[split]
        path = fetch(data_root(data_dir, "svhn"), name, [URL + name], md5, download, size=size)
        if verify:
            verify_file(path, md5)
        x, y = _read_mat(path) if verify else _read_mat_apart(path)
        if x is None or y is None or x.ndim != 4 or x.shape[:3] != (32, 32, 3) or y.size != x.shape[3]:
            raise ValueError(f"{path} is not in the SVHN format-2 layout (X: 32x32x3xN uint8, y: Nx1)")
        if x.dtype != np.uint8:
            raise ValueError(f"{path}: X of dtype {x.dtype} is not allowed: SVHN pixels are uint8 (0-255)")
        if y.dtype.kind not in "iu":
            raise ValueError(f"{path}: y of dtype {y.dtype} is not allowed: SVHN labels are integers 1-10")
        labels = y.reshape(-1).astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() > 10):
            raise ValueError(
                f"{path}: labels in [{labels.min()}, {labels.max()}] are not allowed: use 1-10 (10 meaning digit 0)"
            )
        labels[labels == 10] = 0
        super().__init__(np.ascontiguousarray(x.transpose(3, 0, 1, 2)), labels, num_classes=10)
        self.split = split
