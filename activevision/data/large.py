"""Canvases too large to hold in memory, read lazily: the images of a world as a uint8 memmap in a folder, with
their summed-area tables (built once on first use, kept next to them) from which a glimpse at any scale costs
``(patch + 1)^2`` reads per scale and channel, whatever the canvas size.

A folder holds ``meta.json`` (shape, classes), ``labels.npy``, ``images.u8`` (N x H x W x C uint8, C-order) and,
after the first world over it, its tables ``integral-v2-q<phases>-r<copies>.i16`` (or ``.i32``): the (H + 1) x
(W + 1) summed-area tables of every image and channel, the sums modulo 2^16 (2^32), laid out so that the reads of
one glimpse touch few tiles of memory (``PhaseLayout``, ``PhaseTables``). A block's sum is the usual four-corner
difference taken modulo 2^16 (2^32): exact for every block of up to ``SHORT_BLOCK``^2 pixels (255 * 16^2 < 2^16)
in 16-bit tables, up to ``MAX_BLOCK``^2 (255 * 4104^2 < 2^32) in 32-bit ones. A world whose coarsest block is at
most 16 pixels (4 scales of factor 2: 8) reads 16-bit tables: half the bytes of 32-bit ones, so more of a glimpse
per cache line and page. Only the pages a glimpse touches are read; ``overview`` gives a small picture of a canvas
for rendering, also from the tables.
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
SHORT_BLOCK = math.isqrt((2**16 - 1) // 255)  # 16: the widest square block whose sum is exact modulo 2^16
# Table types, narrowest first, and the widest square block whose sum each holds exactly (modulo 2^bits).
EXACT_BLOCK = {np.dtype(np.int16): SHORT_BLOCK, np.dtype(np.int32): MAX_BLOCK}
TILE_ROWS, TILE_COLS = 64, 32  # a tile of table entries: 4 KB of int16 (one page), 8 KB of int32
# Table files up to this share of physical memory are mapped with huge pages where the kernel maps files so (Linux
# with transparent huge pages in "madvise" mode and large page-cache folios, e.g. ext4 on 6.x): one TLB entry per
# 2 MB instead of per 4 KB page (faster random reads: benchmarks/results/design_measurements.md). Larger files keep
# small pages: a huge page is read from disk whole, 2 MB for one glimpse's corner, where the table does not stay in
# memory.
HUGE_PAGE_SHARE = 0.5


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class PhaseLayout:
    """Where entry ``(y, x)`` of a ``rows x cols`` summed-area table sits in the region of phase ``q``.

    A glimpse's scale of block side ``s`` reads the table at ``(y0 + i s, x0 + j s)``, i, j = 0..patch: laid out
    row by row, every ``i`` is another page of a wide table (each a TLB and a cache miss). Here the table is split
    into ``q * q`` phase planes (entries with ``y % q == a`` and ``x % q == b`` in plane ``(a, b)``, at plane row
    and column ``(y // q, x // q)``), each cut into ``TILE_ROWS x TILE_COLS`` tiles stored one after another, row by
    row inside a tile: a scale whose ``s`` is ``q`` or ``2 q`` reads a 13 x 13 or 25 x 25 block of one plane.
    With ``copies=2`` each plane is stored twice, the second copy's tile rows shifted down by half a tile, and
    ``copy(y)`` names the copy in which plane rows ``y // q - 16 .. y // q + 16`` lie in one tile row: a block
    read around row ``y`` never spans two tile rows (two rows of tiles are a whole row of the canvas apart).
    Offsets are separable, ``row_offsets(y, copy) + col_offsets(x)``, and work on numpy and torch integers alike.
    """

    rows: int  # table rows, H + 1
    cols: int  # table columns, W + 1
    q: int = 1
    copies: int = 1

    @property
    def tiles(self) -> tuple[int, int]:
        """Tiles per plane copy along y (room for the shifted copy's rows) and x."""
        shift = (self.copies - 1) * TILE_ROWS // self.copies
        return _ceil(_ceil(self.rows, self.q) + shift, TILE_ROWS), _ceil(_ceil(self.cols, self.q), TILE_COLS)

    @property
    def plane(self) -> int:
        """Entries per copy of a phase plane (whole tiles)."""
        tiles_y, tiles_x = self.tiles
        return tiles_y * tiles_x * TILE_ROWS * TILE_COLS

    @property
    def size(self) -> int:
        """Entries per image and channel: every copy of every phase plane."""
        return self.q * self.q * self.copies * self.plane

    def copy(self, y: Any) -> Any:
        """The copy to read a block centred on table row ``y`` from (any integer array; 0 with one copy)."""
        if self.copies == 1:
            return y * 0
        return (y // self.q + 3 * TILE_ROWS // 4) // (TILE_ROWS // 2) % 2

    def row_offsets(self, y: Any, copy: Any = 0) -> Any:
        """The part of the offset of table row ``y`` in copy ``copy``."""
        r = y // self.q + copy * (TILE_ROWS // self.copies)
        return (
            ((y % self.q) * self.q * self.copies + copy) * self.plane
            + (r // TILE_ROWS) * (self.tiles[1] * TILE_ROWS * TILE_COLS)
            + (r % TILE_ROWS) * TILE_COLS
        )

    def col_offsets(self, x: Any) -> Any:
        """The part of the offset of table column ``x``."""
        c = x // self.q
        return (x % self.q) * self.copies * self.plane + (c // TILE_COLS) * (TILE_ROWS * TILE_COLS) + c % TILE_COLS

    @property
    def periods(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((rows, row_step), (cols, col_step))``: ``rows`` table rows further down (``cols`` columns further
        right) an entry sits ``row_step`` (``col_step``) entries further on, in the same copy (``copy`` repeats
        every ``rows`` rows). A sensor tables the offsets of one period plus a block and adds whole periods:
        a few KB that stay in the core's cache, where offsets of every row and column of a wide canvas (hundreds
        of KB) are evicted by the glimpse's own reads."""
        return (self.q * TILE_ROWS, self.tiles[1] * TILE_ROWS * TILE_COLS), (self.q * TILE_COLS, TILE_ROWS * TILE_COLS)

    def write(self, out: np.ndarray, band: np.ndarray, y0: int) -> None:
        """Store table rows ``y0 ..`` (``band``: C x rows x cols; ``y0`` a multiple of ``q``) into every copy in
        ``out`` (C x size), a tile row at a time (entries outside the table stay as they are: zero)."""
        channels = band.shape[0]
        tiles_x = self.tiles[1]
        whole_row = tiles_x * TILE_ROWS * TILE_COLS  # entries of one tile row
        for a in range(self.q):
            for b in range(self.q):
                block = band[:, a :: self.q, b :: self.q]  # plane (a, b): plane rows y0 // q + k, columns 0 ..
                count = block.shape[1]
                if count == 0:
                    continue
                padded = np.zeros((channels, count, tiles_x * TILE_COLS), out.dtype)
                padded[:, :, : block.shape[2]] = block  # cast: wraps modulo 2^16 or 2^32
                for copy in range(self.copies):
                    start = ((a * self.q + b) * self.copies + copy) * self.plane
                    first = y0 // self.q + copy * (TILE_ROWS // self.copies)
                    k = 0
                    while k < count:  # plane rows first + k .. in the tile row that holds them
                        tile_row, inside = divmod(first + k, TILE_ROWS)
                        n = min(TILE_ROWS - inside, count - k)
                        at = start + tile_row * whole_row
                        tiles = out[:, at : at + whole_row].reshape(channels, tiles_x, TILE_ROWS, TILE_COLS)
                        tiles[:, :, inside : inside + n] = (
                            padded[:, k : k + n].reshape(channels, n, tiles_x, TILE_COLS).transpose(0, 2, 1, 3)
                        )
                        k += n


@dataclass(frozen=True)
class PhaseTables:
    """The layout of a table file holding the phases ``phases`` (each in ``copies`` copies) one after another for
    every image and channel (``(N, C, size)``): ``row_offsets(q, y, copy) + col_offsets(q, x)`` is where entry
    ``(y, x)`` of phase ``q`` sits in an image-channel block, ``copy(q, y)`` the copy to read around row ``y``,
    ``periods(q)`` how the offsets repeat (``PhaseLayout.periods``)."""

    rows: int
    cols: int
    phases: tuple[int, ...]
    copies: int = 1

    def __post_init__(self) -> None:
        if (
            not self.phases
            or any(isinstance(q, bool) or not isinstance(q, int) or q < 1 for q in self.phases)
            or len(set(self.phases)) != len(self.phases)
        ):
            raise ValueError(f"phases={self.phases!r} is not allowed: use distinct positive integers")
        if self.copies not in (1, 2):
            raise ValueError(f"copies={self.copies!r} is not allowed: use 1 or 2")

    @cached_property
    def layouts(self) -> dict[int, tuple[int, PhaseLayout]]:
        """Phase -> (offset of its region in a block, its layout); made once, then looked up by every offset."""
        out, base = {}, 0
        for q in self.phases:
            layout = PhaseLayout(self.rows, self.cols, q, self.copies)
            out[q] = base, layout
            base += layout.size
        return out

    @property
    def size(self) -> int:
        """Entries per image and channel: every phase's region."""
        return sum(layout.size for _, layout in self.layouts.values())

    def copy(self, q: int, y: Any) -> Any:
        return self.layouts[q][1].copy(y)

    def row_offsets(self, q: int, y: Any, copy: Any = 0) -> Any:
        base, layout = self.layouts[q]
        return base + layout.row_offsets(y, copy)

    def col_offsets(self, q: int, x: Any) -> Any:
        return self.layouts[q][1].col_offsets(x)

    def periods(self, q: int) -> tuple[tuple[int, int], tuple[int, int]]:
        return self.layouts[q][1].periods


class LargeImageDataset(ImageDataset):
    """The canvases of a folder written by ``write_large_canvases`` (or by you, in its layout), opened lazily."""

    def __init__(self, folder: str | os.PathLike, phase_copies: bool = True) -> None:
        """``phase_copies=False`` keeps one copy of the tables (phase 1 only, not shifted: 2 or 4 bytes a pixel
        instead of 8 or 16 for 3-4 scales, more tiles per coarse glimpse): for tables that would otherwise not fit in
        memory, where every page a glimpse touches is a disk read."""
        if not isinstance(phase_copies, bool):
            raise ValueError(f"phase_copies={phase_copies!r} is not allowed: use True or False")
        self.folder = Path(folder)
        self.phase_copies = phase_copies
        meta_path = self.folder / "meta.json"
        if not meta_path.is_file():
            raise ValueError(
                f"{self.folder} is not a large-image folder: it has no meta.json (make one with "
                "activevision.data.write_large_canvases)"
            )
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
            raise ValueError(
                f"{images} is missing or not {n} x {height} x {width} x {channels} bytes as meta.json says"
            )
        if self.labels.shape != (n,) or self.labels.min() < 0 or self.labels.max() >= self.num_classes:
            raise ValueError(f"{self.folder / 'labels.npy'} must hold {n} labels in 0..{self.num_classes - 1}")
        self.images = np.memmap(images, np.uint8, "r", shape=(n, height, width, channels))
        self._tables: dict[tuple[tuple[int, ...], np.dtype], tuple[np.ndarray, PhaseTables]] = {}

    def __len__(self) -> int:
        return self.images.shape[0]

    def get(self, index: int) -> tuple[np.ndarray, int]:
        """Canvas ``index`` as a read-only memmap view (nothing is read until used) and its label."""
        return self.images[index], int(self.labels[index])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        raise ValueError(
            f"{self.folder} is a large-image world: it is never loaded whole (worlds read glimpses "
            "from tables(); get(i) gives one canvas as a memmap)"
        )

    def tables(self, phases: tuple[int, ...] = (1,), block: int = MAX_BLOCK) -> tuple[np.ndarray, PhaseTables]:
        """Summed-area tables of every canvas for glimpses whose blocks are at most ``block`` pixels wide: int16
        (sums modulo 2^16) when ``block <= SHORT_BLOCK``, else int32 (modulo 2^32). The phases ``phases``, each in
        two row-shifted copies (``PhaseLayout``; phase 1 alone, one copy, without ``phase_copies``), in one file
        ``integral-v2-q<phases>-r<copies>.i16`` (``.i32``): a read-only array ``(N, C, layout.size)`` over a shared
        map of the file (huge pages asked for: ``_map``) and its ``PhaseTables`` (``.phases``: those it holds).
        Built on first use in one pass, band by band, into a temporary file renamed when complete (a killed build
        leaves no partial table)."""
        if not isinstance(phases, (tuple, list)):
            raise ValueError(f"phases={phases!r} is not allowed: use a tuple of distinct positive integers")
        if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or not 1 <= block <= MAX_BLOCK:
            raise ValueError(
                f"block={block!r} is not allowed: use an integer in [1, {MAX_BLOCK}] (the widest block "
                "whose sum 32-bit tables hold exactly)"
            )
        layout = PhaseTables(
            self.shape[0] + 1,
            self.shape[1] + 1,
            tuple(phases) if self.phase_copies else (1,),
            copies=2 if self.phase_copies else 1,
        )
        dtype = next(kind for kind, widest in EXACT_BLOCK.items() if block <= widest)
        if (layout.phases, dtype) not in self._tables:
            n, channels = len(self), self.shape[2]
            name = f"integral-v2-q{'-'.join(map(str, layout.phases))}-r{layout.copies}.i{dtype.itemsize * 8}"
            path = self.folder / name
            expected = n * channels * layout.size * dtype.itemsize
            if path.is_file() and path.stat().st_size != expected:
                raise ValueError(f"{path} has {path.stat().st_size} bytes, not {expected}: delete it to rebuild it")
            if not path.is_file():
                _build_tables(self.images, path, layout, dtype)
            # Read-only and shared: a writable private (copy-on-write) map of tables larger than memory is refused
            # by the kernel's overcommit check.
            self._tables[layout.phases, dtype] = _map(path, dtype, (n, channels, layout.size))[0], layout
        return self._tables[layout.phases, dtype]

    def overview(self, index: int, max_side: int = 512) -> tuple[np.ndarray, int]:
        """Canvas ``index`` area-averaged by an integer factor ``f`` to at most ``max_side`` pixels per side
        (edge blocks average what they hold), read from the tables; returns ``(picture uint8, f)``."""
        height, width, channels = self.shape
        factor = max(1, _ceil(max(height, width), max_side))
        table, layout = next(iter(self._tables.values()), None) or self.tables()  # any holds phase 1, copy 0
        # Corners every ``factor`` pixels and, between them, every ``limit``: each fine block's sum is exact modulo
        # the table's 2^16 or 2^32, and a picture block is the sum of its fine blocks.
        limit, mask = EXACT_BLOCK[table.dtype], (1 << 8 * table.dtype.itemsize) - 1
        edges = []
        for side in (height, width):
            coarse = np.arange(0, side, factor)
            fine = np.union1d(coarse, np.arange(0, side, min(factor, limit)))
            edges.append((np.append(fine, side), np.searchsorted(fine, coarse), np.diff(np.append(coarse, side))))
        (ys, rows, tall), (xs, cols, wide) = edges
        offsets = layout.row_offsets(1, ys)[:, None] + layout.col_offsets(1, xs)[None, :]
        corners = table[index][:, offsets].astype(np.int64)
        fine = (corners[:, 1:, 1:] - corners[:, :-1, 1:] - corners[:, 1:, :-1] + corners[:, :-1, :-1]) & mask
        sums = np.add.reduceat(np.add.reduceat(fine, rows, axis=1), cols, axis=2)
        return np.round(sums / (tall[:, None] * wide[None, :])).astype(np.uint8).transpose(1, 2, 0), factor


def _build_tables(images: np.ndarray, path: Path, layout: PhaseTables, dtype: np.dtype) -> None:
    """Write the summed-area tables of ``images`` (N, H, W, C) to ``path`` in ``layout``, a band of rows at a
    time (whole tile rows of every phase plane; about ``BAND_ELEMENTS`` entries, at least ``lcm(phases) *
    TILE_ROWS`` rows), each band stored into every copy of every phase."""
    n, height, width, channels = images.shape
    temporary = path.with_name(f"{path.name}.partial-{os.getpid()}")
    out, mapping = _map(temporary, dtype, (n, channels, layout.size), write=True)
    step = math.lcm(*layout.phases) * TILE_ROWS
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
                phase.write(out[i, :, base : base + phase.size], sums, y0)  # wraps modulo 2^16 or 2^32
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


def write_large_canvases(
    folder: str | os.PathLike,
    base: ImageDataset,
    n: int,
    canvas: int | tuple[int, int],
    n_distractors: int = 0,
    seed: int = 0,
    classes: list[str] | None = None,
) -> LargeImageDataset:
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
    (temporary / "meta.json").write_text(
        json.dumps(
            {
                "format": FORMAT,
                "shape": [n, height, width, channels],
                "classes": names,
                "seed": seed,
                "n_distractors": n_distractors,
            }
        )
    )
    try:
        os.replace(temporary, target)
    except OSError:  # another process finished the same folder first: keep theirs
        shutil.rmtree(temporary, ignore_errors=True)
        if not (target / "meta.json").is_file():
            raise
    return LargeImageDataset(target)
