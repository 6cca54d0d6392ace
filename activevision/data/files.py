"""Where data files live, and handling them safely: downloads md5-verified, size-capped, deadline-bound and
atomically moved into place; existing official files verified once; damaged files reported by path with the fix."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import urllib.request
from pathlib import Path

__all__ = ["DataUnavailableError", "atomic_write", "data_root", "md5sum", "fetch", "verify_file", "damaged_file"]

OFFLINE_HINT = "GlimpseHouseNumbers-v0 (synthetic house numbers, generated offline)"
# Which files of a folder were verified, keyed by name with their size and mtime: a later open costs a stat.
VERIFIED_CACHE = ".activevision-verified.json"


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
    """Write ``data`` to ``path`` so that the name only ever holds a complete file: a new temporary file created
    exclusively in the same folder (a unique name, so nothing planted there is followed), flushed to disk, then
    renamed over the target (checkpoints, logs, pictures)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def md5sum(path: Path, block: int = 1 << 20) -> str:
    """Hex md5 of a file, read in blocks."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for piece in iter(lambda: handle.read(block), b""):
            digest.update(piece)
    return digest.hexdigest()


def damaged_file(path: Path, problem: str) -> ValueError:
    """The error of a data file that cannot be used: its path, the problem and the fix."""
    return ValueError(
        f"{path} is damaged ({problem}): delete it; it will be downloaded again (or copy a good one there)"
    )


def _stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _read_cache(folder: Path) -> dict:
    try:
        cache = json.loads((folder / VERIFIED_CACHE).read_text())
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def _remember(path: Path, md5: str) -> None:
    """Record that ``path`` (at its size and mtime) has ``md5``; a folder that cannot be written is left as is."""
    cache = _read_cache(path.parent)
    cache[path.name] = {"md5": md5, "stamp": _stamp(path)}
    try:
        atomic_write(path.parent / VERIFIED_CACHE, json.dumps(cache, indent=1).encode())
    except OSError:
        pass


def verify_file(path: Path, md5: str) -> Path:
    """``path`` if its md5 is ``md5``, else a ValueError naming the path and the fix. The md5 is computed on first
    use and remembered by the file's size and mtime (a file changed since is checked again)."""
    entry = _read_cache(path.parent).get(path.name)
    if isinstance(entry, dict) and entry.get("md5") == md5 and entry.get("stamp") == _stamp(path):
        return path
    got = md5sum(path)
    if got != md5:
        raise damaged_file(
            path, f"md5 {got}, the official file's is {md5}; pass verify=False to read a copy of your own"
        )
    _remember(path, md5)
    return path


def fetch(
    folder: Path,
    name: str,
    urls: list[str],
    md5: str,
    download: bool,
    timeout: float = 60.0,
    size: int | None = None,
    deadline: float | None = None,
) -> Path:
    """Return ``folder/name``, downloading it first if missing and ``download`` is true.

    The download goes to a temporary file in the same folder, is checked against ``md5`` and only then
    renamed into place, so the final name never holds a partial or wrong file. ``timeout`` bounds each read,
    ``deadline`` (seconds, default 60 plus 1 per 100 kB of ``size``) the whole download of one URL, and ``size``
    (the official size) what a server may send. Any failure raises ``DataUnavailableError`` naming the folder,
    the URLs, the md5 and the offline alternative.
    """
    path = folder / name
    if path.is_file():
        return path

    def unavailable(reason: str) -> DataUnavailableError:
        return DataUnavailableError(
            f"{name} is not in {folder} and {reason}. Fetch it from {' or '.join(urls)} (md5 {md5}) into that "
            f"folder (or pass data_dir= / set $ACTIVEVISION_DATA), or use the offline world {OFFLINE_HINT}."
        )

    if not download:
        raise unavailable("download=False")
    if deadline is None:
        deadline = 60.0 + (size or 0) / 100_000
    folder.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        handle, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
        try:
            _download(url, handle, timeout, time.monotonic() + deadline, size)
            got = md5sum(Path(temp))
            if got != md5:
                errors.append(f"{url}: md5 {got} != {md5}")
                continue
            os.replace(temp, path)
            _remember(path, md5)
            return path
        except OSError as error:  # URLError, HTTPError and socket timeouts are OSErrors
            errors.append(f"{url}: {error}")
        finally:
            if os.path.exists(temp):
                os.unlink(temp)
    raise unavailable("could not be downloaded (" + "; ".join(errors) + ")")


def _download(url: str, handle: int, timeout: float, end: float, size: int | None) -> None:
    """Copy ``url`` into the open file ``handle``: an OSError past the monotonic time ``end`` or ``size`` bytes."""
    written = 0
    with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
        while True:
            if time.monotonic() > end:
                raise TimeoutError(f"not complete within the deadline ({written:,} bytes received)")
            piece = response.read1(1 << 16)  # what has arrived: a slow server cannot hold one read for long
            if not piece:
                return
            written += len(piece)
            if size is not None and written > size:
                raise OSError(f"the server sent more than the official {size:,} bytes")
            out.write(piece)
