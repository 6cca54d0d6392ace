"""Scale check: the step time of worlds over 64^2 to 16,384^2 canvases read lazily from disk (target: flat) and
their memory (bounded); a conv net that reads the whole image pays for every pixel.

Canvases: MNIST t10k digits (the committed files) at random places on blank grey canvases, written as a memmap
folder (``activevision.data.write_large_canvases``) with its summed-area tables (built once, timed). Each size:
the single env's step time (continuous mode, random actions, 4 scales of 12x12), the batched env's step time
(256 envs), the process's anonymous memory (page cache of the memmaps not counted: it is the OS's, reclaimable),
and one forward pass of a small conv net (two 3x3 convs, stride 2) over the whole canvas. The tables were just
written, so glimpses read them from the page cache (warm): the figures are those of a canvas already opened.

Step times on this VM drift by +-30 % from minute to minute (the same 64^2 world: 2.8 ms in one run, 4.6 ms in
the next), more than the effect measured: every size's envs are made first, then timed in ``--rounds`` rounds
(after ``--warmup-rounds`` left out: for ~10 s after 4.6 GB of tables are written, single rounds take up to twice
as long), each round every size in turn (a slow minute slows all of them), and each figure is the median of its
rounds. Each round also times the largest canvas with every glimpse within a 64-pixel square at its centre: the
same code, its table reads served by the core's caches, as they are at 64^2. That step's ratio to the 64^2 one
shows how much of the largest canvas's ratio is the code (the confined ratio) and how much is reading memory.

    python benchmarks/large_images.py [--sizes 64 256 1024 4096 16384] [--huge] [--dir /tmp/large] [--rounds 7]
        [--batched-steps 100] [--warmup-rounds 2]

Every size's canvases stay on disk until the end (about 5 GB for the default sizes); ``--huge`` adds a 65,536^2
canvas (4.3 GB of image and 8.6 GB of 16-bit tables, one copy: ``phase_copies=False``, since with the phase-4 and
the shifted copies, 34 GB, they exceed the 24 GB of memory of the development VM and every page a glimpse touches
is read from disk). One line per size, then the ratio line (largest / smallest step time; target <= 1.25) and the
confined line.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from activevision.data import MNIST, LargeImageDataset, write_large_canvases
from activevision.envs import GlimpseEnv
from activevision.envs.vector import GlimpseVectorEnv

MNIST_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "mnist"
WORLD = dict(patch=12, scales=4, n_glimpses=8)


def anonymous_memory_mb() -> float:
    """Resident anonymous memory of this process (heap, tensors), without file-backed memmap pages."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def huge_page_share(folder: Path) -> float:
    """Share of this process's mapped pages of ``folder``'s tables that sit in 2 MB pages (one TLB entry each)."""
    rss = huge = 0
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if re.match(r"[0-9a-f]+-[0-9a-f]+ ", line):  # a mapping's header line: address range, ..., path
            inside = str(folder) in line and "integral" in line
        elif inside and line.startswith("Rss:"):
            rss += int(line.split()[1])
        elif inside and line.startswith("FilePmdMapped:"):
            huge += int(line.split()[1])
    return huge / rss if rss else float("nan")


def single_step_us(env: GlimpseEnv, steps: int) -> float:
    """Mean microseconds per step over ``steps`` random steps (resets included, as in training)."""
    actions = [env.action_space.sample() for _ in range(steps)]
    start = time.perf_counter()
    for action in actions:
        _, _, done, _, _ = env.step(action)
        if done:
            env.reset()
    return (time.perf_counter() - start) / steps * 1e6


def batched_step_ms(envs: GlimpseVectorEnv, steps: int, generator: torch.Generator, spread: float = 1.0) -> float:
    """Mean milliseconds per step of the batched env over ``steps`` random steps, locations within ``spread`` of
    the centre (1: anywhere)."""
    actions = [torch.rand(envs.action_space.shape, generator=generator) * 2 - 1 for _ in range(steps)]
    for action in actions:
        action[:, :2] *= spread
    start = time.perf_counter()
    for action in actions:
        envs.step(action)
    return (time.perf_counter() - start) / steps * 1e3


