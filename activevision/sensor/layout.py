"""The layout of the summed-area tables of huge images: where entry ``(y, x)`` of an image's table sits, so that
the reads of one glimpse touch few tiles of memory.

``TableLayout`` is the interface ``TorchSensor.wrap`` reads tables through; ``PhaseTables`` (phase planes cut into
tiles, each in one or two row-shifted copies) is the one the on-disk tables of ``activevision.sensor.table_files``
use. Sums are stored modulo 2^16 (int16) or 2^32 (int32): a block's sum, the four-corner difference taken modulo
the same, is exact for every block of up to ``EXACT_BLOCK[dtype]``^2 pixels of uint8 images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import numpy as np

__all__ = [
    "TableLayout",
    "PhaseLayout",
    "PhaseTables",
    "MAX_BLOCK",
    "SHORT_BLOCK",
    "EXACT_BLOCK",
    "TILE_ROWS",
    "TILE_COLS",
]

MAX_BLOCK = math.isqrt((2**32 - 1) // 255)  # 4104: the widest square block whose sum is exact modulo 2^32
SHORT_BLOCK = math.isqrt((2**16 - 1) // 255)  # 16: the widest square block whose sum is exact modulo 2^16
# Table types, narrowest first, and the widest square block whose sum each holds exactly (modulo 2^bits).
EXACT_BLOCK: dict[np.dtype, int] = {np.dtype(np.int16): SHORT_BLOCK, np.dtype(np.int32): MAX_BLOCK}
TILE_ROWS, TILE_COLS = 64, 32  # a tile of table entries: 4 KB of int16 (one page), 8 KB of int32


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


class TableLayout(Protocol):
    """Where the entries of an image-channel block of summed-area tables sit, per table phase ``q`` (a plane of
    the entries ``q`` apart; a scale reads the largest phase held up to its own block side).

    Offsets are separable: entry ``(y, x)`` of phase ``q`` in copy ``c`` sits at ``row_offsets(q, y, c) +
    col_offsets(q, x)``; ``copy(q, y)`` names the copy to read a block centred on row ``y`` from. ``periods(q)``
    = ``((rows, row_step), (cols, col_step))``: ``rows`` rows further down (``cols`` columns right) an entry sits
    ``row_step`` (``col_step``) further on, in the same copy, so a sensor tables one period plus a block. Every
    method takes numpy (or torch) integer arrays as well as integers.
    """

    @property
    def phases(self) -> tuple[int, ...]:
        """The phases the tables hold (phase 1 among them)."""
        ...

    def copy(self, q: int, y: Any) -> Any: ...

    def row_offsets(self, q: int, y: Any, copy: Any = 0) -> Any: ...

    def col_offsets(self, q: int, x: Any) -> Any: ...

    def periods(self, q: int) -> tuple[tuple[int, int], tuple[int, int]]: ...


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
