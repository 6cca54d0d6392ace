"""Images/s of the procedural worlds on one core (OpenCV limited to one thread), one result line each.

python benchmarks/data_generation.py [--images 30720] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2

from activevision.data import MNIST, ClutteredDataset, SyntheticHouseNumbers

MNIST_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "mnist"


def images_per_second(make, n: int, repeats: int) -> float:
    make(1024).arrays()  # warm caches (glyph masks)
    best = 0.0
    for _ in range(repeats):
        dataset = make(n)
        start = time.perf_counter()
        dataset.arrays()
        best = max(best, n / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=30_720)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rate = images_per_second(lambda n: SyntheticHouseNumbers("train", size=n, seed=1), args.images, args.repeats)
    print(f"data_generation world=house_numbers image=32x32x3 images_per_s={rate:,.0f} cores=1 target>=20,000")
    base = MNIST("t10k-train", data_dir=MNIST_DIR, download=False)
    rate = images_per_second(lambda n: ClutteredDataset(base, 100, 8, 8, seed=1, size=n), args.images, args.repeats)
    print(f"data_generation world=cluttered_mnist100 image=100x100x1 images_per_s={rate:,.0f} cores=1")


if __name__ == "__main__":
    main()
