"""Data files verified before use (md5 of the official files, remembered by size and mtime), damaged files reported by
path with the fix, wrong dtypes refused, downloads bounded in time and size, atomic writes that follow no link."""

from __future__ import annotations

import gzip
import http.server
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from activevision.data import MNIST, SVHN, DataUnavailableError, files
from tests.conftest import write_svhn_mat

GZ = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture()
def mnist_copy(mnist_dir, tmp_path) -> Path:
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in GZ:
        shutil.copy(mnist_dir / name, folder / name)
    return folder


def _rewrite(path: Path, change) -> None:
    """Unpack an idx .gz file, change its bytes, pack it again."""
    data = bytearray(gzip.decompress(path.read_bytes()))
    path.write_bytes(gzip.compress(bytes(change(data))))


def _zero_pixels(data: bytearray) -> bytearray:
    data[16 + 28 * 28 * 100 : 16 + 28 * 28 * 200] = bytes(28 * 28 * 100)
    return data


def _five_thousand(data: bytearray) -> bytearray:
    return data[:4] + (5000).to_bytes(4, "big") + data[8:16] + data[16 : 16 + 5000 * 784]


def _fourteen_by_56(data: bytearray) -> bytearray:
    return data[:8] + (14).to_bytes(4, "big") + (56).to_bytes(4, "big") + data[16:]


@pytest.mark.parametrize("change", [_zero_pixels, _five_thousand, _fourteen_by_56])
def test_changed_mnist_files_are_refused_by_their_md5(mnist_copy, change):
    _rewrite(mnist_copy / GZ[0], change)
    with pytest.raises(ValueError, match=f"{mnist_copy / GZ[0]} is damaged .*md5.*delete it"):
        MNIST("test", data_dir=mnist_copy, download=False)


def test_unpacked_mnist_files_are_verified_too(mnist_copy):
    for name in GZ:
        (mnist_copy / name[:-3]).write_bytes(gzip.decompress((mnist_copy / name).read_bytes()))
    assert len(MNIST("t10k-test", data_dir=mnist_copy, download=False)) == 2000
    raw = mnist_copy / GZ[0][:-3]
    raw.write_bytes(bytes(_zero_pixels(bytearray(raw.read_bytes()))))
    with pytest.raises(ValueError, match=f"{raw} is damaged"):
        MNIST("test", data_dir=mnist_copy, download=False)


def test_verify_false_still_checks_the_layout(mnist_copy):
    _rewrite(mnist_copy / GZ[0], _fourteen_by_56)
    with pytest.raises(ValueError, match=r"images of shape \(10000, 14, 56\), not N x 28 x 28"):
        MNIST("test", data_dir=mnist_copy, download=False, verify=False)
    _rewrite(mnist_copy / GZ[0], lambda data: data[:8])  # header only, no dimensions
    with pytest.raises(ValueError, match="damaged"):
        MNIST("test", data_dir=mnist_copy, download=False, verify=False)


