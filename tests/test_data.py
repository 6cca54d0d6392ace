"""Datasets on real files: MNIST idx (the committed t10k set), SVHN .mat layout, downloads over a real local
HTTP server, the synthetic house numbers and the composed canvases."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from activevision.data import (
    MNIST,
    SVHN,
    ArrayDataset,
    ClutteredDataset,
    DataUnavailableError,
    SyntheticHouseNumbers,
    TranslatedDataset,
    files,
)
from activevision.data import mnist as mnist_module
from tests.conftest import write_svhn_mat


# ---------------------------------------------------------------- MNIST
def test_mnist_splits_on_the_real_t10k_files(mnist_dir):
    test = MNIST("test", data_dir=mnist_dir, download=False)
    train8k = MNIST("t10k-train", data_dir=mnist_dir, download=False)
    test2k = MNIST("t10k-test", data_dir=mnist_dir, download=False)
    assert (len(test), len(train8k), len(test2k)) == (10_000, 8_000, 2_000)
    assert test.shape == (28, 28, 1) and test.dtype == np.uint8 and test.num_classes == 10
    # Known facts of the real t10k set: first labels, class counts.
    assert test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    np.testing.assert_array_equal(train8k.images, test.images[:8000])
    np.testing.assert_array_equal(test2k.images, test.images[8000:])
    for name, md5 in mnist_module.FILES.items():
        if name.startswith("t10k"):
            assert files.md5sum(mnist_dir / name) == md5


def test_mnist_reads_raw_idx_files(mnist_dir, tmp_path):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(mnist_dir / f"{name}.gz", "rb") as src, open(tmp_path / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    raw = MNIST("t10k-test", data_dir=tmp_path, download=False)
    packed = MNIST("t10k-test", data_dir=mnist_dir, download=False)
    np.testing.assert_array_equal(raw.images, packed.images)
    np.testing.assert_array_equal(raw.labels, packed.labels)


def test_mnist_bad_split_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match="split='valid' is not allowed.*t10k-train"):
        MNIST("valid", data_dir=tmp_path)
    with pytest.raises(DataUnavailableError) as error:
        MNIST("train", data_dir=tmp_path, download=False)
    message = str(error.value)
    assert str(tmp_path) in message and "train-images-idx3-ubyte.gz" in message
    assert mnist_module.FILES["train-images-idx3-ubyte.gz"] in message and "GlimpseHouseNumbers-v0" in message


def test_truncated_idx_file_is_rejected(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28]) + b"x")
    with pytest.raises(ValueError, match="truncated"):
        mnist_module.read_idx(tmp_path / "t10k-images-idx3-ubyte")


# ---------------------------------------------------------------- SVHN
def test_svhn_reads_the_official_layout(tmp_path):
    images, digits = write_svhn_mat(tmp_path / "test_32x32.mat", 25, seed=3)
    data = SVHN("test", data_dir=tmp_path, download=False, verify=False)  # a small file of our own: not official
    assert len(data) == 25 and data.shape == (32, 32, 3) and data.num_classes == 10
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, digits)  # label 10 in the file is digit 0
    assert 0 in data.labels.tolist()


def test_svhn_rejects_a_wrong_layout_and_names_the_file(tmp_path):
    scipy.io.savemat(tmp_path / "train_32x32.mat", {"X": np.zeros((28, 28, 5), np.uint8), "y": np.zeros((5, 1))})
    with pytest.raises(ValueError, match="train_32x32.mat is not in the SVHN format-2 layout"):
        SVHN("train", data_dir=tmp_path, download=False, verify=False)
    with pytest.raises(ValueError, match="split='valid'"):
        SVHN("valid", data_dir=tmp_path)


def test_data_dir_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("ACTIVEVISION_DATA", str(tmp_path))
    assert files.data_root(None, "svhn") == tmp_path / "svhn"
    monkeypatch.delenv("ACTIVEVISION_DATA")
    assert files.data_root(None, "svhn") == Path.home() / ".cache" / "activevision" / "svhn"
    assert files.data_root(tmp_path / "x", "svhn") == tmp_path / "x"


# ---------------------------------------------------------------- downloads (real HTTP on loopback)
@pytest.fixture()
def http_folder(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **k)  # noqa: E731
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_verifies_md5_then_moves_into_place(http_folder, tmp_path, mnist_dir, monkeypatch):
    served, url = http_folder
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(mnist_dir / name, served / name)
    monkeypatch.setattr(mnist_module, "MIRRORS", ["http://127.0.0.1:9/", url])  # first mirror refuses
    target = tmp_path / "cache"
    data = MNIST("t10k-test", data_dir=target, download=True)
    assert len(data) == 2000
    assert sorted(p.name for p in target.iterdir() if p.name != files.VERIFIED_CACHE) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]


def test_download_with_wrong_md5_leaves_no_file(http_folder, tmp_path):
    served, url = http_folder
    (served / "blob.bin").write_bytes(b"not what you expected")
    target = tmp_path / "cache"
    md5 = hashlib.md5(b"something else").hexdigest()
    with pytest.raises(DataUnavailableError) as error:
        files.fetch(target, "blob.bin", [url + "blob.bin"], md5, download=True)
    message = str(error.value)
    assert "md5" in message and md5 in message and str(target) in message and url + "blob.bin" in message
    assert list(target.iterdir()) == []  # neither the final name nor a partial temp file


def test_offline_download_error_names_everything(tmp_path):
    with pytest.raises(DataUnavailableError) as error:
        files.fetch(
            tmp_path,
            "extra_32x32.mat",
            ["http://127.0.0.1:9/extra_32x32.mat"],
            "a93ce644f1a588dc4d68dda5feec44a7",
            download=True,
            timeout=5,
        )
    message = str(error.value)
    for needle in (
        str(tmp_path),
        "http://127.0.0.1:9/extra_32x32.mat",
        "a93ce644f1a588dc4d68dda5feec44a7",
        "GlimpseHouseNumbers-v0",
    ):
        assert needle in message
    assert not (tmp_path / "extra_32x32.mat").exists()


# ---------------------------------------------------------------- synthetic house numbers
def test_house_numbers_are_deterministic_whatever_the_access_order():
    a = SyntheticHouseNumbers("train", size=3000, seed=7)
    b = SyntheticHouseNumbers("train", size=3000, seed=7)
    late = [b.get(i)[0].copy() for i in (2999, 1500, 0)]  # b fills chunks in another order
    images, labels = a.arrays()
    for got, i in zip(late, (2999, 1500, 0)):
        np.testing.assert_array_equal(got, images[i])
    np.testing.assert_array_equal(labels, b.arrays()[1])
    other = SyntheticHouseNumbers("train", size=3000, seed=8).arrays()[0]
    test = SyntheticHouseNumbers("test", size=3000, seed=7).arrays()[0]
    assert np.abs(other.astype(int) - images).mean() > 20 and np.abs(test.astype(int) - images).mean() > 20


def test_house_numbers_look_like_svhn_and_are_balanced():
    data = SyntheticHouseNumbers("train", size=5000, seed=0)
    images, labels = data.arrays()
    assert images.shape == (5000, 32, 32, 3) and images.dtype == np.uint8
    counts = np.bincount(labels, minlength=10)
    assert counts.min() >= 495 and counts.max() <= 505
    # Varied backgrounds and colours, not constant images.
    assert images.reshape(5000, -1).std(axis=1).min() > 3
    assert images[:, 0, 0].std(axis=0).min() > 40


def test_house_numbers_record_where_the_label_digit_is():
    data = SyntheticHouseNumbers("train", size=1200, seed=0)
    centre = data.meta("centre")
    assert centre.shape == (1200, 2) and np.abs(centre).max() < 0.6
    assert centre[:, 1].std() > 0.05  # digits wander vertically
    np.testing.assert_array_equal(centre, SyntheticHouseNumbers("train", size=1200, seed=0).meta("centre"))
    # The digit is where the metadata says: ink contrast is higher around the recorded centre than far from it.
    images, _ = data.arrays()
    grey = images.astype(float).mean(axis=3)
    px = ((centre + 1) * 16).round().astype(int).clip(4, 27)
    near = np.array([grey[i, py - 4 : py + 4, x - 4 : x + 4].std() for i, (x, py) in enumerate(px)])
    corner = grey[:, :6, :6].std(axis=(1, 2))
    assert (near > corner).mean() > 0.9
    with pytest.raises(ValueError, match="meta 'box' is not allowed"):
        data.meta("box")


def test_house_numbers_bad_arguments():
    with pytest.raises(ValueError, match="split='extra'"):
        SyntheticHouseNumbers("extra")
    with pytest.raises(ValueError, match="size=0"):
        SyntheticHouseNumbers("train", size=0)


# ---------------------------------------------------------------- composed worlds and user arrays
def test_translated_and_cluttered_canvases(mnist_dir):
    base = MNIST("t10k-test", data_dir=mnist_dir, download=False)
    translated = TranslatedDataset(base, canvas=60, seed=0)
    images, labels = translated.arrays()
    assert images.shape == (2000, 60, 60, 1)
    np.testing.assert_array_equal(labels, base.labels)
    # The whole digit is on the canvas, untouched: same ink, same pixels at the right place.
    np.testing.assert_array_equal(images.reshape(2000, -1).sum(1), base.images.reshape(2000, -1).sum(1))
    again = TranslatedDataset(base, canvas=60, seed=0).arrays()[0]
    np.testing.assert_array_equal(images, again)
    cluttered = ClutteredDataset(base, canvas=60, n_distractors=4, distractor_size=8, seed=0).arrays()[0]
    assert (cluttered.reshape(2000, -1).sum(1) >= images.reshape(2000, -1).sum(1)).all()
    assert (cluttered.reshape(2000, -1).sum(1) > images.reshape(2000, -1).sum(1)).mean() > 0.9
    with pytest.raises(ValueError, match="canvas=20"):
        TranslatedDataset(base, canvas=20)
    with pytest.raises(ValueError, match="distractor_size=40"):
        ClutteredDataset(base, distractor_size=40)


@pytest.mark.parametrize(
    "images",
    [
        np.zeros((4, 10, 12), np.uint8),
        np.zeros((4, 10, 12, 1), np.uint8),
        np.ones((4, 10, 12, 3), np.float64) * 0.5,
    ],
)
def test_array_dataset_accepts_user_layouts(images):
    data = ArrayDataset(images, [0, 1, 2, 1])
    assert data.shape[:2] == (10, 12) and data.shape[2] in (1, 3) and data.num_classes == 3
    assert data.dtype in (np.uint8, np.float32)


@pytest.mark.parametrize(
    "images,labels,match",
    [
        (np.zeros((4, 10, 12, 2), np.uint8), [0, 1, 2, 1], "N x H x W"),
        (np.full((4, 10, 12), 2.0), [0, 1, 2, 1], r"\[0, 1\]"),
        (np.zeros((4, 10, 12), np.int32), [0, 1, 2, 1], "dtype int32"),
        (np.zeros((4, 10, 12), np.uint8), [0, 1, 2], "do not match 4 images"),
        (np.zeros((4, 10, 12), np.uint8), [0.5, 1, 2, 1], "dtype float64"),
    ],
)
def test_array_dataset_rejects_bad_input(images, labels, match):
    with pytest.raises(ValueError, match=match):
        ArrayDataset(images, labels)
    with pytest.raises(ValueError, match="outside 0..1"):
        ArrayDataset(np.zeros((2, 4, 4), np.uint8), [0, 3], num_classes=2)


def _write_folder(root: Path) -> dict[str, np.ndarray]:
    """Class folders of real image files (PNG colour and grey, JPEG-free so pixels are exact) and .npy arrays."""
    rng = np.random.default_rng(0)
    written = {}
    for name, kind in [("cat/a.png", "rgb"), ("cat/b.npy", "rgb"), ("dog/c.png", "grey"), ("dog/d.png", "rgba")]:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        rgb = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
        if kind == "grey":
            written[name] = rgb[..., :1].repeat(3, axis=2)
            cv2.imwrite(str(path), rgb[..., 0])
        elif path.suffix == ".npy":
            written[name] = rgb
            np.save(path, rgb)
        else:
            written[name] = rgb
            alpha = np.full((6, 5, 1), 128, np.uint8)
            bgr = rgb[..., ::-1]
            cv2.imwrite(str(path), np.concatenate([bgr, alpha], axis=2) if kind == "rgba" else bgr)
    (root / "dog" / "notes.txt").write_text("not an image")
    return written


def test_array_dataset_from_a_folder_of_images_and_arrays(tmp_path):
    written = _write_folder(tmp_path)
    data = ArrayDataset.from_folder(tmp_path)
    assert data.classes == ["cat", "dog"] and data.labels.tolist() == [0, 0, 1, 1] and data.shape == (6, 5, 3)
    for index, name in enumerate(sorted(written)):
        np.testing.assert_array_equal(data.images[index], written[name])
    resized = ArrayDataset.from_folder(tmp_path, size=(3, 4))
    assert resized.shape == (3, 4, 3)
    np.testing.assert_array_equal(
        resized.images[0], cv2.resize(written["cat/a.png"], (4, 3), interpolation=cv2.INTER_AREA)
    )
    assert ArrayDataset(np.zeros((2, 4, 4), np.uint8), [0, 2]).classes == ["0", "1", "2"]


def test_array_dataset_from_folder_names_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="is not a directory"):
        ArrayDataset.from_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no class subfolders"):
        ArrayDataset.from_folder(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("")
    with pytest.raises(ValueError, match="holds no images"):
        ArrayDataset.from_folder(tmp_path)
    cv2.imwrite(str(tmp_path / "a" / "small.png"), np.zeros((4, 4), np.uint8))
    cv2.imwrite(str(tmp_path / "a" / "large.png"), np.zeros((8, 4), np.uint8))
    with pytest.raises(ValueError, match="several sizes"):
        ArrayDataset.from_folder(tmp_path)
    assert ArrayDataset.from_folder(tmp_path, size=(4, 4)).shape == (4, 4, 1)
    with pytest.raises(ValueError, match=r"size=\(4, 0\)"):
        ArrayDataset.from_folder(tmp_path, size=(4, 0))
    (tmp_path / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png: OpenCV cannot read"):
        ArrayDataset.from_folder(tmp_path, size=(4, 4))
    (tmp_path / "a" / "broken.png").unlink()
    np.save(tmp_path / "a" / "batch.npy", np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="batch.npy: array of shape"):
        ArrayDataset.from_folder(tmp_path, size=(4, 4))
