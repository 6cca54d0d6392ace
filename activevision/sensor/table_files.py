"""The summed-area tables of a ``LargeImageDataset``: built once on first use next to its images, mapped read-only
and shared, read by ``TorchSensor.wrap`` through their ``PhaseTables`` layout (``activevision.sensor.layout``).

A folder's tables live in ``integral-v2-q<phases>-r<copies>.i16`` (or ``.i32``): the (H + 1) x (W + 1) tables of
every image and channel, the sums modulo 2^16 (2^32). A world whose coarsest block is at most ``SHORT_BLOCK``
pixels (4 scales of factor 2: 8) reads 16-bit tables: half the bytes of 32-bit ones, so more of a glimpse per
cache line and page. ``overview`` gives a small picture of a canvas for rendering, also from the tables.
"""

from __future__ import annotations

import math
import mmap
import os
from pathlib import Path

import numpy as np

from activevision.data.large import LargeImageDataset
from activevision.sensor.layout import EXACT_BLOCK, MAX_BLOCK, TILE_ROWS, PhaseTables, _ceil

__all__ = ["SummedAreaTables"]

BAND_ELEMENTS = 1 << 24  # table entries built per pass (128 MB of int64): memory stays bounded at any canvas size
# Table files up to this share of physical memory are mapped with huge pages where the kernel maps files so (Linux
# with transparent huge pages in "madvise" mode and large page-cache folios, e.g. ext4 on 6.x): one TLB entry per
# 2 MB instead of per 4 KB page (faster random reads: benchmarks/results/design_measurements.md). Larger files keep
# small pages: a huge page is read from disk whole, 2 MB for one glimpse's corner, where the table does not stay in
# memory.
HUGE_PAGE_SHARE = 0.5


class SummedAreaTables:
    """The tables of one ``LargeImageDataset`` (``phase_copies`` as it says), each opened once."""

    def __init__(self, dataset: LargeImageDataset) -> None:
        self.dataset = dataset
        self._open: dict[tuple[tuple[int, ...], np.dtype], tuple[np.ndarray, PhaseTables]] = {}

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
            self.dataset.shape[0] + 1,
            self.dataset.shape[1] + 1,
            tuple(phases) if self.dataset.phase_copies else (1,),
            copies=2 if self.dataset.phase_copies else 1,
        )
        dtype = next(kind for kind, widest in EXACT_BLOCK.items() if block <= widest)
        if (layout.phases, dtype) not in self._open:
            n, channels = len(self.dataset), self.dataset.shape[2]
            name = f"integral-v2-q{'-'.join(map(str, layout.phases))}-r{layout.copies}.i{dtype.itemsize * 8}"
            path = self.dataset.folder / name
            expected = n * channels * layout.size * dtype.itemsize
            if path.is_file() and path.stat().st_size != expected:
                raise ValueError(f"{path} has {path.stat().st_size} bytes, not {expected}: delete it to rebuild it")
            if not path.is_file():
                _build_tables(self.dataset.images, path, layout, dtype)
            # Read-only and shared: a writable private (copy-on-write) map of tables larger than memory is refused
            # by the kernel's overcommit check.
            self._open[layout.phases, dtype] = _map(path, dtype, (n, channels, layout.size))[0], layout
        return self._open[layout.phases, dtype]

    def overview(self, index: int, max_side: int = 512) -> tuple[np.ndarray, int]:
        """Canvas ``index`` area-averaged by an integer factor ``f`` to at most ``max_side`` pixels per side
        (edge blocks average what they hold), read from the tables; returns ``(picture uint8, f)``."""
        height, width, channels = self.dataset.shape
        factor = max(1, _ceil(max(height, width), max_side))
        table, layout = next(iter(self._open.values()), None) or self.tables()  # any holds phase 1, copy 0
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
