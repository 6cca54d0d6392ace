"""The foveated glimpse sensor, with a numpy backend (single env) and a torch backend (batched, any device).

Geometry: a location (x, y) in [-1, 1]^2 has x to the right and y down; (0, 0) is the image centre and
(-1, -1) the top-left corner, i.e. pixel coordinate ``cx = (x + 1) * W / 2``. Patch ``s`` covers
``patch * scale_factor**s`` pixels per side, its top-left pixel at ``floor(cx - size / 2 + 0.5)``, and is
area-averaged down to ``patch x patch``; pixels outside the image read as 0.

Each output pixel of scale ``s`` is the mean of a ``k x k`` block (``k = scale_factor**s``). Both backends do
the per-image work once per episode (or once per dataset) so that a glimpse costs O(scales * C * patch^2)
whatever the image size: numpy builds per-scale block means of the padded image and reads a strided slice
(fewest Python-level operations, for a fast single env); torch builds exact int64 integral images and reads
four corners per block (one batched gather for thousands of envs). ``tests/test_sensor.py`` proves they agree.

The context (the whole image area-averaged to ``size x size``) is one pair of per-axis weight matrices
(``area_weights``), applied by numpy for one image and by torch for a batch, each image at its own shift.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import cv2
import numpy as np
import torch

from activevision.checks import check_int

__all__ = ["GlimpseGeometry", "NumpySensor", "SensorState", "TorchSensor", "area_weights", "context_batch",
           "context_image", "integral_image", "reference_glimpse", "translate"]


# The widest patch allowed (pixels): beyond any image that fits in memory, and far from int64 overflow.
MAX_PATCH_SIDE = 1 << 30


@dataclass(frozen=True)
class GlimpseGeometry:
    """Sizes of a glimpse: ``scales`` square patches of ``patch`` pixels, each ``scale_factor`` times wider."""

    patch: int
    scales: int
    scale_factor: int = 2

    def __post_init__(self) -> None:
        for name, low in (("patch", 1), ("scales", 1), ("scale_factor", 2)):
            check_int(name, getattr(self, name), low)
        check_int("scales", self.scales, 1, MAX_PATCH_SIDE.bit_length())  # (a bound first: 2**huge never ends)
        coarsest = int(self.patch) * int(self.scale_factor) ** (int(self.scales) - 1)  # Python ints: no overflow
        if coarsest > MAX_PATCH_SIDE:
            raise ValueError(f"scales={self.scales!r} is not allowed with patch={self.patch} and scale_factor="
                             f"{self.scale_factor}: the coarsest patch would be {coarsest:,} pixels wide; keep "
                             f"patch * scale_factor**(scales - 1) <= {MAX_PATCH_SIDE:,}")

    @property
    def factors(self) -> np.ndarray:
        """Block side ``k`` of each scale: one output pixel averages ``k x k`` image pixels."""
        return self.scale_factor ** np.arange(self.scales, dtype=np.int64)

    @property
    def sizes(self) -> np.ndarray:
        """Side in image pixels covered by each scale's patch."""
        return self.patch * self.factors

    def steps(self) -> np.ndarray:
        """Block edges relative to a patch's top-left corner, shape ``(scales, patch + 1)``."""
        return self.factors[:, None] * np.arange(self.patch + 1, dtype=np.int64)[None, :]

    def corners(self, loc: Any, height: int, width: int) -> tuple[Any, Any]:
        """Top-left pixel ``(x0, y0)`` of every scale's patch, each of shape ``(..., scales)``.

        Works on numpy arrays and torch tensors alike (operators only). The definition of where a patch sits:
        ``boxes`` and the reference glimpse use it; the sensors apply the same float64 operations in their own
        shapes (``tests/test_sensor.py`` checks all against it). ``loc`` is float64 of shape ``(..., 2)``.
        """
        half = self.sizes / 2.0 - 0.5
        if isinstance(loc, torch.Tensor):
            half = torch.from_numpy(half).to(device=loc.device, dtype=loc.dtype)
        x0 = _floor((loc[..., 0:1] + 1.0) * (width / 2.0) - half)
        y0 = _floor((loc[..., 1:2] + 1.0) * (height / 2.0) - half)
        return x0, y0

    def boxes(self, loc: Any, height: int, width: int) -> Any:
        """Unclipped boxes ``[x0, y0, x1, y1)`` in pixels, shape ``(..., scales, 4)``: int64 numpy for numpy (or
        list) locations, float64 torch (integer-valued) for float64 torch locations."""
        if isinstance(loc, torch.Tensor):
            x0, y0 = self.corners(loc, height, width)
            sizes = torch.from_numpy(self.sizes).to(device=loc.device, dtype=loc.dtype)
            return torch.stack([x0, y0, x0 + sizes, y0 + sizes], dim=-1)
        x0, y0 = self.corners(np.asarray(loc, dtype=np.float64), height, width)
        return np.stack([x0, y0, x0 + self.sizes, y0 + self.sizes], axis=-1).astype(np.int64)


