"""Is the synthetic house-number world non-trivial? Where the agent looks must matter.

Supervised proxy, same classifier for each row: an MLP trained on the glimpses that a policy takes
(GlimpseHouseNumbers-v0 sensor: 2 scales of 12x12, 6 glimpses), tested on the test split.
- centre: all 6 glimpses at the centre (the fixed-centre policy);
- look_at_digit: the first glimpse at the centre (as in the env), then 5 around the label digit's true
  centre (the generator's metadata) -- what a good policy does once its coarse view has found the digit.
One result line per row, and the gap look_at_digit - centre.

    python benchmarks/house_numbers_difficulty.py [--train 20000] [--epochs 15]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from activevision.data import SyntheticHouseNumbers
from activevision.sensor import TorchSensor

# Offsets (in location units) of the 5 later glimpses around the digit: centre, above, below, left, right.
AROUND = [(0.0, 0.0), (0.0, -0.2), (0.0, 0.2), (-0.15, 0.0), (0.15, 0.0)]


def glimpse_features(images: np.ndarray, locs: np.ndarray) -> torch.Tensor:
    """Concatenated glimpses and locations, for ``locs`` of shape (N, 6, 2)."""
    sensor = TorchSensor(12, 2)
    prepared = sensor.prepare(torch.from_numpy(images))
    n = images.shape[0]
    locs = torch.from_numpy(np.clip(locs, -1.0, 1.0))
    glimpses = [sensor.glimpse(prepared, locs[:, g]).reshape(n, -1) for g in range(locs.shape[1])]
    return torch.cat(glimpses + [locs.reshape(n, -1).float()], dim=1)


def policy_locations(name: str, centres: np.ndarray) -> np.ndarray:
    n = len(centres)
    if name == "centre":
        return np.zeros((n, 6, 2))
    later = centres[:, None, :].astype(np.float64) + np.array(AROUND)[None]
    return np.concatenate([np.zeros((n, 1, 2)), later], axis=1)


def train_and_test(x_train, y_train, x_test, y_test, epochs: int, seed: int) -> float:
    """Test accuracy of an MLP trained on standardised features (training-set statistics)."""
    mean, std = x_train.mean(0), x_train.std(0).clamp_min(1e-3)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(x_train.shape[1], 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10)
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(x_train), generator=generator)
        for batch in order.split(256):
            loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        return (model(x_test).argmax(1) == y_test).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=20_000)
    parser.add_argument("--test", type=int, default=5_000)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    train = SyntheticHouseNumbers("train", size=args.train, seed=args.seed)
    test = SyntheticHouseNumbers("test", size=args.test, seed=args.seed)
    (train_images, train_labels), (test_images, test_labels) = train.arrays(), test.arrays()
    y_train, y_test = torch.from_numpy(train_labels), torch.from_numpy(test_labels)
    results = {}
    for name in ("centre", "look_at_digit"):
        start = time.perf_counter()
        x_train = glimpse_features(train_images, policy_locations(name, train.meta("centre")))
        x_test = glimpse_features(test_images, policy_locations(name, test.meta("centre")))
        results[name] = train_and_test(x_train, y_train, x_test, y_test, args.epochs, args.seed)
        print(
            f"house_numbers_difficulty policy={name} glimpses=6x(2x12x12) test_accuracy={results[name]:.3f} "
            f"train_images={args.train} epochs={args.epochs} seconds={time.perf_counter() - start:.0f}",
            flush=True,
        )
    print(
        f"house_numbers_difficulty gap_look_at_digit_minus_centre={results['look_at_digit'] - results['centre']:+.3f}"
    )


if __name__ == "__main__":
    main()
