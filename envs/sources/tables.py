"""``TableSource``: canvases too large for memory (``LargeImageDataset``), read from summed-area tables on disk."""

from __future__ import annotations

import numpy as np
import torch

from activevision.data.large import LargeImageDataset
from activevision.envs import rules
from activevision.envs.sources.base import SourceBase
from activevision.sensor import GlimpseGeometry, TorchSensor
from activevision.sensor.layout import MAX_BLOCK
from activevision.sensor.table_files import SummedAreaTables

__all__ = ["TableSource", "TableView"]


class TableView:
    """One canvas for one episode: nothing is read until a glimpse, which reads only the table entries it needs;
    coverage from the glimpses' boxes (``rules.covered_fraction``: no mask the size of the canvas)."""

    def __init__(self, source: TableSource, index: int) -> None:
        self.label = int(source.dataset.labels[index])
        self._source, self._index = source, index
        self._boxes: list[np.ndarray] = []

    def look(self, loc: tuple[float, float]) -> np.ndarray:
        source = self._source
        where = torch.tensor([loc], dtype=torch.float64)
        glimpse = source.sensor.glimpse(source.prepared, where, torch.tensor([self._index]))[0].numpy()
        self._boxes.append(source.geometry.boxes(np.array(loc), source.height, source.width)[0])
        return glimpse

    def pixels_seen(self) -> float:
        if not self._boxes:
            return 0.0
        boxes, source = np.stack(self._boxes), self._source
        return float(rules.covered_fraction(boxes, np.array(len(boxes)), source.height, source.width))

    def context(self, size: int) -> np.ndarray:
        raise ValueError(f"context_size={size} is not allowed over a LargeImageDataset: use None")

    def picture(self) -> tuple[np.ndarray, int]:
        return self._source.picture(self._index)


class TableSource(SourceBase):
    """A ``LargeImageDataset`` read lazily: glimpses from the memory map of its summed-area tables on the CPU (the
    batched env's are then moved to its device); pictures from small overviews of the canvases. ``shift`` and
    ``context_size`` are refused: both would read the whole canvas every episode."""

    def __init__(
        self,
        dataset: LargeImageDataset,
        geometry: GlimpseGeometry,
        *,
        shift: int = 0,
        context_size: int | None = None,
        device: torch.device | None = None,
    ) -> None:
        if shift or context_size is not None:
            raise ValueError(
                f"shift={shift!r} / context_size={context_size!r} are not allowed over a "
                "LargeImageDataset: both would read the whole canvas every episode (use 0 / None)"
            )
        if geometry.factors[-1] > MAX_BLOCK:
            raise ValueError(
                f"scales={geometry.scales} with scale_factor={geometry.scale_factor} is not allowed over a "
                f"LargeImageDataset: its coarsest blocks ({geometry.factors[-1]} pixels) exceed "
                f"{MAX_BLOCK}, the widest its tables sum exactly"
            )
        super().__init__(dataset, geometry, shift, torch.device("cpu") if device is None else device)
        self.sensor = TorchSensor(geometry.patch, geometry.scales, geometry.scale_factor)  # reads on the CPU
        self.table_files = SummedAreaTables(dataset)
        self.prepared = self.sensor.wrap(self.table_files.tables, self.height, self.width)
        self._labels = torch.as_tensor(dataset.labels, dtype=torch.long, device=self.device)

    def view(self, index: int, shift: tuple[int, int]) -> TableView:
        return TableView(self, index)

    def glimpses(self, loc: torch.Tensor, index: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        return self.sensor.glimpse(self.prepared, loc, index).to(self.device)

    def contexts(self, index: torch.Tensor, shift: torch.Tensor, size: int) -> torch.Tensor:
        raise ValueError(f"context_size={size} is not allowed over a LargeImageDataset: use None")

    def picture(self, index: int, shift: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, int]:
        return self.table_files.overview(index)

    def memory_bytes(self) -> int:
        labels = self.labels()
        return labels.numel() * labels.element_size()  # images and tables stay on disk