# Tables whose sums are stored modulo 2^16 or 2^32: the type their differences are taken in, and the mask.
WIDER = {torch.int16: (torch.int32, 0xFFFF), torch.int32: (torch.int64, 0xFFFFFFFF)}
# Glimpses whose table reads are interleaved (``TorchSensor.glimpse``).
GATHER_GROUP = 16
# Table phases (``TorchSensor.phases``) are used only where a phase plane is at least this many entries wide.
MIN_PHASE_COLUMNS = 128


class PhaseOffsets(NamedTuple):
    """Where the entries of tables in a layout of their own sit (``TorchSensor.wrap``), tabled for one period of
    rows and of columns plus a block; per scale, in the order of a glimpse's edges (x, then y)."""

    table: torch.Tensor  # flat: per phase read, its row offsets (each copy), then per phase its column offsets
    base: torch.Tensor  # (1, S, 2): where each scale's column and (copy 0) row offsets begin in ``table``
    periods: torch.Tensor  # (1, S, 2, 2): after [..., 0] columns (rows) the offsets repeat, [..., 1] larger
    copies: torch.Tensor  # flat: per phase read and row, where the copy to read a block centred there begins
    copy_base: torch.Tensor  # (1, S): where each scale's phase begins in ``copies``


class SensorState(NamedTuple):
    """A prepared image (or batch of images) and what a glimpse needs to read it."""

    table: Any  # per-scale block-mean images (numpy) or flat integral images (torch)
    divisor: Any
    height: int
    width: int
    offsets: PhaseOffsets | None = None  # tables in a layout of their own (``TorchSensor.wrap``)


def _floor(value: Any) -> Any:
    """Floor for Python floats, numpy arrays and torch tensors alike (so both backends share the corner rule)."""
    return value // 1.0


def reference_glimpse(image: np.ndarray, loc: tuple[float, float], geometry: GlimpseGeometry) -> np.ndarray:
    """The definition, written plainly and slowly: crop each scale's square with zero padding and area-resize it
    with OpenCV. Ground truth for the backends' tests and the naive baseline of the throughput benchmark."""
    height, width, channels = image.shape
    values = image.astype(np.float64) / (255.0 if image.dtype == np.uint8 else 1.0)
    patch, out = geometry.patch, []
    for x0, y0, x1, y1 in geometry.boxes(np.asarray(loc, dtype=np.float64), height, width).tolist():
        size = x1 - x0
        padded = np.zeros((height + 4 * size, width + 4 * size, channels))
        padded[2 * size : 2 * size + height, 2 * size : 2 * size + width] = values
        crop = padded[y0 + 2 * size : y1 + 2 * size, x0 + 2 * size : x1 + 2 * size]
        small = cv2.resize(crop, (patch, patch), interpolation=cv2.INTER_AREA).reshape(patch, patch, channels)
        out.append(small.transpose(2, 0, 1))
    return np.stack(out).astype(np.float32)


