"""Where data files live, and fetching them safely: md5-verified, atomically moved into place, never silent."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

__all__ = ["DataUnavailableError", "atomic_write", "data_root", "md5sum", "fetch"]

OFFLINE_HINT = "GlimpseHouseNumbers-v0 (synthetic house numbers, generated offline)"


class DataUnavailableError(FileNotFoundError):
    """A data file is missing and could not be downloaded; the message says where, from where and what instead."""


def data_root(data_dir: str | os.PathLike | None, dataset: str) -> Path:
    """The folder holding a dataset's files: ``data_dir`` as given, else ``$ACTIVEVISION_DATA/<dataset>``,
    else ``~/.cache/activevision/<dataset>``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    root = os.environ.get("ACTIVEVISION_DATA")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "activevision"
    return base / dataset


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that the name only ever holds a complete file: a temporary file in the same
    folder, flushed to disk, then renamed over the target (checkpoints, logs, pictures)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def md5sum(path: Path, block: int = 1 << 20) -> str:
    """Hex md5 of a file, read in blocks."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for piece in iter(lambda: handle.read(block), b""):
            digest.update(piece)
    return digest.hexdigest()


def fetch(folder: Path, name: str, urls: list[str], md5: str, download: bool, timeout: float = 60.0) -> Path:
    """Return ``folder/name``, downloading it first if missing and ``download`` is true.

    The download goes to a temporary file in the same folder, is checked against ``md5`` and only then
    renamed into place, so the final name never holds a partial or wrong file. Any failure raises
    ``DataUnavailableError`` naming the folder, the URLs, the md5 and the offline alternative.
    """
    path = folder / name
    if path.is_file():
        return path

    def unavailable(reason: str) -> DataUnavailableError:
        return DataUnavailableError(
            f"{name} is not in {folder} and {reason}. Fetch it from {' or '.join(urls)} (md5 {md5}) into that "
            f"folder (or pass data_dir= / set $ACTIVEVISION_DATA), or use the offline world {OFFLINE_HINT}.")

    if not download:
        raise unavailable("download=False")
    folder.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        handle, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
        try:
            with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                for piece in iter(lambda: response.read(1 << 20), b""):
                    out.write(piece)
            got = md5sum(Path(temp))
            if got != md5:
                errors.append(f"{url}: md5 {got} != {md5}")
                continue
            os.replace(temp, path)
            return path
        except OSError as error:  # URLError, HTTPError and socket timeouts are OSErrors
            errors.append(f"{url}: {error}")
        finally:
            if os.path.exists(temp):
                os.unlink(temp)
    raise unavailable("could not be downloaded (" + "; ".join(errors) + ")")
