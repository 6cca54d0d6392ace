"""The torch backend: batched glimpses on any device, the batched env's and the agents' sensor (exact integer
integral images, four corners read per block in one batched gather for thousands of envs), and the context of a
batch of images."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import torch

from activevision.sensor.geometry import GlimpseGeometry, PhaseOffsets, PreparedImages, _floor, area_weights
from activevision.sensor.layout import TableLayout

__all__ = ["TorchSensor", "context_batch", "context_weights", "WIDER", "GATHER_GROUP", "MIN_PHASE_COLUMNS"]

# Tables whose sums are stored modulo 2^16 or 2^32: the type their differences are taken in, and the mask.
WIDER = {torch.int16: (torch.int32, 0xFFFF), torch.int32: (torch.int64, 0xFFFFFFFF)}
# Glimpses whose table reads are interleaved (``TorchSensor.glimpse``).
GATHER_GROUP = 16
# Table phases (``TorchSensor.phases``) are used only where a phase plane is at least this many entries wide.
MIN_PHASE_COLUMNS = 128


def context_weights(
    height: int, width: int, size: int, limit: int = 0, device: str | torch.device = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``area_weights`` of rows ``(2 limit + 1, size, H)`` and columns ``(2 limit + 1, size, W)`` float32, one
    matrix per shift ``-limit .. limit``: the context of an image moved by ``(dx, dy)`` is ``rows[dy + limit] @
    image @ cols[dx + limit]^T``."""
    rows = np.stack([area_weights(height, size, d) for d in range(-limit, limit + 1)])
    cols = np.stack([area_weights(width, size, d) for d in range(-limit, limit + 1)])
    return (
        torch.as_tensor(rows, dtype=torch.float32, device=device),
        torch.as_tensor(cols, dtype=torch.float32, device=device),
    )


def context_batch(images: torch.Tensor, size: int, shift: torch.Tensor | None = None, limit: int = 0) -> torch.Tensor:
    """``context_image`` of a batch ``(n, H, W, C)`` at once (any device), each image first moved by its
    ``shift`` row ``(dx, dy)`` with ``|dx|, |dy| <= limit``: ``(n, C, size, size)`` float32."""
    _, height, width, _ = images.shape
    device = images.device
    rows, cols = context_weights(height, width, size, limit, device)
    if shift is None:
        shift = torch.zeros((len(images), 2), dtype=torch.long, device=device)
    values = images.float() * (1.0 / 255.0 if images.dtype == torch.uint8 else 1.0)
    return torch.einsum("nsh,nhwc,ntw->ncst", rows[shift[:, 1] + limit], values, cols[shift[:, 0] + limit])