def area_weights(n_in: int, n_out: int, shift: int = 0) -> np.ndarray:
    """``(n_out, n_in)`` weights of area averaging along one axis: row ``i`` holds how much of output cell
    ``[i r, (i + 1) r)`` (``r = n_in / n_out``) each input pixel covers, divided by ``r`` (OpenCV's INTER_AREA
    when shrinking). With ``shift`` the input is first moved ``shift`` pixels forward, zero fill (``translate``)."""
    if not 1 <= n_out <= n_in:
        raise ValueError(f"context size {n_out} is not allowed for a side of {n_in} pixels: use 1 <= size <= {n_in}")
    edges = np.arange(n_out + 1) * (n_in / n_out)
    pixels = np.arange(n_in)
    overlap = np.clip(np.minimum(edges[1:, None], pixels + 1) - np.maximum(edges[:-1, None], pixels), 0.0, None)
    weights = overlap * (n_out / n_in)
    moved = np.zeros_like(weights)  # out[:, p] = weights[:, p + shift]: the pixel that lands at p + shift
    if abs(shift) < n_in:
        moved[:, max(-shift, 0) : n_in - max(shift, 0)] = weights[:, max(shift, 0) : n_in + min(shift, 0)]
    return moved


def context_image(image: np.ndarray, size: int) -> np.ndarray:
    """The whole ``H x W x C`` image area-averaged to ``(C, size, size)`` float32 in [0, 1] (``area_weights``
    on each axis; equal to OpenCV's INTER_AREA, which ``tests/test_sensor.py`` checks)."""
    height, width = image.shape[:2]
    values = image.astype(np.float64) * (1.0 / 255.0 if image.dtype == np.uint8 else 1.0)
    small = np.einsum("sh,hwc,tw->cst", area_weights(height, size), values, area_weights(width, size))
    return np.ascontiguousarray(small, dtype=np.float32)


def context_batch(images: torch.Tensor, size: int, shift: torch.Tensor | None = None,
                  limit: int = 0) -> torch.Tensor:
    """``context_image`` of a batch ``(n, H, W, C)`` at once (any device), each image first moved by its
    ``shift`` row ``(dx, dy)`` with ``|dx|, |dy| <= limit``: ``(n, C, size, size)`` float32."""
    _, height, width, _ = images.shape
    device = images.device
    rows = torch.as_tensor(np.stack([area_weights(height, size, d) for d in range(-limit, limit + 1)]),
                           dtype=torch.float32, device=device)
    cols = torch.as_tensor(np.stack([area_weights(width, size, d) for d in range(-limit, limit + 1)]),
                           dtype=torch.float32, device=device)
    if shift is None:
        shift = torch.zeros((len(images), 2), dtype=torch.long, device=device)
    values = images.float() * (1.0 / 255.0 if images.dtype == torch.uint8 else 1.0)
    return torch.einsum("nsh,nhwc,ntw->ncst", rows[shift[:, 1] + limit], values, cols[shift[:, 0] + limit])


