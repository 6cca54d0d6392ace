"""``CanvasSource``: blank canvases each holding one image at an offset (``TranslatedDataset``), read from the
images themselves: neither the cost of a glimpse nor memory grows with the canvas."""

from __future__ import annotations

import numpy as np
import torch

from activevision.data.compose import TranslatedDataset
from activevision.envs.sources.base import SourceBase
from activevision.envs.sources.memory import MemoryView, integral_images
from activevision.sensor import GlimpseGeometry, NumpySensor, TorchSensor, context_weights, translate

__all__ = ["CanvasSource"]


class CanvasSource(SourceBase):
    """A ``TranslatedDataset`` read through its ``layout()``: the base image of each canvas and its offset. The
    batched env holds the base images and their integral images on the device and reads each glimpse from the
    base image at its offset in a canvas-sized frame; the single env paints one canvas per episode."""

    def __init__(
        self,
        dataset: TranslatedDataset,
        geometry: GlimpseGeometry,
        *,
        shift: int = 0,
        context_size: int | None = None,
        device: torch.device | None = None,
    ) -> None:
        super().__init__(dataset, geometry, shift, device)
        self.sensor = NumpySensor(geometry.patch, geometry.scales, geometry.scale_factor)
        if device is not None:
            which, offsets = dataset.layout()  # (N,) base image of each canvas, (N, 2) its (x, y)
            pieces, piece_labels = dataset.base.arrays()
            self.pieces = torch.as_tensor(pieces, device=device)
            self._labels = torch.as_tensor(piece_labels[which], dtype=torch.long, device=device)
            self._piece = torch.as_tensor(which, device=device)
            self._offset = torch.as_tensor(offsets, device=device)
            self.batch_sensor = TorchSensor(geometry.patch, geometry.scales, geometry.scale_factor, device=device)
            self.prepared = integral_images(self.batch_sensor, self.pieces)
            self._weights: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def view(self, index: int, shift: tuple[int, int]) -> MemoryView:
        canvas, label = self.dataset.painted(index)
        return MemoryView(translate(canvas, *shift) if shift != (0, 0) else canvas, label, self.sensor)

    def glimpses(self, loc: torch.Tensor, index: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        offset = self._offset[index] + shift
        return self.batch_sensor.glimpse(self.prepared, loc, self._piece[index], offset, (self.height, self.width))

    def contexts(self, index: torch.Tensor, shift: torch.Tensor, size: int) -> torch.Tensor:
        """The canvas's context from its base image alone: the rows and columns of the canvas's area weights
        that fall on the image (the rest of the canvas is zero)."""
        if size not in self._weights:
            self._weights[size] = context_weights(self.height, self.width, size, self.shift, self.pieces.device)
        rows, cols = self._weights[size]
        _, height, width, _ = self.pieces.shape
        offset = self._offset[index]
        ys = (offset[:, 1, None] + torch.arange(height, device=self.device))[:, None, :].expand(-1, size, -1)
        xs = (offset[:, 0, None] + torch.arange(width, device=self.device))[:, None, :].expand(-1, size, -1)
        rows = rows[shift[:, 1] + self.shift].gather(2, ys)  # (B, size, h)
        cols = cols[shift[:, 0] + self.shift].gather(2, xs)  # (B, size, w)
        pieces = self.pieces[self._piece[index]]
        values = pieces.float() * (1.0 / 255.0 if pieces.dtype == torch.uint8 else 1.0)
        return torch.einsum("nsh,nhwc,ntw->ncst", rows, values, cols)

    def picture(self, index: int, shift: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, int]:
        canvas = self.dataset.canvas_of(index)
        return (translate(canvas, *shift) if shift != (0, 0) else canvas), 1

    def memory_bytes(self) -> int:
        tensors = (self.pieces, self.labels(), self.prepared.table, self._piece, self._offset)
        return sum(t.numel() * t.element_size() for t in tensors)
