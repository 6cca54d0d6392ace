"""Command line: ``activevision demo | train | eval``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from pathlib import Path
from typing import Any

import numpy as np

import activevision  # noqa: F401  (registers the ids)
from activevision.demo import DEMO_STEPS, demo

__all__ = ["main"]


def _add_config_options(parser: argparse.ArgumentParser, agent: str | None) -> None:
    """One typed ``--option`` per TrainConfig field and per setting of every registered agent and algorithm (and of
    ``agent`` when it names one of your own, ``module:Class``); ``--env-kwargs`` takes JSON."""
    from activevision.agents.config import TrainConfig
    from activevision.agents.registry import AGENTS, ALGORITHMS, agent_spec

    specs = dict(AGENTS)
    if agent is not None and agent not in specs:
        try:
            specs[agent] = agent_spec(agent)
        except ValueError:
            pass  # named again when the config is built, with what is allowed
    # Where each setting is defined, and its default there ("ram 256, gam 64").
    owners: dict[str, list[tuple[str, Any, type]]] = {}
    for name, spec in specs.items():
        for cls in (spec.settings, ALGORITHMS[spec.algorithm].Settings):
            hints = typing.get_type_hints(cls)
            for item in dataclasses.fields(cls):
                owners.setdefault(item.name, []).append((name, item.default, hints[item.name]))
    hints = typing.get_type_hints(TrainConfig)
    for item in dataclasses.fields(TrainConfig):
        if item.name in ("agent", "agent_settings", "algorithm_settings"):
            continue
        default = {
            "lr": ", ".join(f"{name} {spec.lr!r}" for name, spec in specs.items()),
            "recipe": "tuned",  # the agent's recipe for the world; "paper": the paper's settings; "none"
        }.get(item.name, item.default)
        owners[item.name] = [("", default, hints[item.name])]
    for name, defined in owners.items():
        flag, hint = "--" + name.replace("_", "-"), defined[0][2]
        if name in ("env_kwargs", "eval_env_kwargs"):
            parser.add_argument(
                flag,
                type=json.loads,
                default=None,
                help="JSON object of env options"
                + (" replacing --env-kwargs in tests" if name == "eval_env_kwargs" else ""),
            )
            continue
        shown = ", ".join(dict.fromkeys(f"{owner} {default!r}".strip() for owner, default, _ in defined))
        if hint is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=f"default {shown}")
        else:
            kind = next(t for t in (int, float, str) if t in (hint, *typing.get_args(hint)))
            parser.add_argument(flag, type=kind, default=None, help=f"default {shown}")


def _recipe_config(given: dict[str, Any]) -> Any:
    """The resolved config of a new run: the agent's recipe for the world (``--recipe``, "tuned" unless said),
    every option given over it (``--env-kwargs`` merged over the recipe's world options)."""
    from activevision.agents.config import TrainConfig

    given = dict(given)
    agent, env = given.pop("agent"), given.pop("env", TrainConfig.env)
    return TrainConfig.from_recipe(agent, env, given.pop("recipe", "tuned"), **given).resolved()


def train(args: argparse.Namespace) -> None:
    """Train (or resume) an agent; prints the last evaluation. Under torchrun every process runs this."""
    import torch.distributed as dist

    from activevision.agents.checkpoints import check_new_run, clear_run
    from activevision.agents.trainer import Trainer

    options = ("command", "out", "resume", "overwrite", "quiet", "show_config")
    given = {name: value for name, value in vars(args).items() if name not in options and value is not None}
    if args.show_config and args.resume is None:  # the resolved settings of this command, nothing trained
        try:
            config = _recipe_config(given)
        except ValueError as error:
            raise SystemExit(str(error)) from None
        print(json.dumps(dataclasses.asdict(config), indent=2))
        return
    if args.resume is None and args.out is None:
        raise SystemExit("train needs --out RUN_FOLDER (or --resume RUN_FOLDER)")
    if args.resume is not None and (args.out is not None or args.overwrite):
        raise SystemExit("--resume continues a run in its own folder: leave out --out and --overwrite")
    try:
        if args.resume is not None:
            if not args.resume.strip():
                raise ValueError("--resume '' is not allowed: name the run folder to continue")
            trainer = Trainer.resume(args.resume, **given)
        else:
            config = _recipe_config(given)
            trainer = Trainer(config, check_new_run(args.out, args.overwrite))  # the folder checked first
            if args.overwrite and trainer.rank == 0:  # only now that the new run is built
                clear_run(trainer.out)
            trainer.save()
    except ValueError as error:
        raise SystemExit(str(error)) from None
    config = trainer.config
    evals = trainer.run(progress=not args.quiet)
    if dist.is_initialized():  # under torchrun: rank 0 reports
        # Every rank waits until rank 0 has finished its last evaluation and checkpoint: gloo aborts a rank whose
        # connections are torn down while another still uses them.
        dist.barrier()
        dist.destroy_process_group()
    if trainer.rank != 0:
        return
    last = evals[-1]
    print(
        f"{config.agent} on {config.env} ({config.policy} locations), {trainer.update} updates: "
        f"{config.eval_split} accuracy {last['accuracy']:.4f}, pixels seen {last['pixels_seen']:.3f} "
        f"-> {trainer.out}"
    )


def evaluate_run(args: argparse.Namespace) -> None:
    """Evaluate a run folder on a split: the mean location path, one sampled path and ``--mc`` sampled paths."""
    from activevision.agents.evaluation import protocol
    from activevision.agents.trainer import load_run

    try:
        config, agent, device = load_run(args.run, args.device)
        result = protocol(agent, config, device, split=args.split, mc=args.mc)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    print(
        f"{args.run}: {config.env} split={args.split}, accuracy over {result['images']} images: "
        f"{result['mean_path']:.4f} mean path, {result['sampled']:.4f} one sampled path, {result['mc_paths']:.4f} "
        f"{args.mc} sampled paths averaged; mean pixels seen {result['pixels_seen']:.3f}"
    )


def render_run(args: argparse.Namespace) -> None:
    """Pictures of a trained run's glimpses: a PNG grid, or a GIF that plays the glimpses in order."""
    from activevision.agents.trainer import load_run, trace
    from activevision.render import glimpse_grid, write_picture

    try:
        config, agent, device = load_run(args.run, args.device)
        seen = trace(agent, config, device, split=args.split, examples=args.examples)
        if args.out.suffix.lower() == ".gif":
            steps = seen["locs"].shape[1]
            frames = [
                glimpse_grid(
                    seen["images"], seen["locs"][:, : t + 1], seen["boxes_of"], seen["predictions"], seen["labels"]
                )
                for t in range(steps)
            ]
            width = frames[-1].shape[1]
            write_picture(args.out, [np.pad(f, ((0, 0), (0, width - f.shape[1]), (0, 0))) for f in frames])
        else:
            write_picture(
                args.out,
                glimpse_grid(seen["images"], seen["locs"], seen["boxes_of"], seen["predictions"], seen["labels"]),
            )
    except ValueError as error:
        raise SystemExit(str(error)) from None
    right = sum(p == label for p, label in zip(seen["predictions"], seen["labels"]))
    print(
        f"wrote {args.out}: {args.examples} {args.split} examples (rows) x {seen['locs'].shape[1]} glimpses "
        f"(columns), {right} answered right"
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``activevision`` command."""
    from activevision.agents.registry import AGENTS

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="activevision", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser(
        "demo",
        help="train RAM and the random-location baseline on cluttered MNIST, print both, write glimpse pictures",
    )
    demo_parser.add_argument(
        "--data-dir", type=Path, help="a folder with the MNIST t10k files (default: the data root, downloading)"
    )
    demo_parser.add_argument("--out", type=Path, default=Path("out/demo"))
    demo_parser.add_argument("--steps", type=int, default=DEMO_STEPS, help="updates per agent")
    demo_parser.add_argument("--seed", type=int, default=0)
    demo_parser.add_argument("--quiet", action="store_true")
    train_parser = commands.add_parser(
        "train", help="train an agent on a glimpse world (REINFORCE, PPO or top-down Q-learning)"
    )
    train_parser.add_argument(
        "agent",
        help=f"one of {', '.join(AGENTS)} (ram: recurrent attention model; gam: glimpse attention model, a "
        "transformer + context network; ppo-ram / ppo-gam: either trained by PPO; topdown: Q-learning of regions + "
        "RAM inside them), or your own as module:Class",
    )
    train_parser.add_argument("--out", help="run folder (config, checkpoints, logs); refused if it holds a run")
    train_parser.add_argument(
        "--resume",
        help="continue the run in this folder (may change steps, device, evaluation and checkpoint settings)",
    )
    train_parser.add_argument("--overwrite", action="store_true", help="replace the run that --out holds")
    train_parser.add_argument("--quiet", action="store_true", help="no progress bar")
    train_parser.add_argument(
        "--show-config", action="store_true", help="print every resolved setting (recipe and options) and stop"
    )
    named = argv[1] if len(argv) > 1 and argv[0] == "train" and not argv[1].startswith("-") else None
    _add_config_options(train_parser, named)
    eval_parser = commands.add_parser("eval", help="evaluate a trained run")
    eval_parser.add_argument("run", type=Path)
    eval_parser.add_argument("--split", default="test")
    eval_parser.add_argument("--mc", type=int, default=10, help="sampled location paths averaged (the third figure)")
    eval_parser.add_argument("--device", default="auto")
    render_parser = commands.add_parser("render", help="pictures of a trained run's glimpses (.png grid or .gif)")
    render_parser.add_argument("run", type=Path)
    render_parser.add_argument("--out", type=Path, default=Path("glimpses.png"))
    render_parser.add_argument("--split", default="test")
    render_parser.add_argument("--examples", type=int, default=8)
    render_parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.steps < 1:
            parser.error(f"--steps {args.steps} is not allowed: use 1 or more")
        demo(args.out, args.steps, args.seed, args.data_dir, args.quiet)
    elif args.command == "train":
        train(args)
    elif args.command == "render":
        render_run(args)
    else:
        evaluate_run(args)
