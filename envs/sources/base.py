"""The interfaces of glimpse sources: ``GlimpseSource`` (what a world reads from its images) and ``ImageView``
(one image of a source, for one episode of the single env)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

__all__ = ["GlimpseSource", "ImageView", "SourceBase"]


@runtime_checkable
class ImageView(Protocol):
    """One image of a source, ready for one episode of the single env (numpy, on the CPU)."""

    label: int

    def look(self, loc: tuple[float, float]) -> np.ndarray:
        """The ``(scales, C, p, p)`` float32 glimpse at ``loc`` (in [-1, 1]^2), counted in ``pixels_seen``."""
        ...

    def pixels_seen(self) -> float:
        """Fraction of the image's pixels covered by the finest patch of at least one glimpse so far."""
        ...

    def context(self, size: int) -> np.ndarray:
        """The whole image (at its shift) area-averaged to ``(C, size, size)`` float32."""
        ...

    def picture(self) -> tuple[np.ndarray, int]:
        """The image to draw glimpses on, and the factor it is shrunk by (1: the image itself)."""
        ...


@runtime_checkable
class GlimpseSource(Protocol):
    """What a glimpse world reads from its images: sizes and labels, glimpses at locations (one image at a time
    for the single env, batches on a device for the batched env), the context image and pictures to render.

    Built for one geometry and one set of world options; a store that cannot support an option (``shift`` or
    ``context_size`` over huge canvases) refuses it by name when built. ``device=None`` builds the single env's
    source (nothing is put on a device); a device builds the batched env's.
    """

    height: int
    width: int
    channels: int
    num_classes: int

    def __len__(self) -> int: ...

    def view(self, index: int, shift: tuple[int, int]) -> ImageView:
        """Image ``index`` moved by ``shift = (dx, dy)`` whole pixels (zero fill), for one single-env episode."""
        ...

    def labels(self) -> torch.Tensor:
        """Every image's label, ``(N,)`` int64 on the device."""
        ...

    def glimpses(self, loc: torch.Tensor, index: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """Glimpses ``(B, scales, C, p, p)`` float32 on the device at ``loc`` (B, 2) float64 of images ``index``
        (B,), each moved by ``shift`` (B, 2) pixels."""
        ...

    def contexts(self, index: torch.Tensor, shift: torch.Tensor, size: int) -> torch.Tensor:
        """The contexts ``(B, C, size, size)`` of images ``index`` at their shifts, on the device."""
        ...

    def picture(self, index: int, shift: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, int]:
        """Image ``index`` at its shift to draw glimpses on, and the factor it is shrunk by (1: the image)."""
        ...

    def memory_bytes(self) -> int:
        """Device memory held for every image (images, tables, labels)."""
        ...


class SourceBase:
    """What every source over an ``ImageDataset`` holds: its sizes and classes, the world's geometry and shift, and
    the device of the batched env (None: the single env's source, nothing on a device)."""

    def __init__(self, dataset: Any, geometry: Any, shift: int, device: torch.device | None) -> None:
        self.dataset, self.geometry, self.shift, self.device = dataset, geometry, shift, device
        self.height, self.width, self.channels = dataset.shape
        self.num_classes = int(dataset.num_classes)
        self._labels: torch.Tensor | None = None  # the batched env's, set by sources built with a device

    def __len__(self) -> int:
        return len(self.dataset)

    def labels(self) -> torch.Tensor:
        if self._labels is None:
            raise ValueError("labels() is the batched env's: build the source with a device")
        return self._labels
