"""Datasets for glimpse worlds: real (MNIST, SVHN), synthetic house numbers, composed canvases, your own arrays."""

from activevision.data.base import ArrayDataset, GeneratedDataset, ImageDataset
from activevision.data.compose import ClutteredDataset, TranslatedDataset
from activevision.data.files import DataUnavailableError
from activevision.data.large import LargeImageDataset, write_large_canvases
from activevision.data.mnist import MNIST
from activevision.data.svhn import SVHN
from activevision.data.synthetic import SyntheticHouseNumbers

__all__ = [
    "ArrayDataset",
    "GeneratedDataset",
    "ImageDataset",
    "ClutteredDataset",
    "TranslatedDataset",
    "DataUnavailableError",
    "LargeImageDataset",
    "MNIST",
    "SVHN",
    "SyntheticHouseNumbers",
    "write_large_canvases",
]