def translate(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``image`` moved ``dx`` pixels right and ``dy`` down, zero fill: what a world's ``shift`` augmentation shows
    (the batched env reads the same picture through ``TorchSensor.glimpse``'s offset, without building it)."""
    height, width = image.shape[:2]
    out = np.zeros_like(image)
    if abs(dx) < width and abs(dy) < height:
        out[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = \
            image[max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)]
    return out


def integral_image(image: np.ndarray) -> np.ndarray:
    """Summed-area table of an ``H x W x C`` image, shape ``(H + 1, W + 1, C)`` with a zero first row/column.

    uint8 images give an exact int64 table; float images a float64 one.
    """
    if image.ndim != 3:
        raise ValueError(f"image must be H x W x C, got shape {image.shape}")
    dtype = np.int64 if image.dtype == np.uint8 else np.float64
    height, width, channels = image.shape
    table = np.zeros((height + 1, width + 1, channels), dtype=dtype)
    np.cumsum(image, axis=0, dtype=dtype, out=table[1:, 1:])
    np.cumsum(table[1:, 1:], axis=1, out=table[1:, 1:])
    return table


class NumpyTables(NamedTuple):
    """A prepared image of the numpy sensor: block means of the padded image for the scales whose patches are at
    most about twice the image (``levels``, ``pad`` pixels of zeros around), and the integral image for the wider
    ones (None when there are none)."""

    levels: list[np.ndarray]
    pad: int
    integral: np.ndarray | None


class NumpySensor:
    """Glimpses from one image at a time; the single env's backend.

    ``prepare(image)`` is the per-episode work: the zero-padded image and, for each coarser scale, its block
    means (pixel ``(y, x)`` of scale ``s`` holds the mean of the ``k x k`` block starting there), each scale built
    from the previous one by adding ``scale_factor^2`` shifted views. ``look`` is the per-step work: one strided
    slice per scale, O(scales * C * patch^2). Scales wider than about twice the image are read from its integral
    image instead (four corners per block), so memory and reset time stay bounded whatever the number of scales.
    """

    def __init__(self, patch: int, scales: int, scale_factor: int = 2) -> None:
        self.geometry = GlimpseGeometry(patch, scales, scale_factor)
        self._factors = [int(k) for k in self.geometry.factors]
        self._sizes = [int(n) for n in self.geometry.sizes]
        self._half = [n / 2.0 - 0.5 for n in self._sizes]
        self._edges = [k * np.arange(patch + 1) for k in self._factors]

    def prepare(self, image: np.ndarray) -> SensorState:
        """Per-image work for an ``H x W x C`` uint8 (0-255) or float (0-1) image."""
        height, width, channels = image.shape
        # A patch is centred inside the image, so one wider than 2 * side + 4 sees the whole image among zeros:
        # padding for it would cost memory growing like scale_factor^(2 * scales) for nothing.
        padded = max(1, sum(1 for size in self._sizes if size <= 2 * max(height, width) + 4))
        # Any location in [-1, 1]^2 puts a patch at most size/2 + 1 pixels outside the image.
        pad, factor = self._sizes[padded - 1] // 2 + 2, self.geometry.scale_factor
        # Work on 2-D (rows, columns * channels) views: numpy is slow when the innermost axis has 3 elements.
        level = np.zeros((height + 2 * pad, (width + 2 * pad) * channels), np.float32)
        scale = np.float32(1.0 / 255.0 if image.dtype == np.uint8 else 1.0)
        np.multiply(image.reshape(height, width * channels), scale, casting="unsafe",
                    out=level[pad : pad + height, pad * channels : (pad + width) * channels])
        levels = [level.reshape(level.shape[0], -1, channels)]
        for k in self._factors[: padded - 1]:
            span = (factor - 1) * k
            rows, cols = level.shape[0] - span, level.shape[1] - span * channels
            block = level[:rows, :cols].copy()
            for a in range(factor):
                for b in range(factor):
                    if a or b:
                        block += level[a * k : a * k + rows, b * k * channels : b * k * channels + cols]
            block *= np.float32(1.0 / factor**2)
            levels.append(block.reshape(rows, -1, channels))
            level = block
        integral = None
        if padded < len(self._sizes):
            integral = integral_image(image)
            integral = integral / (255.0 if image.dtype == np.uint8 else 1.0)
        return SensorState(NumpyTables(levels, pad, integral), None, height, width)

    def look(self, state: SensorState, loc: tuple[float, float]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """Glimpse at ``loc = (x, y)`` (already clipped to [-1, 1]) of a prepared image, and the finest patch's
        pixel box ``[x0, y0, x1, y1)`` clipped to the image. The glimpse is ``(scales, C, p, p)`` float32."""
        cx = (loc[0] + 1.0) * (state.width / 2.0)
        cy = (loc[1] + 1.0) * (state.height / 2.0)
        levels, pad, integral = state.table
        patch = self.geometry.patch
        out = np.empty((len(self._sizes), levels[0].shape[2], patch, patch), np.float32)
        for s, (k, size, half) in enumerate(zip(self._factors, self._sizes, self._half)):
            x0, y0 = int(_floor(cx - half)), int(_floor(cy - half))
            if s == 0:
                box = (min(max(x0, 0), state.width), min(max(y0, 0), state.height),
                       min(x0 + size, state.width), min(y0 + size, state.height))
            if s < len(levels):
                out[s] = levels[s][y0 + pad : y0 + pad + size : k, x0 + pad : x0 + pad + size : k].transpose(2, 0, 1)
                continue
            ys = np.clip(y0 + self._edges[s], 0, state.height)
            xs = np.clip(x0 + self._edges[s], 0, state.width)
            corners = integral[ys[:, None], xs[None, :]]  # (p + 1, p + 1, C)
            sums = corners[1:, 1:] - corners[:-1, 1:] - corners[1:, :-1] + corners[:-1, :-1]
            out[s] = (sums / (k * k)).transpose(2, 0, 1)
        return out, box

    def glimpse(self, state: SensorState, loc: tuple[float, float]) -> np.ndarray:
        """Glimpse at ``loc = (x, y)`` (already clipped to [-1, 1]) of a prepared image: ``(scales, C, p, p)``."""
        return self.look(state, loc)[0]


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
            self._frames[frame] = (torch.tensor([width / 2.0, height / 2.0], dtype=torch.float64, device=self.device),
                                   torch.tensor([[width], [height]], device=self.device))
        return self._frames[frame]

    def _channel_starts(self, channels: int, length: int) -> torch.Tensor:
        """Where each channel's table begins in an image's block, ``(C, 1)``, made once per table shape."""
        if (channels, length) not in self._starts:
            self._starts[channels, length] = torch.arange(0, channels * length, length, device=self.device)[:, None]
        return self._starts[channels, length]

    def prepare(self, images: torch.Tensor) -> SensorState:
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
        return SensorState(table.reshape(n, channels, -1), divisor, height, width)

    def phases(self, width: int) -> tuple[int, ...]:
        """The table phase each scale reads (``wrap``) for images ``width`` pixels wide: scales 0, 1 phase 1,
        scales 2, 3 phase ``factor^2``, ..., so that every scale reads a block of one phase plane with entries 1 or
        ``factor`` apart; phases whose planes would be narrower than ``MIN_PHASE_COLUMNS`` are not used (a
        table that narrow is a few pages per row anyway: its scales read the widest plane allowed)."""
        factors = [int(f) for f in self.geometry.factors]
        allowed = [f for f in factors if f == 1 or (width + 1) // f >= MIN_PHASE_COLUMNS]
        return tuple(max(q for q in allowed if q <= factors[k - k % 2]) for k in range(len(factors)))

    def wrap(self, tables: Callable[..., tuple[torch.Tensor | np.ndarray, Any]], height: int,
             width: int) -> SensorState:
        """The state of summed-area tables of uint8 images built elsewhere with a copy per phase: ``tables(phases,
        block=b)`` gives ``(table (N, C, size), layout)`` for blocks up to ``b`` pixels wide: int16 (sums modulo
        2^16, exact for blocks up to 16^2 pixels), int32 (modulo 2^32, up to 4104^2) or int64. ``layout.phases`` are
        the phases it holds (phase 1 among them; a scale reads the largest held phase up to its own),
        ``layout.row_offsets(q, y, c) + layout.col_offsets(q, x)`` the offset of entry ``(y, x)`` of phase ``q`` in
        copy ``c`` of an image-channel block and ``layout.copy(q, y)`` the copy to read a block centred on row
        ``y`` from, ``layout.periods(q)`` = ``((rows, row_step), (cols, col_step))`` how they repeat: ``rows``
        rows further down (``cols`` columns right) an entry sits ``row_step`` (``col_step``) further on, in the
        same copy (e.g. ``LargeImageDataset.tables``: a read-only map of a file that ``glimpse`` then reads only
        where it looks, wrapped without a copy, never written). Each phase's offsets and copies are tabled here
        for one period plus a block: a glimpse adds the whole periods before its block and looks up the rest, in
        tables of a few KB at any canvas size (tables of every row and column of a 16,384^2 canvas, ~1 MB, were
        evicted from the cache by the glimpse's own reads; 256 batched steps, measured in one process against
        those tables: 1.89 -> 1.76 ms at 16,384^2, 1.31 -> 1.23 ms at 64^2)."""
        wanted = self.phases(width)
        table, layout = tables(tuple(dict.fromkeys(wanted)), block=int(self.geometry.factors[-1]))
        phases = [max(q for q in layout.phases if q <= want) for want in wanted]  # those the tables hold
        if isinstance(table, np.ndarray):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                table = torch.from_numpy(table)
        if table.dtype not in (torch.int16, torch.int32, torch.int64) or table.ndim != 3:
            raise ValueError(f"table of dtype {table.dtype} and shape {tuple(table.shape)} is not allowed: use int16, "
                             "int32 or int64 (N, C, size)")
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
        return SensorState(table, self._byte_divisor, height, width, PhaseOffsets(flat, *lookups))

    def glimpse(self, state: SensorState, loc: torch.Tensor, index: torch.Tensor | None = None,
                offset: torch.Tensor | None = None, frame: tuple[int, int] | None = None) -> torch.Tensor:
        """Glimpses at ``loc`` (B, 2) of images ``index`` (B,) of a prepared table (images 0..B-1 if None).

        Reads only the ``(patch + 1)^2`` table entries per scale and channel that it needs, with one gather.
        With ``frame = (H, W)`` and ``offset`` (B, 2) pixels ``(x, y)``, the location is in an H x W frame
        (a blank canvas) where each image sits at its offset: the glimpse of that canvas, at a cost that
        does not depend on the canvas size.
        """
        table, height, width = state.table, state.height, state.width
        frame = frame or (height, width)
        # The corner rule of GlimpseGeometry.corners, for x and y at once (the same float64 operations):
        # (B, 1, 2) centres in pixels minus each scale's half size, floored; then the p + 1 block edges.
        scale, frame_limit = self._frame_constants(frame)
        corner = _floor((loc.to(device=self.device, dtype=torch.float64)[:, None, :] + 1.0) * scale
                        - self._half).long()  # (B, S, 2)
        edges = corner[..., None] + self._steps  # (B, S, 2, p+1): x edges, then y edges
        if offset is not None:  # edges clipped to the frame (zero outside it), then moved into the image
            edges = torch.minimum(edges.clamp_(min=0), frame_limit) - offset.to(self.device).long()[:, None, :, None]
        edges = torch.minimum(edges.clamp_(min=0), self._frame_constants((height, width))[1])
        index = torch.arange(loc.shape[0], device=self.device) if index is None else index.to(self.device)
        channels, length = table.shape[1], table.shape[2]
        start = (index.long() * (channels * length))[:, None]  # (B, 1): where each glimpse's image begins
        if state.offsets is not None:  # whole periods before each block added, the rest looked up per phase
            where = state.offsets
            # Whole periods before each block's first edge (edges rise along a block: the first is the lowest),
            # in rows and columns skipped ([..., 0]) and in entries ([..., 1]), (B, S, 2, 2).
            moved = (edges[..., :1] // where.periods[..., :1]) * where.periods
            start = start + moved[..., 1].sum(-1)  # (B, S)
            middle = edges[:, :, 1, self.geometry.patch // 2] - moved[:, :, 1, 0]  # a block's copy: by its middle row
            base = where.base - moved[..., 0]
            base[..., 1] += where.copies[where.copy_base + middle]
            # Every edge's offset in one gather from the flat table (index_select: cheaper than indexing by
            # phase, copy and edge; 64^2 glimpses got faster too, measured).
            looked = where.table.index_select(0, (base[..., None] + edges).reshape(-1)).view(edges.shape)
            rows, cols = looked[:, :, 1], looked[:, :, 0]
        else:  # flat table rows and columns
            rows, cols = edges[:, :, 1] * (width + 1), edges[:, :, 0]
        # Flat table position of each (image, channel, row edge), (B, S, C, p+1); add the column edge per corner.
        rows = start[..., None] + rows
        rows = rows[:, :, None, :] + self._channel_starts(channels, length)
        # The corners are read in an order that interleaves GATHER_GROUP glimpses, (B/G, S, C, p+1, p+1, G): the
        # reads of several far-apart glimpses are in flight at once rather than one glimpse's queueing on the same
        # cache lines (256 glimpses of a 16,384^2 canvas cost 0.42-0.54 ms more than of a 64^2 one read in glimpse
        # order, 0.28-0.34 ms more read 16 at a time; measured). The sums are written back in glimpse order.
        # index_select on the flat table: the same gather as torch.take, about 2x faster on CPU.
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
            grouped.copy_((sums / state.divisor[..., None]).clamp_(0.0, 1.0))
        else:  # integer sums (stored as integers, or as exact integers in float32): x / x is exactly 1
            torch.div(sums.to(torch.float32), state.divisor[..., None], out=grouped)
        return out
