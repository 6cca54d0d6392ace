"""Command line: ``activevision demo | train | eval``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path

import cv2
import gymnasium as gym
import numpy as np

import activevision  # noqa: F401  (registers the ids)
from activevision.render import glimpse_patches, to_rgb8

__all__ = ["main", "episode_picture"]


def _write_png(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB picture atomically (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp.png")
    if not cv2.imwrite(str(temp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {temp}")
    temp.replace(path)


def episode_picture(env: gym.Env, actions: list[np.ndarray], seed: int) -> np.ndarray:
    """One episode as a strip: the rendered frame after each glimpse, with that glimpse's patches beneath."""
    obs, _ = env.reset(seed=seed)
    columns = []
    for step in range(len(actions) + 1):
        frame = env.render()
        patches = glimpse_patches(obs["glimpse"], size=frame.shape[1] // max(len(obs["glimpse"]), 1) - 2)
        patches = np.pad(patches, ((4, 4), (0, frame.shape[1] - patches.shape[1]), (0, 0)))
        columns.append(np.concatenate([frame, patches], axis=0))
        if step == len(actions):
            break
        obs, _, terminated, _, info = env.step(actions[step])
        if terminated:
            break
    gap = np.zeros((columns[0].shape[0], 4, 3), np.uint8)
    return np.concatenate([piece for column in columns for piece in (column, gap)][:-1], axis=1)


def demo(out: Path, episodes: int, seed: int) -> None:
    """Random glimpse policy on the offline world: prints results, writes an episode picture and world samples."""
    env = gym.make("GlimpseHouseNumbers-v0", render_mode="rgb_array")
    env.action_space.seed(seed)
    correct, seen = 0, 0.0
    env.reset(seed=seed)
    for _ in range(episodes):
        while True:
            _, _, terminated, truncated, info = env.step(env.action_space.sample())
            if terminated or truncated:
                correct += info["correct"]
                seen += info["pixels_seen"]
                env.reset()
                break
    print(f"GlimpseHouseNumbers-v0, random policy, {episodes} episodes: accuracy {correct / episodes:.3f} "
          f"(chance 0.100), pixels seen {seen / episodes:.3f}")

    rng = np.random.default_rng(seed)
    actions = [rng.uniform(-1, 1, env.action_space.shape).astype(np.float32) for _ in range(5)]
    _write_png(out / "episode.png", episode_picture(env, actions, seed))
    images, labels = env.unwrapped.dataset.arrays()
    tiles = [cv2.resize(to_rgb8(images[i]), (64, 64), interpolation=cv2.INTER_NEAREST) for i in range(32)]
    grid = np.concatenate([np.concatenate(tiles[r * 8 : (r + 1) * 8], axis=1) for r in range(4)], axis=0)
    _write_png(out / "world.png", grid)
    print(f"labels of world.png, row by row: {labels[:32].reshape(4, 8).tolist()}")
    print(f"wrote {out / 'episode.png'} (frames: squares per scale, path of glimpses; patches beneath) "
          f"and {out / 'world.png'}")


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One typed ``--option`` per TrainConfig field (``--env-kwargs`` takes JSON)."""
    from activevision.agents.trainer import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    for item in dataclasses.fields(TrainConfig):
        if item.name == "agent":
            continue
        flag = "--" + item.name.replace("_", "-")
        hint = hints[item.name]
        if item.name == "env_kwargs":
            parser.add_argument(flag, type=json.loads, default=None, help="JSON object of env options")
        elif hint is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            kind = next(t for t in (int, float, str) if t in (hint, *typing.get_args(hint)))
            parser.add_argument(flag, type=kind, default=None, help=f"default {item.default!r}")


def train(args: argparse.Namespace) -> None:
    """Train (or resume) an agent; prints the last evaluation."""
    from activevision.agents.trainer import TrainConfig, Trainer

    given = {k: v for k, v in vars(args).items() if k in {f.name for f in dataclasses.fields(TrainConfig)}
             and v is not None}
    if args.resume is not None:
        folder = Path(args.resume)
        if not (folder / "checkpoint.pt").is_file():
            raise SystemExit(f"--resume {folder}: no checkpoint.pt there (is it a run folder?)")
        config = TrainConfig(**json.loads((folder / "config.json").read_text()))
        for name in ("steps", "device"):  # the only settings a resume may change
            if name in given:
                setattr(config, name, given[name])
        trainer = Trainer(config, folder)
        trainer.load()
    else:
        if args.out is None:
            raise SystemExit("train needs --out RUN_FOLDER (or --resume RUN_FOLDER)")
        try:
            config = TrainConfig(**given)
            trainer = Trainer(config, args.out)
        except ValueError as error:
            raise SystemExit(str(error)) from None
        trainer.save()
    evals = trainer.run(progress=not args.quiet)
    last = evals[-1]
    print(f"{config.agent} on {config.env} ({config.policy} locations), {trainer.update} updates: "
          f"{config.eval_split} accuracy {last['accuracy']:.4f}, pixels seen {last['pixels_seen']:.3f} "
          f"-> {trainer.out}")


def evaluate_run(args: argparse.Namespace) -> None:
    """Evaluate a run folder on a split."""
    from activevision.agents.trainer import evaluate, load_run

    try:
        config, agent, device = load_run(args.run, args.device)
        result = evaluate(agent, config, device, split=args.split, mc=args.mc)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    print(f"{args.run}: {config.env} split={args.split} mc={args.mc}: accuracy {result['accuracy']:.4f} "
          f"over {result['images']} images, mean pixels seen {result['pixels_seen']:.3f}")


def render_run(args: argparse.Namespace) -> None:
    """Pictures of a trained run's glimpses: a PNG grid, or a GIF that plays the glimpses in order."""
    from activevision.agents.trainer import load_run, trace
    from activevision.render import glimpse_grid, write_picture

    try:
        config, agent, device = load_run(args.run, args.device)
        seen = trace(agent, config, device, split=args.split, examples=args.examples)
        if args.out.suffix.lower() == ".gif":
            steps = seen["locs"].shape[1]
            frames = [glimpse_grid(seen["images"], seen["locs"][:, : t + 1], seen["boxes_of"],
                                   seen["predictions"], seen["labels"]) for t in range(steps)]
            width = frames[-1].shape[1]
            write_picture(args.out, [np.pad(f, ((0, 0), (0, width - f.shape[1]), (0, 0))) for f in frames])
        else:
            write_picture(args.out, glimpse_grid(seen["images"], seen["locs"], seen["boxes_of"],
                                                 seen["predictions"], seen["labels"]))
    except ValueError as error:
        raise SystemExit(str(error)) from None
    right = sum(p == label for p, label in zip(seen["predictions"], seen["labels"]))
    print(f"wrote {args.out}: {args.examples} {args.split} examples (rows) x {seen['locs'].shape[1]} glimpses "
          f"(columns), {right} answered right")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``activevision`` command."""
    parser = argparse.ArgumentParser(prog="activevision", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="run the offline world with a random policy, write pictures")
    demo_parser.add_argument("--out", type=Path, default=Path("out/demo"))
    demo_parser.add_argument("--episodes", type=int, default=2000)
    demo_parser.add_argument("--seed", type=int, default=0)
    train_parser = commands.add_parser("train", help="train an agent on a glimpse world (REINFORCE)")
    train_parser.add_argument("agent", choices=["ram"])
    train_parser.add_argument("--out", type=Path, help="run folder (config, checkpoints, logs)")
    train_parser.add_argument("--resume", type=Path, help="continue the run in this folder")
    train_parser.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_options(train_parser)
    eval_parser = commands.add_parser("eval", help="evaluate a trained run")
    eval_parser.add_argument("run", type=Path)
    eval_parser.add_argument("--split", default="test")
    eval_parser.add_argument("--mc", type=int, default=1, help="average M sampled runs (1: mean locations)")
    eval_parser.add_argument("--device", default="auto")
    render_parser = commands.add_parser("render", help="pictures of a trained run's glimpses (.png grid or .gif)")
    render_parser.add_argument("run", type=Path)
    render_parser.add_argument("--out", type=Path, default=Path("glimpses.png"))
    render_parser.add_argument("--split", default="test")
    render_parser.add_argument("--examples", type=int, default=8)
    render_parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.episodes < 1:
            parser.error(f"--episodes {args.episodes} is not allowed: use 1 or more")
        demo(args.out, args.episodes, args.seed)
    elif args.command == "train":
        train(args)
    elif args.command == "render":
        render_run(args)
    else:
        evaluate_run(args)
