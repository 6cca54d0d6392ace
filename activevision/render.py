"""Pictures of glimpses: an image with the current glimpse's squares and the path of earlier glimpses."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["to_rgb8", "draw_glimpses", "glimpse_patches", "SCALE_COLOURS"]

# One colour per scale, finest first (RGB).
SCALE_COLOURS = ((255, 60, 60), (60, 220, 60), (70, 140, 255), (255, 200, 0), (230, 80, 230), (0, 220, 220))


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """An ``H x W x C`` uint8 (0-255) or float (0-1) image with 1 or 3 channels as ``H x W x 3`` uint8."""
    if image.dtype != np.uint8:
        image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    return np.ascontiguousarray(np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image)


def draw_glimpses(image: np.ndarray, boxes: np.ndarray, centres: Sequence[tuple[float, float]] = (),
                  min_size: int = 128, label: str | None = None) -> np.ndarray:
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
        cv2.rectangle(frame, (x0 * zoom, y0 * zoom), (x1 * zoom - 1, y1 * zoom - 1),
                      SCALE_COLOURS[s % len(SCALE_COLOURS)], 1)
    if label:
        cv2.putText(frame, label, (3, 12), cv2.FONT_HERSHEY_PLAIN, 0.9, (255, 255, 0), 1, cv2.LINE_AA)
    return frame


def glimpse_patches(glimpse: np.ndarray, size: int = 48) -> np.ndarray:
    """A ``(scales, C, p, p)`` glimpse as the scales side by side, each upscaled to ``size`` pixels (uint8 RGB)."""
    tiles = []
    for patch in glimpse:
        tile = to_rgb8(np.transpose(patch, (1, 2, 0)))
        tiles.append(cv2.resize(tile, (size, size), interpolation=cv2.INTER_NEAREST))
        tiles.append(np.full((size, 2, 3), 128, np.uint8))
    return np.concatenate(tiles[:-1], axis=1)
