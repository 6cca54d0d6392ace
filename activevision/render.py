"""Pictures of glimpses: an image with the current glimpse's squares and the path of earlier glimpses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

__all__ = [
    "to_rgb8",
    "draw_glimpses",
    "draw_on_overview",
    "draw_episode",
    "glimpse_patches",
    "glimpse_grid",
    "write_picture",
    "SCALE_COLOURS",
]

# One colour per scale, finest first (RGB).
SCALE_COLOURS = ((255, 60, 60), (60, 220, 60), (70, 140, 255), (255, 200, 0), (230, 80, 230), (0, 220, 220))


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """An ``H x W x C`` uint8 (0-255) or float (0-1) image with 1 or 3 channels as ``H x W x 3`` uint8."""
    if image.dtype != np.uint8:
        image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    return np.ascontiguousarray(np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image)


def draw_glimpses(
    image: np.ndarray,
    boxes: np.ndarray,
    centres: Sequence[tuple[float, float]] = (),
    min_size: int = 128,
    label: str | None = None,
) -> np.ndarray:
    """The image upscaled (integer factor) to at least ``min_size`` pixels, each scale's square of the current
    glimpse (``boxes``: ``(scales, 4)`` pixel boxes ``[x0, y0, x1, y1)``) and the path through earlier glimpse
    centres (pixel coordinates). Returns ``H' x W' x 3`` uint8."""
    rgb = to_rgb8(image)
    zoom = max(1, -(-min_size // min(rgb.shape[:2])))
    frame = cv2.resize(rgb, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    points = [(int(round(x * zoom)), int(round(y * zoom))) for x, y in centres]
    if len(points) > 1:
        cv2.polylines(frame, [np.array(points, np.int32)], False, (255, 255, 255), 1, cv2.LINE_AA)
    for point in points[:-1]:
        cv2.circle(frame, point, 2, (255, 255, 255), -1, cv2.LINE_AA)
    for s, (x0, y0, x1, y1) in enumerate(np.asarray(boxes).tolist()):
        cv2.rectangle(
            frame, (x0 * zoom, y0 * zoom), (x1 * zoom - 1, y1 * zoom - 1), SCALE_COLOURS[s % len(SCALE_COLOURS)], 1
        )
    if label:
        cv2.putText(frame, label, (3, 12), cv2.FONT_HERSHEY_PLAIN, 0.9, (255, 255, 0), 1, cv2.LINE_AA)
    return frame


def draw_on_overview(
    overview: tuple[np.ndarray, int], boxes: Any, centres: Sequence[tuple[float, float]]
) -> np.ndarray:
    """``draw_glimpses`` on ``overview = (picture, factor)``, an image shrunk by an integer factor (1: the image
    itself; a huge canvas's overview, ``SummedAreaTables.overview``): boxes and centres are given in the image's
    pixels and scaled down by the factor."""
    picture, factor = overview
    return draw_glimpses(
        picture, np.asarray(boxes, dtype=np.int64) // factor, [(x / factor, y / factor) for x, y in centres]
    )


def draw_episode(
    picture: tuple[np.ndarray, int], geometry: Any, locs: np.ndarray, height: int, width: int
) -> np.ndarray:
    """An episode so far, as both envs render it: ``picture = (image, factor)`` (a glimpse source's picture of an
    ``height x width`` image) with each scale's square of the newest glimpse and the path through the glimpses at
    ``locs`` ((n, 2) float64 in [-1, 1]; ``geometry`` a ``GlimpseGeometry``)."""
    boxes = geometry.boxes(locs[-1], height, width) if len(locs) else ()
    centres = [((x + 1.0) * width / 2.0, (y + 1.0) * height / 2.0) for x, y in locs.tolist()]
    return draw_on_overview(picture, boxes, centres)


def glimpse_patches(glimpse: np.ndarray, size: int = 48) -> np.ndarray:
    """A ``(scales, C, p, p)`` glimpse as the scales side by side, each upscaled to ``size`` pixels (uint8 RGB)."""
    tiles = []
    for patch in glimpse:
        tile = to_rgb8(np.transpose(patch, (1, 2, 0)))
        tiles.append(cv2.resize(tile, (size, size), interpolation=cv2.INTER_NEAREST))
        tiles.append(np.full((size, 2, 3), 128, np.uint8))
    return np.concatenate(tiles[:-1], axis=1)


def glimpse_grid(
    images: Sequence[np.ndarray],
    locs: np.ndarray,
    boxes_of,
    predictions: Sequence[int],
    labels: Sequence[int],
    cell: int = 96,
) -> np.ndarray:
    """A grid of episodes: one row per example, one column per glimpse (squares of every scale, the path so
    far); the last column says the prediction and the truth (green when right, red when wrong).

    ``locs``: ``(rows, T, 2)`` locations; ``boxes_of(loc, height, width)``: a glimpse's ``(scales, 4)`` boxes.
    """
    rows = []
    for image, path, predicted, label in zip(images, locs, predictions, labels):
        height, width = image.shape[:2]
        centres = [((x + 1.0) * width / 2.0, (y + 1.0) * height / 2.0) for x, y in np.asarray(path).tolist()]
        tiles = []
        for t in range(len(centres)):
            frame = draw_glimpses(
                image, boxes_of(np.asarray(path[t], dtype=np.float64), height, width), centres[: t + 1], min_size=cell
            )
            tiles.append(cv2.resize(frame, (cell, cell), interpolation=cv2.INTER_NEAREST))
        colour = (60, 220, 60) if predicted == label else (255, 60, 60)
        cv2.putText(
            tiles[-1], f"{predicted} / {label}", (3, cell - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA
        )
        rows.append(
            np.concatenate([piece for tile in tiles for piece in (tile, np.zeros((cell, 2, 3), np.uint8))], axis=1)[
                :, :-2
            ]
        )
    return np.concatenate([piece for row in rows for piece in (row, np.zeros((2, row.shape[1], 3), np.uint8))], axis=0)[
        :-2
    ]


def write_picture(path, picture: np.ndarray | Sequence[np.ndarray], fps: int = 2) -> None:
    """Write a PNG (one RGB array) or a GIF (a sequence of frames) atomically: temp file, then rename."""
    import io
    from pathlib import Path

    from PIL import Image

    from activevision.data.files import atomic_write

    path, buffer = Path(path), io.BytesIO()
    if path.suffix.lower() == ".gif":
        frames = [Image.fromarray(frame) for frame in picture]
        frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
    elif path.suffix.lower() == ".png":
        Image.fromarray(np.asarray(picture)).save(buffer, format="PNG")
    else:
        raise ValueError(f"picture file {path} is not allowed: use a .png or .gif name")
    atomic_write(path, buffer.getvalue())
