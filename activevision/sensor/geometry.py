"""Where a glimpse looks and what it shows, independent of any backend: ``GlimpseGeometry`` (patch sizes, corners,
boxes), the plain reference glimpse the backends are tested against, the context's area weights and the shift
augmentation's ``translate``, and the state a prepared image is kept in (``PreparedImages``).

Geometry: a location (x, y) in [-1, 1]^2 has x to the right and y down; (0, 0) is the image centre and
(-1, -1) the top-left corner, i.e. pixel coordinate ``cx = (x + 1) * W / 2``. Patch ``s`` covers
``patch * scale_factor**s`` pixels per side, its top-left pixel at ``floor(cx - size / 2 + 0.5)``, and is
area-averaged down to ``patch x patch``; pixels outside the image read as 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import cv2
import numpy as np
import torch

from activevision.checks import check_int

__all__ = [
    "MAX_PATCH_SIDE",
    "GlimpseGeometry",
    "PhaseOffsets",
    "PreparedImages",
    "area_weights",
    "context_image",
    "integral_image",
    "reference_glimpse",
    "translate",
]


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
            raise ValueError(
                f"scales={self.scales!r} is not allowed with patch={self.patch} and scale_factor="
                f"{self.scale_factor}: the coarsest patch would be {coarsest:,} pixels wide; keep "
                f"patch * scale_factor**(scales - 1) <= {MAX_PATCH_SIDE:,}"
            )

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
        half: Any = self.sizes / 2.0 - 0.5
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


class PhaseOffsets(NamedTuple):
    """Where the entries of tables in a layout of their own sit (``TorchSensor.wrap``), tabled for one period of
    rows and of columns plus a block; per scale, in the order of a glimpse's edges (x, then y)."""

    table: torch.Tensor  # flat: per phase read, its row offsets (each copy), then per phase its column offsets
    base: torch.Tensor  # (1, S, 2): where each scale's column and (copy 0) row offsets begin in ``table``
    periods: torch.Tensor  # (1, S, 2, 2): after [..., 0] columns (rows) the offsets repeat, [..., 1] larger
    copies: torch.Tensor  # flat: per phase read and row, where the copy to read a block centred there begins
    copy_base: torch.Tensor  # (1, S): where each scale's phase begins in ``copies``


class PreparedImages(NamedTuple):
    """An image (or a batch of images) as a sensor's ``prepare`` (or ``wrap``) leaves it for glimpses: its tables
    and what a glimpse needs to read them."""

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


def translate(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``image`` moved ``dx`` pixels right and ``dy`` down, zero fill: what a world's ``shift`` augmentation shows
    (the batched env reads the same picture through ``TorchSensor.glimpse``'s offset, without building it)."""
    height, width = image.shape[:2]
    out = np.zeros_like(image)
    if abs(dx) < width and abs(dy) < height:
        out[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = image[
            max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
        ]
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