def conv_forward_s(side: int) -> str:
    """Seconds of one forward pass of two strided 3x3 convs (8 channels) over the whole canvas, or why not."""
    need = side * side * 4 * 3  # input, and outputs of 8 channels at a quarter and 1/16 of the pixels, float32
    if need > 12 * 2**30:
        return f"skipped(needs~{need / 2**30:.0f}GiB)"
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, stride=2, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, stride=2, padding=1)
    )
    image = torch.rand(1, 1, side, side)
    with torch.no_grad():
        start = time.perf_counter()
        net(image)
    return f"{time.perf_counter() - start:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024, 4096, 16384])
    parser.add_argument("--huge", action="store_true", help="add a 65,536^2 canvas (about 22 GB on disk)")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the canvases (default: a temp dir)")
    parser.add_argument("--steps", type=int, default=5000, help="single-env steps per size, over all rounds")
    parser.add_argument("--rounds", type=int, default=7, help="timing rounds over all sizes; medians reported")
    parser.add_argument("--batched-steps", type=int, default=100, help="batched steps per size and round")
    parser.add_argument("--warmup-rounds", type=int, default=2, help="rounds timed first and left out")
    args = parser.parse_args()
    for name, low in (("steps", 1), ("rounds", 1), ("batched_steps", 1), ("warmup_rounds", 0)):
        if getattr(args, name) < low:
            parser.error(f"--{name.replace('_', '-')}={getattr(args, name)} is not allowed: use an integer >= {low}")
    torch.set_num_threads(1)
    sizes = args.sizes + ([65536] if args.huge else [])
    digits = MNIST("t10k-train", data_dir=MNIST_DIR, download=False)
    root = Path(tempfile.mkdtemp(dir=args.dir, prefix="large-images-")).resolve()  # as /proc/self/smaps names it
    worlds, built, memory = {}, {}, {}
    generator = torch.Generator().manual_seed(0)
    try:
        for side in sizes:
            canvases = 1 if side > 16384 else 2
            data = write_large_canvases(root / f"c{side}", digits, n=canvases, canvas=side, n_distractors=3, seed=0)
            if side > 16384:  # one copy of the tables: with the phase-4 copy they exceed this VM's memory
                data = LargeImageDataset(data.folder, phase_copies=False)
            start = time.perf_counter()
            batched = GlimpseVectorEnv(data, 256, **WORLD)  # builds the tables of the phases the world reads
            built[side] = (time.perf_counter() - start, sum(p.stat().st_size for p in data.folder.iterdir()) / 2**30)
            single = GlimpseEnv(data, **WORLD)
            single.action_space.seed(0)
            single.reset(seed=0)
            batched.reset(seed=0)
            # Warm-up: the first read of each 2 MB page of the tables' map faults it in (once per opened world).
            single_step_us(single, 2000)
            batched_step_ms(batched, 100, generator)
            worlds[side] = single, batched
            memory[side] = anonymous_memory_mb()
        os.sync()  # the tables just written go to disk now, not while steps are timed (rounds of 10-80 ms otherwise)
        times = {side: ([], []) for side in sizes}
        high = max(sizes)
        confined = []  # the largest canvas, glimpses within a 64-pixel square: its tables read from the caches
        for round_ in range(args.warmup_rounds + args.rounds):
            kept = round_ >= args.warmup_rounds
            for side, (single, batched) in worlds.items():
                single_us = single_step_us(single, args.steps // args.rounds)
                batched_ms = batched_step_ms(batched, args.batched_steps, generator)
                if kept:
                    times[side][0].append(single_us)
                    times[side][1].append(batched_ms)
            in_cache = batched_step_ms(worlds[high][1], args.batched_steps, generator, spread=64 / high)
            if kept:
                confined.append(in_cache)
        huge = {side: huge_page_share(root / f"c{side}") for side in sizes}
        single = {side: statistics.median(times[side][0]) for side in sizes}
        batched = {side: statistics.median(times[side][1]) for side in sizes}
        for side in sizes:
            print(
                f"large_images canvas={side}x{side} disk_gb={built[side][1]:.2f} tables_s={built[side][0]:.1f} "
                f"single_step_us={single[side]:.1f} batched256_step_ms={batched[side]:.2f} "
                f"(rounds: single {min(times[side][0]):.0f}-{max(times[side][0]):.0f}, batched "
                f"{min(times[side][1]):.2f}-{max(times[side][1]):.2f}) "
                f"anon_mem_mb_after_this_size={memory[side]:.0f} tables_in_2mb_pages={huge[side]:.2f}",
                flush=True,
            )
    finally:
        worlds.clear()
        shutil.rmtree(root, ignore_errors=True)
    for side in sizes:  # after the envs, so their memory figures never include these allocations
        print(f"large_images canvas={side}x{side} conv_forward_s={conv_forward_s(side)} (whole image, 1 thread)")
    low = min(sizes)
    middle = 4096 if 4096 in sizes and high > 4096 else low
    print(
        f"large_images ratio_{high}_over_{low} single={single[high] / single[low]:.2f} "
        f"batched={batched[high] / batched[low]:.2f} (target <= 1.25); ratio_{high}_over_{middle} "
        f"single={single[high] / single[middle]:.2f} batched={batched[high] / batched[middle]:.2f} "
        f"(medians of {args.rounds} interleaved rounds)"
    )
    print(
        f"large_images canvas={high}x{high} confined_batched256_step_ms={statistics.median(confined):.2f} "
        f"ratio_over_{low}={statistics.median(confined) / batched[low]:.2f} (glimpses within a 64-pixel square: "
        f"the same reads from the core's caches; the rest of ratio_{high}_over_{low} is reads from memory)"
    )


if __name__ == "__main__":
    main()
