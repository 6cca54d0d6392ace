"""``MemorySource``: images held in memory, any ``ImageDataset``."""

from __future__ import annotations

import numpy as np
import torch

from activevision.data.base import ImageDataset
from activevision.envs.sources.base import SourceBase
from activevision.sensor import GlimpseGeometry, NumpySensor, PreparedImages, TorchSensor, context_batch, translate
from activevision.sensor.geometry import context_image

__all__ = ["MemorySource", "MemoryView", "integral_images"]


class MemoryView:
    """One image in memory for one episode: the numpy sensor's block means of it, and a mask of the pixels seen
    (cheapest for one env; equal to the coverage rule of the batched env, ``tests/test_envs.py``)."""

    def __init__(self, image: np.ndarray, label: int, sensor: NumpySensor) -> None:
        self.image, self.label = image, label
        self._sensor = sensor
        self._prepared = sensor.prepare(image)
        self._seen = np.zeros(image.shape[:2], dtype=bool)

    def look(self, loc: tuple[float, float]) -> np.ndarray:
        glimpse, (x0, y0, x1, y1) = self._sensor.look(self._prepared, loc)
        self._seen[y0:y1, x0:x1] = True
        return glimpse

    def pixels_seen(self) -> float:
        return float(np.count_nonzero(self._seen)) / self._seen.size

    def context(self, size: int) -> np.ndarray:
        return context_image(self.image, size)

    def picture(self) -> tuple[np.ndarray, int]:
        return self.image, 1


def integral_images(sensor: TorchSensor, images: torch.Tensor, chunk: int = 4096) -> PreparedImages:
    """Integral images of ``images`` (N, H, W, C), built on the sensor's device in chunks, stored in the narrowest
    exact type: float32 for uint8 images up to 256 x 256 (sums below 2^24), else int32 or int64 (float64 for
    float images)."""
    _, height, width, _ = images.shape
    integer = images.dtype == torch.uint8
    dtype = (
        torch.float32
        if integer and 255 * height * width < 2**24
        else torch.int32
        if integer and 255 * height * width < 2**31
        else None
    )
    chunks = []
    for start in range(0, len(images), chunk):
        prepared = sensor.prepare(images[start : start + chunk])
        chunks.append(prepared.table if dtype is None else prepared.table.to(dtype))
    return PreparedImages(torch.cat(chunks), prepared.divisor, height, width)


class MemorySource(SourceBase):
    """Images in memory. The single env prepares one image per episode (numpy); the batched env puts every image
    on the device once (uint8 stays uint8) with its integral images, so a reset only draws indices and a glimpse
    is one gather."""

    def __init__(
        self,
        dataset: ImageDataset,
        geometry: GlimpseGeometry,
        *,
        shift: int = 0,
        context_size: int | None = None,
        device: torch.device | None = None,
    ) -> None:
        super().__init__(dataset, geometry, shift, device)
        self.sensor = NumpySensor(geometry.patch, geometry.scales, geometry.scale_factor)  # one image at a time
        if device is not None:
            images, labels = dataset.arrays()
            self.images = torch.as_tensor(images, device=device)
            self._labels = torch.as_tensor(labels, dtype=torch.long, device=device)
            self.batch_sensor = TorchSensor(geometry.patch, geometry.scales, geometry.scale_factor, device=device)
            self.prepared = integral_images(self.batch_sensor, self.images)

    def view(self, index: int, shift: tuple[int, int]) -> MemoryView:
        image, label = self.dataset.get(index)
        if shift != (0, 0):
            image = translate(image, *shift)
        return MemoryView(image, label, self.sensor)

    def glimpses(self, loc: torch.Tensor, index: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        if self.shift:  # the image at its shift in a frame of its own size: zero fill for free
            return self.batch_sensor.glimpse(self.prepared, loc, index, shift, (self.height, self.width))
        return self.batch_sensor.glimpse(self.prepared, loc, index)

    def contexts(self, index: torch.Tensor, shift: torch.Tensor, size: int) -> torch.Tensor:
        return context_batch(self.images[index], size, shift, self.shift)

    def picture(self, index: int, shift: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, int]:
        image = self.dataset.get(index)[0]
        return (translate(image, *shift) if shift != (0, 0) else image), 1

    def memory_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.images, self.labels(), self.prepared.table))