def test_the_md5_is_computed_once_per_file_version(mnist_copy, monkeypatch):
    calls = []
    real = files.md5sum
    monkeypatch.setattr(files, "md5sum", lambda path, *a: calls.append(path.name) or real(path, *a))
    MNIST("test", data_dir=mnist_copy, download=False)
    MNIST("test", data_dir=mnist_copy, download=False)
    assert sorted(calls) == sorted(GZ)  # the second open read the remembered results
    path = mnist_copy / GZ[1]
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # the file changed since
    MNIST("test", data_dir=mnist_copy, download=False)
    assert sorted(calls) == sorted([*GZ, GZ[1]])


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
@pytest.mark.parametrize("verify", [True, False])
def test_corrupt_gz_files_are_value_errors_naming_the_path_and_the_fix(mnist_copy, damage, verify):
    path = mnist_copy / GZ[0]
    data = path.read_bytes()
    path.write_bytes(
        {"truncated": data[: len(data) // 2], "garbage": np.random.default_rng(0).bytes(4000), "empty": b""}[damage]
    )
    with pytest.raises(ValueError, match=f"{path} is damaged .*delete it; it will be downloaded again"):
        MNIST("test", data_dir=mnist_copy, download=False, verify=verify)


def test_the_official_svhn_md5_is_checked_unless_told_otherwise(tmp_path):
    write_svhn_mat(tmp_path / "test_32x32.mat", 10, seed=0)
    with pytest.raises(ValueError, match="test_32x32.mat is damaged .*eb5a983be6a315427106f1b164d9cef3.*verify=False"):
        SVHN("test", data_dir=tmp_path, download=False)
    assert len(SVHN("test", data_dir=tmp_path, download=False, verify=False)) == 10


@pytest.mark.parametrize(
    "x,y,match",
    [
        (np.random.default_rng(0).random((32, 32, 3, 4)), np.ones((4, 1), np.uint8), "X of dtype float64"),
        (np.full((32, 32, 3, 4), 300, np.int64), np.ones((4, 1), np.uint8), "X of dtype int64"),
        (np.zeros((32, 32, 3, 4), np.uint8), np.full((4, 1), 2.7), "y of dtype float64"),
        (np.zeros((32, 32, 3, 4), np.uint8), np.full((4, 1), 11, np.uint8), r"labels in \[11, 11\]"),
    ],
)
def test_svhn_files_of_wrong_dtypes_or_ranges_are_refused(tmp_path, x, y, match):
    scipy.io.savemat(tmp_path / "train_32x32.mat", {"X": x, "y": y})
    with pytest.raises(ValueError, match=match):
        SVHN("train", data_dir=tmp_path, download=False, verify=False)


@pytest.mark.parametrize("content", [b"", b"MATLAB 5.0 MAT-file" + bytes(50), os.urandom(3000), "truncated"])
def test_corrupt_mat_files_are_value_errors_naming_the_path(tmp_path, content):
    path = tmp_path / "test_32x32.mat"
    if content == "truncated":
        write_svhn_mat(path, 20, seed=1)
        content = path.read_bytes()[:2000]
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"{path} is damaged .*delete it"):
        SVHN("test", data_dir=tmp_path, download=False, verify=False)


def test_a_mat_file_that_crashes_scipys_reader_is_an_error_not_a_crash(tmp_path):
    path = tmp_path / "test_32x32.mat"
    write_svhn_mat(path, 6, seed=0)
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) - 15] = 39  # y's data tag read as a "small element": scipy's reader reads past its buffer
    path.write_bytes(bytes(damaged))  # (it dies of SIGSEGV or SIGBUS, or raises on whatever it read: both are errors)
    with pytest.raises(ValueError, match=f"{path} is damaged .*delete it"):
        SVHN("test", data_dir=tmp_path, download=False, verify=False)


# ---------------------------------------------------------------- downloads on loopback
class SlowHandler(http.server.BaseHTTPRequestHandler):
    """Sends a large body one byte a second (``/slow``) or more than asked for at once (``/big``)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        try:
            if self.path == "/big":
                self.wfile.write(bytes(50_000))
                return
            for _ in range(30):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(1.0)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def slow_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_trickling_server_is_cut_off_at_the_deadline(slow_server, tmp_path):
    start = time.monotonic()
    with pytest.raises(DataUnavailableError, match="deadline"):
        files.fetch(tmp_path, "blob", [slow_server + "/slow"], "0" * 32, download=True, timeout=2, deadline=2.5)
    assert time.monotonic() - start < 8  # per-read timeouts alone would wait 30 s
    assert list(tmp_path.iterdir()) == []


def test_a_server_sending_more_than_the_official_size_is_cut_off(slow_server, tmp_path):
    with pytest.raises(DataUnavailableError, match="more than the official 1,000 bytes"):
        files.fetch(tmp_path, "blob", [slow_server + "/big"], "0" * 32, download=True, size=1000)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_follows_no_planted_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "run" / "checkpoint.pt"
    target.parent.mkdir()
    (target.parent / ".checkpoint.pt.tmp").symlink_to(victim)  # the old fixed temporary name
    files.atomic_write(target, b"new")
    assert victim.read_text() == "keep me" and target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == [".checkpoint.pt.tmp", "checkpoint.pt"]