class TorchSensor:
    """Batched glimpses on any torch device; the batched env's and the agents' backend.

    ``prepare(images)`` turns a ``(N, H, W, C)`` uint8 or float tensor into integral images once; ``glimpse``
    then reads ``(B, scales, C, p, p)`` glimpses for B locations from images chosen by ``index``.
    """

    def __init__(self, patch: int, scales: int, scale_factor: int = 2, device: str | torch.device = "cpu") -> None:
        self.geometry = GlimpseGeometry(patch, scales, scale_factor)
        self.device = torch.device(device)
        self._steps = torch.as_tensor(self.geometry.steps(), device=self.device)[None, :, None, :]  # (1, S, 1, p+1)
        self._half = torch.as_tensor(self.geometry.sizes / 2.0 - 0.5, device=self.device)[None, :, None]  # (1, S, 1)
        area = torch.as_tensor(self.geometry.factors, dtype=torch.float64, device=self.device) ** 2
        self._area = area[None, :, None, None, None]
        self._byte_divisor = (self._area * 255.0).float()  # uint8 sums are divided in float32: x / x is exactly 1
        self._frames: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self._starts: dict[tuple[int, int], torch.Tensor] = {}

    def _frame_constants(self, frame: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W / 2, H / 2)`` (float64) and ``(W, H)`` (int64, shaped to clip block edges) of an ``H x W`` frame,
        made once per frame size."""
        if frame not in self._frames:
            height, width = frame
            self._frames[frame] = (
                torch.tensor([width / 2.0, height / 2.0], dtype=torch.float64, device=self.device),
                torch.tensor([[width], [height]], device=self.device),
            )
        return self._frames[frame]

    def _channel_starts(self, channels: int, length: int) -> torch.Tensor:
        """Where each channel's table begins in an image's block, ``(C, 1)``, made once per table shape."""
        if (channels, length) not in self._starts:
            self._starts[channels, length] = torch.arange(0, channels * length, length, device=self.device)[:, None]
        return self._starts[channels, length]

    def prepare(self, images: torch.Tensor) -> PreparedImages:
        """Integral images of ``(N, H, W, C)`` images, as a flat ``(N, C, (H+1)*(W+1))`` table on the device.

        int64 for uint8 input (exact sums), float64 otherwise.
        """
        if images.ndim != 4:
            raise ValueError(f"images must be N x H x W x C, got shape {tuple(images.shape)}")
        images = images.to(self.device)
        integer = images.dtype == torch.uint8
        dtype = torch.int64 if integer else torch.float64
        n, height, width, channels = images.shape
        table = torch.zeros((n, channels, height + 1, width + 1), dtype=dtype, device=self.device)
        table[:, :, 1:, 1:] = images.permute(0, 3, 1, 2).to(dtype).cumsum(2).cumsum(3)
        divisor = self._byte_divisor if integer else self._area
        return PreparedImages(table.reshape(n, channels, -1), divisor, height, width)

    def phases(self, width: int) -> tuple[int, ...]:
        """The table phase each scale reads (``wrap``) for images ``width`` pixels wide: scales 0, 1 phase 1,
        scales 2, 3 phase ``factor^2``, ..., so that every scale reads a block of one phase plane with entries 1 or
        ``factor`` apart; phases whose planes would be narrower than ``MIN_PHASE_COLUMNS`` are not used (a
        table that narrow is a few pages per row anyway: its scales read the widest plane allowed)."""
        factors = [int(f) for f in self.geometry.factors]
        allowed = [f for f in factors if f == 1 or (width + 1) // f >= MIN_PHASE_COLUMNS]
        return tuple(max(q for q in allowed if q <= factors[k - k % 2]) for k in range(len(factors)))

    def wrap(
        self, tables: Callable[..., tuple[torch.Tensor | np.ndarray, TableLayout]], height: int, width: int
    ) -> PreparedImages:
        """The prepared form of summed-area tables of uint8 images built elsewhere with a copy per phase (e.g.
        ``SummedAreaTables.tables``: a read-only map of a file that ``glimpse`` then reads only where it looks,
        wrapped without a copy, never written). ``tables(phases, block=b)`` gives ``(table (N, C, size), layout)``
        for blocks up to ``b`` pixels wide: int16 (sums modulo 2^16, exact for blocks up to 16^2 pixels), int32
        (modulo 2^32, up to 4104^2) or int64, laid out as ``layout`` (a ``TableLayout``) says. Each phase's offsets
        and copies are tabled here for one period plus a block: a glimpse adds the whole periods before its block
        and looks up the rest, in tables of a few KB that stay in cache at any canvas size."""
        wanted = self.phases(width)
        table, layout = tables(tuple(dict.fromkeys(wanted)), block=int(self.geometry.factors[-1]))
        phases = [max(q for q in layout.phases if q <= want) for want in wanted]  # those the tables hold
        if isinstance(table, np.ndarray):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                table = torch.from_numpy(table)
        if table.dtype not in (torch.int16, torch.int32, torch.int64) or table.ndim != 3:
            raise ValueError(
                f"table of dtype {table.dtype} and shape {tuple(table.shape)} is not allowed: use int16, "
                "int32 or int64 (N, C, size)"
            )
        held = list(dict.fromkeys(phases))  # one offset table per phase read; scales sharing a phase share it
        periods = np.array([layout.periods(q) for q in held], dtype=np.int64)  # (phases, (y, x), (period, step))
        if (periods < 1).any():
            raise ValueError(f"layout periods {periods.tolist()} are not allowed: use positive integers")
        # A block's edges lie within the span of its scale's steps after its first edge; that edge is taken
        # modulo the period, so one period plus the widest span covers every edge looked up.
        reach = int(self.geometry.steps()[:, -1].max()) + 1
        ys, xs = np.arange(int(periods[:, 0, 0].max()) + reach), np.arange(int(periods[:, 1, 0].max()) + reach)
        copies = np.stack([layout.copy(q, ys) for q in held])  # (phases, rows)
        count = int(copies.max()) + 1
        rows = np.stack([[layout.row_offsets(q, ys, c) for c in range(count)] for q in held])  # (phases, copies, rows)
        cols = np.stack([layout.col_offsets(q, xs) for q in held])  # (phases, cols)
        dtype = torch.int32 if int(rows.max()) + int(cols.max()) < 2**31 else torch.int64
        which = np.array([held.index(q) for q in phases])
        base = np.stack([rows.size + which * len(xs), which * count * len(ys)], axis=-1)[None]  # (1, S, 2)
        flat = torch.as_tensor(np.concatenate([rows.ravel(), cols.ravel()]), dtype=dtype, device=self.device)
        lookups = [base, periods[which][None, :, ::-1], copies.ravel() * len(ys), which[None] * len(ys)]
        lookups = [torch.as_tensor(np.ascontiguousarray(part), device=self.device) for part in lookups]
        return PreparedImages(table, self._byte_divisor, height, width, PhaseOffsets(flat, *lookups))

    def glimpse(
        self,
        prepared: PreparedImages,
        loc: torch.Tensor,
        index: torch.Tensor | None = None,
        offset: torch.Tensor | None = None,
        frame: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Glimpses at ``loc`` (B, 2) of images ``index`` (B,) of a prepared table (images 0..B-1 if None).

        Reads only the ``(patch + 1)^2`` table entries per scale and channel that it needs, with one gather.
        With ``frame = (H, W)`` and ``offset`` (B, 2) pixels ``(x, y)``, the location is in an H x W frame
        (a blank canvas) where each image sits at its offset: the glimpse of that canvas, at a cost that
        does not depend on the canvas size.
        """
        table, height, width = prepared.table, prepared.height, prepared.width
        frame = frame or (height, width)
        # The corner rule of GlimpseGeometry.corners, for x and y at once (the same float64 operations):
        # (B, 1, 2) centres in pixels minus each scale's half size, floored; then the p + 1 block edges.
        scale, frame_limit = self._frame_constants(frame)
        corner = _floor(
            (loc.to(device=self.device, dtype=torch.float64)[:, None, :] + 1.0) * scale - self._half
        ).long()  # (B, S, 2)
        edges = corner[..., None] + self._steps  # (B, S, 2, p+1): x edges, then y edges
        if offset is not None:  # edges clipped to the frame (zero outside it), then moved into the image
            edges = torch.minimum(edges.clamp_(min=0), frame_limit) - offset.to(self.device).long()[:, None, :, None]
        edges = torch.minimum(edges.clamp_(min=0), self._frame_constants((height, width))[1])
        index = torch.arange(loc.shape[0], device=self.device) if index is None else index.to(self.device)
        channels, length = table.shape[1], table.shape[2]
        start = (index.long() * (channels * length))[:, None]  # (B, 1): where each glimpse's image begins
        if prepared.offsets is not None:  # whole periods before each block added, the rest looked up per phase
            where = prepared.offsets
            # Whole periods before each block's first edge (edges rise along a block: the first is the lowest),
            # in rows and columns skipped ([..., 0]) and in entries ([..., 1]), (B, S, 2, 2).
            moved = (edges[..., :1] // where.periods[..., :1]) * where.periods
            start = start + moved[..., 1].sum(-1)  # (B, S)
            middle = edges[:, :, 1, self.geometry.patch // 2] - moved[:, :, 1, 0]  # a block's copy: by its middle row
            base = where.base - moved[..., 0]
            base[..., 1] += where.copies[where.copy_base + middle]
            # Every edge's offset in one gather from the flat table (cheaper than indexing by phase, copy and edge).
            looked = where.table.index_select(0, (base[..., None] + edges).reshape(-1)).view(edges.shape)
            rows, cols = looked[:, :, 1], looked[:, :, 0]
        else:  # flat table rows and columns
            rows, cols = edges[:, :, 1] * (width + 1), edges[:, :, 0]
        # Flat table position of each (image, channel, row edge), (B, S, C, p+1); add the column edge per corner.
        rows = start[..., None] + rows
        rows = rows[:, :, None, :] + self._channel_starts(channels, length)
        # The corners are read in an order that interleaves GATHER_GROUP glimpses, (B/G, S, C, p+1, p+1, G): the
        # reads of several far-apart glimpses are in flight at once rather than one glimpse's queueing on the same
        # cache lines. The sums are written back in glimpse order. index_select on the flat table: the same gather
        # as torch.take, and faster (figures: benchmarks/results/design_measurements.md).
        group = math.gcd(rows.shape[0], GATHER_GROUP)
        rows, cols = (part.unflatten(0, (-1, group)).movedim(1, -1).contiguous() for part in (rows, cols))
        positions = rows[..., :, None, :] + cols[:, :, None, None, :, :]  # (B/G, S, C, p+1, p+1, G)
        values = table.reshape(-1).index_select(0, positions.reshape(-1)).view(positions.shape)
        wide, mask = WIDER.get(table.dtype, (None, None))
        if wide is not None:  # sums modulo 2^16 or 2^32 (exact ones too): differences wider, then reduced
            values = values.to(wide)
        across = values[..., 1:, :] - values[..., :-1, :]
        sums = across[..., 1:, :, :] - across[..., :-1, :, :]
        if mask is not None:
            sums &= mask
        p = self.geometry.patch
        out = torch.empty((loc.shape[0], *positions.shape[1:3], p, p), dtype=torch.float32, device=self.device)
        grouped = out.unflatten(0, (-1, group)).movedim(1, -1)  # a view of ``out`` in the order read
        if table.dtype == torch.float64:  # float images: float sums, clamp rounding
            grouped.copy_((sums / prepared.divisor[..., None]).clamp_(0.0, 1.0))
        else:  # integer sums (stored as integers, or as exact integers in float32): x / x is exactly 1
            torch.div(sums.to(torch.float32), prepared.divisor[..., None], out=grouped)
        return out
