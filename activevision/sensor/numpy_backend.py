"""The numpy backend: glimpses from one image at a time, the single env's sensor (fewest Python-level operations
per glimpse: a strided slice per scale of per-scale block means, made once per episode)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from activevision.sensor.geometry import GlimpseGeometry, PreparedImages, _floor, integral_image

__all__ = ["NumpySensor", "NumpyTables"]


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

    def prepare(self, image: np.ndarray) -> PreparedImages:
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
        np.multiply(
            image.reshape(height, width * channels),
            scale,
            casting="unsafe",
            out=level[pad : pad + height, pad * channels : (pad + width) * channels],
        )
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
        return PreparedImages(NumpyTables(levels, pad, integral), None, height, width)

    def look(self, prepared: PreparedImages, loc: tuple[float, float]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """Glimpse at ``loc = (x, y)`` (already clipped to [-1, 1]) of a prepared image, and the finest patch's
        pixel box ``[x0, y0, x1, y1)`` clipped to the image. The glimpse is ``(scales, C, p, p)`` float32."""
        cx = (loc[0] + 1.0) * (prepared.width / 2.0)
        cy = (loc[1] + 1.0) * (prepared.height / 2.0)
        levels, pad, integral = prepared.table
        patch = self.geometry.patch
        out = np.empty((len(self._sizes), levels[0].shape[2], patch, patch), np.float32)
        for s, (k, size, half) in enumerate(zip(self._factors, self._sizes, self._half)):
            x0, y0 = int(_floor(cx - half)), int(_floor(cy - half))
            if s == 0:
                box = (
                    min(max(x0, 0), prepared.width),
                    min(max(y0, 0), prepared.height),
                    min(x0 + size, prepared.width),
                    min(y0 + size, prepared.height),
                )
            if s < len(levels):
                out[s] = levels[s][y0 + pad : y0 + pad + size : k, x0 + pad : x0 + pad + size : k].transpose(2, 0, 1)
                continue
            ys = np.clip(y0 + self._edges[s], 0, prepared.height)
            xs = np.clip(x0 + self._edges[s], 0, prepared.width)
            corners = integral[ys[:, None], xs[None, :]]  # (p + 1, p + 1, C)
            sums = corners[1:, 1:] - corners[:-1, 1:] - corners[1:, :-1] + corners[:-1, :-1]
            out[s] = (sums / (k * k)).transpose(2, 0, 1)
        return out, box

    def glimpse(self, prepared: PreparedImages, loc: tuple[float, float]) -> np.ndarray:
        """Glimpse at ``loc = (x, y)`` (already clipped to [-1, 1]) of a prepared image: ``(scales, C, p, p)``."""
        return self.look(prepared, loc)[0]
