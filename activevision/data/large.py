"""Canvases too large to hold in memory, read lazily: the images of a world as a uint8 memmap in a folder, with
their summed-area tables (built once on first use, kept next to them) from which a glimpse at any scale costs
``(patch + 1)^2`` reads per scale and channel, whatever the canvas size.

A folder holds ``meta.json`` (shape, classes), ``labels.npy``, ``images.u8`` (N x H x W x C uint8, C-order) and,
after the first world over it, ``integral-q<phases>.i32``: the (H + 1) x (W + 1) tables of every image and
channel, the sums modulo 2^32, 4 bytes an entry at any canvas size, a copy per phase the world reads, laid out so
that the reads of one glimpse touch few memory pages (``PhaseLayout``, ``PhaseTables``). A block's sum is the
usual four-corner difference taken modulo 2^32, exact for every block of up to ``MAX_BLOCK``^2 pixels
(255 * 4104^2 < 2^32), far beyond any glimpse's coarsest block. Only the pages a glimpse touches are read;
``overview`` gives a small picture of a canvas for rendering, also from the tables.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from activevision.data.base import ImageDataset

__all__ = ["LargeImageDataset", "PhaseLayout", "PhaseTables", "write_large_canvases"]

FORMAT = 1
BAND_ELEMENTS = 1 << 24  # table entries built per pass (128 MB of int64): memory stays bounded at any canvas size
MAX_BLOCK = math.isqrt((2**32 - 1) // 255)  # 4104: the widest square block whose sum is exact modulo 2^32
TILE = 32  # table entries per tile side: a 32 x 32 tile of int32 is one 4 KB page
# Table files up to this share of physical memory are mapped with huge pages where the kernel maps files so (Linux
# with transparent huge pages in "madvise" mode and large page-cache folios, e.g. ext4 on 6.x): one TLB entry per
# 2 MB instead of per 4 KB page (measured: 2 M random reads of a 4 GB table 87 ms -> 53 ms; 256 glimpses of a
# 16,384^2 canvas, about a tenth of what they cost more than on a 64^2 one). Larger files keep small pages: a huge
# page is read from disk whole, 2 MB for one glimpse's corner, where the table does not stay in memory.
HUGE_PAGE_SHARE = 0.5


@dataclass(frozen=True)
class PhaseLayout:
    """Where entry ``(y, x)`` of a ``rows x cols`` summed-area table sits in a file of phase ``q``.

    A glimpse's scale of block side ``s`` reads the table at ``(y0 + i s, x0 + j s)``, i, j = 0..patch: laid out
    row by row, every ``i`` is another page of a wide table (13 pages per scale for 12x12 patches; each a TLB miss
    and a cache miss, which made a 16,384^2 canvas step 2-3x slower than a 64^2 one). Here the table is split
    into ``q * q`` phase planes (entries with ``y % q == a`` and ``x % q == b`` in plane ``(a, b)``, at
    ``(y // q, x // q)``), each cut into ``TILE x TILE`` tiles stored one after another: a scale whose ``s`` is
    ``q`` or ``2 q`` reads a 13 x 13 or 25 x 25 block of one plane, i.e. 1-4 pages. Offsets are separable,
    ``row_offsets(y) + col_offsets(x)``, and work on numpy and torch integers alike.
    """

    rows: int  # table rows, H + 1
    cols: int  # table columns, W + 1
    q: int = 1

    @property
    def tiles(self) -> tuple[int, int]:
        """Tiles per plane along y and x."""
        return -(-self.rows // self.q // TILE), -(-self.cols // self.q // TILE)

    @property
    def plane(self) -> int:
        """Entries per phase plane (whole tiles)."""
        tiles_y, tiles_x = self.tiles
        return tiles_y * tiles_x * TILE * TILE

    @property
    def size(self) -> int:
        """Entries per image and channel: every phase plane."""
        return self.q * self.q * self.plane

    def row_offsets(self, y: Any) -> Any:
        """The part of the offset of table row ``y`` (any integer array)."""
        r = y // self.q
        return (y % self.q) * (self.q * self.plane) + (r // TILE) * (self.tiles[1] * TILE * TILE) + (r % TILE) * TILE

    def col_offsets(self, x: Any) -> Any:
        """The part of the offset of table column ``x``."""
        c = x // self.q
        return (x % self.q) * self.plane + (c // TILE) * (TILE * TILE) + c % TILE

    def write(self, out: np.ndarray, band: np.ndarray, y0: int) -> None:
        """Store table rows ``y0 ..`` (``band``: C x rows x cols; ``y0`` a multiple of ``q * TILE``) into ``out``
        (C x size), one whole tile row of every plane at a time."""
        channels = band.shape[0]
        tiles_x = self.tiles[1]
        for a in range(self.q):
            for b in range(self.q):
                block = band[:, a :: self.q, b :: self.q]  # plane (a, b): rows y0 // q + k, columns 0 ..
                count = -(-block.shape[1] // TILE)
                if count == 0:
                    continue
                padded = np.zeros((channels, count * TILE, tiles_x * TILE), out.dtype)
                padded[:, : block.shape[1], : block.shape[2]] = block
                tiles = padded.reshape(channels, count, TILE, tiles_x, TILE).transpose(0, 1, 3, 2, 4)
                start = (a * self.q + b) * self.plane + (y0 // self.q // TILE) * tiles_x * TILE * TILE
                out[:, start : start + tiles.size // channels] = tiles.reshape(channels, -1)


@dataclass(frozen=True)
class PhaseTables:
    """The layout of a table file holding the phases ``phases`` one after another for every image and channel
    (``(N, C, size)``): ``row_offsets(q, y) + col_offsets(q, x)`` is where entry ``(y, x)`` of phase ``q`` sits
    in an image-channel block."""

    rows: int
    cols: int
    phases: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.phases or any(isinstance(q, bool) or not isinstance(q, int) or q < 1 for q in self.phases) \
                or len(set(self.phases)) != len(self.phases):
            raise ValueError(f"phases={self.phases!r} is not allowed: use distinct positive integers")

    @cached_property
    def layouts(self) -> dict[int, tuple[int, PhaseLayout]]:
        """Phase -> (offset of its copy in a block, its layout); made once, then looked up by every offset."""
        out, base = {}, 0
        for q in self.phases:
            layout = PhaseLayout(self.rows, self.cols, q)
            out[q] = base, layout
            base += layout.size
        return out

    @property
    def size(self) -> int:
        """Entries per image and channel: every phase's copy."""
        return sum(layout.size for _, layout in self.layouts.values())

    def row_offsets(self, q: int, y: Any) -> Any:
        base, layout = self.layouts[q]
        return base + layout.row_offsets(y)

    def col_offsets(self, q: int, x: Any) -> Any:
        return self.layouts[q][1].col_offsets(x)


class LargeImageDataset(ImageDataset):
    """The canvases of a folder written by ``write_large_canvases`` (or by you, in its layout), opened lazily."""

    def __init__(self, folder: str | os.PathLike, phase_copies: bool = True) -> None:
        """``phase_copies=False`` keeps one copy of the tables (phase 1 only: 4 bytes a pixel instead of 8 for 3-4
        scales, more pages per coarse glimpse): for tables that would otherwise not fit in memory, where every page
        a glimpse touches is a disk read."""
        if not isinstance(phase_copies, bool):
            raise ValueError(f"phase_copies={phase_copies!r} is not allowed: use True or False")
        self.folder = Path(folder)
        self.phase_copies = phase_copies
        meta_path = self.folder / "meta.json"
        if not meta_path.is_file():
            raise ValueError(f"{self.folder} is not a large-image folder: it has no meta.json (make one with "
                             "activevision.data.write_large_canvases)")
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
            raise ValueError(f"{images} is missing or not {n} x {height} x {width} x {channels} bytes as meta.json "
                             "says")
        if self.labels.shape != (n,) or self.labels.min() < 0 or self.labels.max() >= self.num_classes:
            raise ValueError(f"{self.folder / 'labels.npy'} must hold {n} labels in 0..{self.num_classes - 1}")
        self.images = np.memmap(images, np.uint8, "r", shape=(n, height, width, channels))
        self._tables: dict[tuple[int, ...], tuple[np.ndarray, PhaseTables]] = {}

    def __len__(self) -> int:
        return self.images.shape[0]

    def get(self, index: int) -> tuple[np.ndarray, int]:
        """Canvas ``index`` as a read-only memmap view (nothing is read until used) and its label."""
        return self.images[index], int(self.labels[index])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        raise ValueError(f"{self.folder} is a large-image world: it is never loaded whole (worlds read glimpses "
                         "from tables(); get(i) gives one canvas as a memmap)")

    def tables(self, phases: tuple[int, ...] = (1,)) -> tuple[np.ndarray, PhaseTables]:
        """Summed-area tables of every canvas, a copy per phase in ``phases`` (``PhaseLayout``; phase 1 alone
        without ``phase_copies``), in one file ``integral-q<phases>.i32``: a read-only array ``(N, C,
        layout.size)`` int32 (sums modulo 2^32) over a shared map of the file (huge pages asked for: ``_map``) and
        its ``PhaseTables`` (``.phases``: those it holds). Built on first use in one pass, band by band, into a
        temporary file renamed when complete (a killed build leaves no partial table)."""
        if not isinstance(phases, (tuple, list)):
            raise ValueError(f"phases={phases!r} is not allowed: use a tuple of distinct positive integers")
        layout = PhaseTables(self.shape[0] + 1, self.shape[1] + 1, tuple(phases) if self.phase_copies else (1,))
        if layout.phases not in self._tables:
            n, channels = len(self), self.shape[2]
            dtype = np.dtype(np.int32)
            path = self.folder / f"integral-q{'-'.join(map(str, layout.phases))}.i32"
            expected = n * channels * layout.size * dtype.itemsize
            if path.is_file() and path.stat().st_size != expected:
                raise ValueError(f"{path} has {path.stat().st_size} bytes, not {expected}: delete it to rebuild it")
            if not path.is_file():
                _build_tables(self.images, path, layout, dtype)
            # Read-only and shared: a writable private (copy-on-write) map of tables larger than memory is refused
            # by the kernel's overcommit check (measured: ENOMEM for 34 GB on a 24 GB machine).
            self._tables[layout.phases] = _map(path, dtype, (n, channels, layout.size))[0], layout
        return self._tables[layout.phases]

    def overview(self, index: int, max_side: int = 512) -> tuple[np.ndarray, int]:
        """Canvas ``index`` area-averaged by an integer factor ``f`` to at most ``max_side`` pixels per side
        (edge blocks average what they hold), read from the tables; returns ``(picture uint8, f)``."""
        height, width, channels = self.shape
        factor = max(1, -(-max(height, width) // max_side))
        if factor > MAX_BLOCK:
            least = -(-max(height, width) // MAX_BLOCK)
            raise ValueError(f"max_side={max_side} is not allowed for a {height} x {width} canvas: blocks of "
                             f"{factor} pixels exceed {MAX_BLOCK}; use max_side >= {least}")
        ys = np.minimum(np.arange(0, height + factor, factor), height)
        xs = np.minimum(np.arange(0, width + factor, factor), width)
        table, layout = next(iter(self._tables.values()), None) or self.tables()  # any holds phase 1
        offsets = layout.row_offsets(1, ys)[:, None] + layout.col_offsets(1, xs)[None, :]
        corners = table[index][:, offsets].astype(np.int64)
        sums = (corners[:, 1:, 1:] - corners[:, :-1, 1:] - corners[:, 1:, :-1] + corners[:, :-1, :-1]) & 0xFFFFFFFF
        area = np.diff(ys)[:, None] * np.diff(xs)[None, :]
        return np.round(sums / area).astype(np.uint8).transpose(1, 2, 0), factor


def _build_tables(images: np.ndarray, path: Path, layout: PhaseTables, dtype: np.dtype) -> None:
    """Write the summed-area tables of ``images`` (N, H, W, C) to ``path`` in ``layout``, a band of rows at a
    time (whole tile rows of every phase plane; about ``BAND_ELEMENTS`` entries, at least ``lcm(phases) * TILE``
    rows), each band stored into every phase's copy."""
    n, height, width, channels = images.shape
    temporary = path.with_name(f"{path.name}.partial-{os.getpid()}")
    out, mapping = _map(temporary, dtype, (n, channels, layout.size), write=True)
    step = math.lcm(*layout.phases) * TILE
    band = max(step, BAND_ELEMENTS // ((width + 1) * channels) // step * step)
    for i in range(n):
        carry = np.zeros((channels, width + 1), np.int64)  # the table's row above the band
        for y0 in range(0, height + 1, band):  # table rows y0 .. y1 - 1; row y sums image rows 0 .. y - 1
            y1 = min(y0 + band, height + 1)
            first = max(y0, 1)
            rows = images[i, first - 1 : y1 - 1].transpose(2, 0, 1).astype(np.int64)  # (C, b, W)
            sums = np.zeros((channels, y1 - y0, width + 1), np.int64)
            sums[:, first - y0 :, 1:] = rows.cumsum(axis=2).cumsum(axis=1) + carry[:, None, 1:]
            carry = sums[:, -1]
            for base, phase in layout.layouts.values():
                phase.write(out[i, :, base : base + phase.size], sums, y0)  # wraps modulo 2^32
    mapping.flush()
    del out
    mapping.close()
    os.replace(temporary, path)


def _map(path: Path, dtype: np.dtype, shape: tuple[int, ...], write: bool = False) -> tuple[np.ndarray, mmap.mmap]:
    """``path`` as an array ``shape`` (read-only, or created zeroed with ``write``) on a shared map, with huge
    pages asked for when the file is at most ``HUGE_PAGE_SHARE`` of physical memory."""
    size = math.prod(shape) * dtype.itemsize
    with open(path, "w+b" if write else "rb") as file:
        if write:
            file.truncate(size)
        mapping = mmap.mmap(file.fileno(), size, access=mmap.ACCESS_WRITE if write else mmap.ACCESS_READ)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    if hasattr(mmap, "MADV_HUGEPAGE") and size <= HUGE_PAGE_SHARE * memory:
        mapping.madvise(mmap.MADV_HUGEPAGE)
    return np.frombuffer(mapping, dtype).reshape(shape), mapping


def write_large_canvases(folder: str | os.PathLike, base: ImageDataset, n: int, canvas: int | tuple[int, int],
                         n_distractors: int = 0, seed: int = 0, classes: list[str] | None = None) -> LargeImageDataset:
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
    (temporary / "meta.json").write_text(json.dumps({"format": FORMAT, "shape": [n, height, width, channels],
                                                     "classes": names, "seed": seed, "n_distractors": n_distractors}))
    try:
        os.replace(temporary, target)
    except OSError:  # another process finished the same folder first: keep theirs
        shutil.rmtree(temporary, ignore_errors=True)
        if not (target / "meta.json").is_file():
            raise
    return LargeImageDataset(target)
