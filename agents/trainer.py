"""The trainer every agent shares: the training loop, read top to bottom, with schedules, logs and evaluations.

A run folder holds ``config.json``, ``checkpoint.pt`` (written to a temporary file, then renamed: a run killed at
any moment resumes from its last complete checkpoint), ``evals.csv`` and TensorBoard logs under ``tb/``.
Determinism: every update resets the world with a seed derived from (seed, update) and samples locations from a
generator whose state is checkpointed, so a resumed run continues exactly as an uninterrupted one (on CPU).

What an agent is and how it learns come from the tables of ``activevision.agents.registry``: the trainer builds
the agent its config names, asks the agent's algorithm for the module to train and calls its ``update`` once per
update. Under torchrun (``agents/distributed.py``) rank 0 alone evaluates, logs and writes checkpoints, which hold
every rank's generator state: a run resumes with the same number of processes.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

import activevision  # noqa: F401  (registers the ids)
from activevision.agents import checkpoints
from activevision.agents.config import TrainConfig
from activevision.agents.distributed import (
    RANK_SEED_STRIDE,
    data_parallel,
    gather,
    init_distributed,
    resolve_device,
)
from activevision.agents.evaluation import evaluate, make_envs, trace
from activevision.agents.recipe import recipe_options
from activevision.agents.registry import AGENTS, agent_spec, algorithm_class
from activevision.data.files import atomic_write

__all__ = ["AGENTS", "TrainConfig", "Trainer", "make_agent", "evaluate", "trace", "load_run", "resolve_device"]


def make_agent(config: TrainConfig, observation_space: gym.spaces.Dict, num_classes: int) -> nn.Module:
    """The module ``config`` trains, for a world of this observation space and number of classes: its agent
    (built from its settings), as its algorithm trains it (PPO: in a Gaussian policy)."""
    config = config.resolved()
    agent = agent_spec(config.agent).make(observation_space, num_classes, **config.agent_settings)
    return algorithm_class(config.algorithm)(config.algorithm_options()).policy(agent, config)


class Trainer:
    """Trains the agent of ``config`` on a batched world with its algorithm; ``run()`` until ``config.steps``
    updates. It is the ``Learner`` an algorithm's ``update`` is given."""

    def __init__(self, config: TrainConfig, out: str | os.PathLike) -> None:
        self.config = config = config.resolved()
        self.out = Path(out)
        self.rank, self.processes = init_distributed(config.device)
        if config.batch % self.processes:
            raise ValueError(
                f"batch={config.batch} is not allowed with {self.processes} processes: use a multiple "
                f"of {self.processes} (each process runs batch / {self.processes} episodes)"
            )
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)  # the same initial parameters on every rank
        self.envs = make_envs(config, self.device, config.batch // self.processes)
        self.algorithm = algorithm_class(config.algorithm)(config.algorithm_options())
        self.agent: Any = make_agent(config, self.envs.single_observation_space, self.envs.world.num_classes)
        self.agent.to(self.device)
        assert config.lr is not None  # resolved
        # fused: one kernel updates every parameter (fewer ops; on the CPU within noise of the per-tensor loop)
        self.optimizer = torch.optim.AdamW(
            self.agent.parameters(),
            lr=config.lr,
            weight_decay=config.weight_decay,
            fused=self.device.type in ("cpu", "cuda"),
        )
        self.step: Callable[..., Any] = torch.compile(self.agent, dynamic=False) if config.compile else self.agent
        self.parallel = data_parallel(self.agent, self.device) if self.processes > 1 else None
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(config.seed + 1 + self.rank * RANK_SEED_STRIDE)
        self.update = 0
        self.evals: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ schedules
    def std(self) -> float:
        """The location std at this update (linear anneal to ``std_final`` when set)."""
        config = self.config
        if config.std_final is None:
            return config.std
        return config.std + (config.std_final - config.std) * min(self.update / max(config.steps - 1, 1), 1.0)

    def lr(self) -> float:
        """The learning rate of this update: ``lr``, or its cosine decay to ``lr_final``, times the warmup's
        ``(update + 1) / warmup`` during the first ``warmup`` updates."""
        config = self.config
        rate = config.lr
        assert rate is not None  # resolved
        if config.lr_final is not None:
            progress = min(self.update / max(config.steps - 1, 1), 1.0)
            rate = config.lr_final + 0.5 * (rate - config.lr_final) * (1.0 + np.cos(np.pi * progress))
        # A Python float: the optimizer's state is saved, and checkpoints hold plain values only.
        return float(rate * min(1.0, (self.update + 1) / config.warmup) if config.warmup else rate)

    def env_steps(self) -> int:
        """Env steps taken so far over all processes: every update runs ``batch`` episodes of fixed length."""
        world = self.envs.world
        return self.update * self.config.batch * (world.n_glimpses + int(world.start == "choose"))

    # ------------------------------------------------------------------ what an algorithm's update uses
    def forward(self, loss_of: Callable[[Any], Any]) -> Any:
        """``loss_of(agent)`` as the forward pass of the next gradient step (through DDP with several processes)."""
        return loss_of(self.agent) if self.parallel is None else self.parallel(loss_of)

    def optimise(self, loss: torch.Tensor) -> None:
        """One gradient step: backward (DDP averages the gradients over the processes), clipped, AdamW."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.agent.parameters(), self.config.clip)
        self.optimizer.step()

    # ------------------------------------------------------------------ training
    def train_step(self) -> dict[str, float]:
        """One update: a batched episode of every env from a seeded reset, then the algorithm's update."""
        config = self.config
        obs, _ = self.envs.reset(seed=config.seed * 1_000_003 + self.update + self.rank * RANK_SEED_STRIDE)
        self.agent.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr()
        metrics = self.algorithm.update(self, self.envs, obs)
        self.update += 1
        if self.processes > 1:  # the metrics of the whole batch
            values = torch.tensor(list(metrics.values()), dtype=torch.float64, device=self.device)
            dist.all_reduce(values)
            metrics = dict(zip(metrics, (values / self.processes).tolist()))
        return metrics

    def run(self, progress: bool = True) -> list[dict[str, Any]]:
        """Train to ``config.steps`` updates with progress, TensorBoard logs, evaluations and checkpoints."""
        from torch.utils.tensorboard import SummaryWriter

        config = self.config
        lead = self.rank == 0  # the one that logs, evaluates and writes
        if lead:
            self.out.mkdir(parents=True, exist_ok=True)
            # Events of updates after the checkpoint (a killed run logged them) go: they are trained again.
            writer = SummaryWriter(str(self.out / "tb"), purge_step=self.update + 1 if self.update else 0)
        bar = tqdm(
            total=config.steps,
            initial=self.update,
            disable=not progress or not lead,
            desc=f"{config.agent} {config.env}",
        )
        start, images = time.perf_counter(), 0
        while self.update < config.steps:
            metrics = self.train_step()
            images += config.batch
            rate = images / (time.perf_counter() - start)
            bar.set_postfix(acc=f"{metrics['accuracy']:.3f}", loss=f"{metrics['loss']:.3f}", img_s=f"{rate:,.0f}")
            bar.update(1)
            if lead:
                for name, value in metrics.items():
                    writer.add_scalar(f"train/{name}", value, self.update)
                writer.add_scalar("train/std", self.std(), self.update)
                writer.add_scalar("train/glimpses_per_s", rate * self.envs.world.n_glimpses, self.update)
            if lead and (self.update % config.eval_every == 0 or self.update == config.steps):
                result = evaluate(self.agent, config, self.device, split=config.eval_split)
                self.evals.append(
                    {"update": self.update, "env_steps": self.env_steps(), "split": config.eval_split, **result}
                )
                writer.add_scalar(f"eval/{config.eval_split}_accuracy", result["accuracy"], self.update)
                self._write_evals()
            if self.update % config.checkpoint_every == 0 or self.update == config.steps:
                self.save()
        bar.close()
        if lead:
            writer.close()
        return self.evals

    def _write_evals(self) -> None:
        if not self.evals:
            return
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(self.evals[0]))
        writer.writeheader()
        writer.writerows(self.evals)
        atomic_write(self.out / "evals.csv", text.getvalue().encode())

    # ------------------------------------------------------------------ checkpoints
    def parameter_digest(self) -> str:
        """SHA-256 of every parameter's bytes: equal on all ranks while they are in sync."""
        return hashlib.sha256(b"".join(p.detach().cpu().numpy().tobytes() for p in self.agent.parameters())).hexdigest()

    def save(self) -> None:
        """Write config and checkpoint atomically (rank 0; every rank must call it: it gathers each rank's random
        states, and refuses to write if the ranks' parameters differ)."""
        generators = gather(self.generator.get_state(), self.processes)
        rngs = gather(torch.get_rng_state(), self.processes)
        digests = gather(self.parameter_digest(), self.processes)
        if len(set(digests)) > 1:
            raise RuntimeError(f"the {self.processes} ranks' parameters differ at update {self.update}: not saved")
        if self.rank != 0:
            return
        state = {
            "update": self.update,
            "model": self.agent.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generators": generators,
            "torch_rngs": rngs,
            "world_size": self.processes,  # torch.distributed's name for the number of processes
            "digests": digests,
            "evals": self.evals,
        }
        checkpoints.write_run(self.out, dataclasses.asdict(self.config), state)

    @classmethod
    def resume(cls, out: str | os.PathLike, **changes: Any) -> Trainer:
        """The trainer of a run folder, at its last checkpoint. ``changes`` may set what a resumed run can change
        (``RESUME_CHANGES``: steps, device, evaluation and checkpoint settings); any other setting that differs
        from the saved one is refused by name. A damaged or foreign run folder is a ValueError naming the file."""
        folder = Path(out)
        checkpoints.require_checkpoint(folder)  # before the config: a folder that is no run says so first
        saved = checkpoints.read_config(folder)
        try:
            before = TrainConfig.from_dict(saved).resolved()
        except (ValueError, TypeError) as error:
            raise ValueError(f"{folder / 'config.json'}: {checkpoints.one_line(error)}") from None
        if before.recipe is not None:  # world options given again merge over the run's recipe, as they first did
            recipe = recipe_options(before.agent, before.env, before.recipe)
            for name in ("env_kwargs", "eval_env_kwargs"):
                if isinstance(changes.get(name), dict):
                    changes[name] = {**recipe.get(name, {}), **changes[name]}
        merged = {**before.flat(), **changes}
        checkpoints.check_resume_changes({"agent": before.agent}, {"agent": merged["agent"]})  # named first
        config = TrainConfig(**merged).resolved()
        checkpoints.check_resume_changes(before.flat(), config.flat())  # what may not change, refused by name
        try:  # a saved world or setting that no longer builds (edited, or from another version) names the file
            trainer = cls(config, folder)
        except ValueError as error:
            raise ValueError(f"{folder / 'config.json'}: {checkpoints.one_line(error)}") from None
        trainer.load()
        return trainer

    def load(self) -> None:
        """Continue from the run folder's checkpoint (tensors and plain values only, verified by its digests)."""
        path = self.out / "checkpoint.pt"
        state = checkpoints.read_checkpoint(path, self.device)
        saved = state["world_size"]
        if saved != self.processes:
            raise ValueError(
                f"{self.out} was trained with {saved} process(es): resume it with the same number "
                f"(torchrun --nproc_per_node={saved}), not {self.processes}"
            )
        try:
            self.agent.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.generator.set_state(state["generators"][self.rank])
            torch.set_rng_state(state["torch_rngs"][self.rank])
        except (RuntimeError, ValueError, KeyError, IndexError, TypeError) as error:
            raise ValueError(
                f"{path} does not match {self.out / 'config.json'} ({checkpoints.one_line(error)})"
            ) from None
        if state["digests"] and self.parameter_digest() != state["digests"][0]:
            raise ValueError(f"{path} is damaged: its weights do not match the parameter digest stored with them")
        self.update, self.evals = int(state["update"]), list(state["evals"])


def load_run(out: str | os.PathLike, device: str = "auto") -> tuple[TrainConfig, nn.Module, torch.device]:
    """The config and trained agent of a run folder."""
    trainer = Trainer.resume(out, device=device)
    return trainer.config, trainer.agent, trainer.device
