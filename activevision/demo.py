"""``activevision demo`` (``make demo``): RAM against its random-location baseline in a world where looking matters."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from activevision.render import glimpse_grid, to_rgb8, write_picture

__all__ = ["DEMO_OPTIONS", "DEMO_STEPS", "DEMO_WORLD", "demo"]

DEMO_STEPS = 3000  # updates per agent in `make demo`: under 4 minutes for both on 2 CPU cores
DEMO_WORLD = "GlimpseClutteredMNIST-v0"  # a digit among clutter on a 60x60 canvas
# Two glimpses among 8 distractors: the first, at the centre, must tell where to look; the second is the one that
# reads the digit, so where it goes decides the answer. The search for this world: docs/research/tried-and-not-kept.md
DEMO_OPTIONS: dict[str, int] = {"n_distractors": 8, "n_glimpses": 2}


def demo(out: Path, steps: int, seed: int, data_dir: Path | None = None, quiet: bool = False) -> None:
    """Train RAM (its recipe) and the random-location baseline on cluttered MNIST canvases with two glimpses each
    (``DEMO_OPTIONS``; MNIST t10k: the first 8,000 digits train, the last 2,000 test); print both accuracies;
    write a picture of RAM's glimpses and samples of the world. ``data_dir``: a folder with the MNIST t10k files
    (else the data root, downloading)."""
    from activevision.agents import TrainConfig, Trainer, evaluate, trace
    from activevision.envs import make_dataset

    files = {"data_dir": None if data_dir is None else str(data_dir), "download": data_dir is None}
    results = {}
    for policy in ("learned", "random"):
        config = TrainConfig.from_recipe(
            "ram",
            DEMO_WORLD,
            env_kwargs={"split": "t10k-train", **DEMO_OPTIONS, **files},
            eval_split="t10k-test",
            policy=policy,
            steps=steps,
            seed=seed,
            eval_every=steps,
            checkpoint_every=steps,
        )
        trainer = Trainer(config, out / ("ram" if policy == "learned" else "random_locations"))
        start = time.perf_counter()
        trainer.run(progress=not quiet)
        results[policy] = (
            evaluate(trainer.agent, trainer.config, trainer.device, split="t10k-test"),
            time.perf_counter() - start,
            trainer,
        )
    ram, baseline = results["learned"][0], results["random"][0]
    options = ", ".join(f"{key}={value}" for key, value in DEMO_OPTIONS.items())
    print(f"{DEMO_WORLD} ({options}), {ram['images']:,} test canvases, {steps:,} updates of 128 episodes each:")
    print(
        f"  RAM (learned glimpse locations): accuracy {ram['accuracy']:.3f}, pixels seen {ram['pixels_seen']:.3f}, "
        f"{results['learned'][1]:.0f} s"
    )
    print(
        f"  random-location baseline:        accuracy {baseline['accuracy']:.3f}, pixels seen "
        f"{baseline['pixels_seen']:.3f}, {results['random'][1]:.0f} s"
    )
    trainer = results["learned"][2]
    seen = trace(trainer.agent, trainer.config, trainer.device, split="t10k-test", examples=8)
    half = len(seen["images"]) // 2
    panels = [  # two panels of four canvases side by side: a short, wide picture of a two-glimpse world
        glimpse_grid(
            seen["images"][part], seen["locs"][part], seen["boxes_of"], seen["predictions"][part], seen["labels"][part]
        )
        for part in (slice(0, half), slice(half, None))
    ]
    gap = np.zeros((panels[0].shape[0], 12, 3), np.uint8)
    write_picture(out / "glimpses.png", np.concatenate([panels[0], gap, panels[1]], axis=1))
    images, _ = make_dataset(
        DEMO_WORLD, split="t10k-test", size=32, n_distractors=DEMO_OPTIONS["n_distractors"], **files
    ).arrays()
    tiles = [cv2.resize(to_rgb8(image), (96, 96), interpolation=cv2.INTER_NEAREST) for image in images]
    write_picture(
        out / "world.png",
        np.concatenate([np.concatenate(tiles[r * 8 : (r + 1) * 8], axis=1) for r in range(4)], axis=0),
    )
    print(
        f"wrote {out / 'glimpses.png'} (two panels; rows: test canvases; columns: RAM's glimpses in order, a square "
        f"per scale, the path so far; answer / truth on the last) and {out / 'world.png'}; runs in {out}"
    )
