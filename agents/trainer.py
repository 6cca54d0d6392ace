"""The trainer every agent shares: config, run folder, atomic checkpoints, bit-for-bit resume, logs, evaluation.

A run folder holds ``config.json``, ``checkpoint.pt`` (written to a temporary file, then renamed: a run killed at
any moment resumes from its last complete checkpoint), ``evals.csv`` and TensorBoard logs under ``tb/``.
Determinism: every update resets the world with a seed derived from (seed, update) and samples locations from a
generator whose state is checkpointed, so a resumed run continues exactly as an uninterrupted one (on CPU).

Several processes (``torchrun --nproc_per_node=N -m activevision train ...``): each rank runs ``batch / N``
episodes of its own seeded world shard (seeds derived from (seed, update, rank)), gradients are averaged over
the ranks (one all-reduce per update) before clipping and Adam, so every rank holds the same parameters; training
metrics are averaged over the ranks; rank 0 alone evaluates, logs and writes checkpoints, which hold every rank's
generator state: a run resumes with the same number of processes.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

import activevision  # noqa: F401  (registers the ids)
from activevision.agents.checkpoints import (
    check_resume_changes,
    config_fields,
    one_line,
    read_checkpoint,
    read_config,
    require_checkpoint,
    state_digest,
)
from activevision.agents.gam import GAM
from activevision.agents.modules import COMBINES, CORES, WHATS
from activevision.agents.ppo import GaussianPolicy, PPOSettings, ppo_update
from activevision.agents.ram import RAM
from activevision.agents.reinforce import CLASSIFY_STEPS, POLICIES, hybrid_loss, location_decisions, rollout
from activevision.agents.topdown import TopDown, q_learning_loss
from activevision.checks import check_choice, check_device, check_field_types, check_int
from activevision.data.files import atomic_write
from activevision.envs.presets import PRESETS, make_dataset
from activevision.envs.vector import GlimpseVectorEnv

__all__ = [
    "AGENTS",
    "AGENT_DEFAULTS",
    "TrainConfig",
    "Trainer",
    "make_agent",
    "evaluate",
    "trace",
    "load_run",
    "resolve_device",
]

AGENTS = ("ram", "gam", "ppo-ram", "ppo-gam", "topdown")
# How each agent learns where to look: REINFORCE (RAM, GAM), PPO (with a RAM or GAM core), or top-down Q-learning
# of regions with REINFORCE inside them (agents/topdown.py).
ALGORITHMS = {"ram": "reinforce", "gam": "reinforce", "ppo-ram": "ppo", "ppo-gam": "ppo", "topdown": "q-topdown"}
# Settings left at None take their agent's default: RAM's from Mnih et al. 2014 (hidden 256), GAM's from the
# glimpse attention paper (width 64, lr 1e-4, conv "what" net combined by product with "where"); PPO and the
# top-down agent take their core's.
_RAM = dict(hidden=256, glimpse_hidden=128, lr=1e-3, combine="add", what="mlp")
_GAM = dict(hidden=64, glimpse_hidden=64, lr=1e-4, combine="mul", what="conv")
AGENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "ram": _RAM,
    "gam": _GAM,
    "ppo-ram": dict(_RAM, lr=3e-4),
    "ppo-gam": _GAM,
    "topdown": _RAM,
}
# The context asked of a world whose env_kwargs name no context_size: GAM's paper uses 12x12; the top-down agent
# picks regions from it, so it sees more (a digit on a 100x100 canvas is ~7 pixels wide at 24).
CONTEXT_SIZES = {"gam": 12, "ppo-gam": 12, "topdown": 24}


# Rank r's seeds are rank 0's plus r * this (rank 0 seeds as a single process does). Torch's CPU generator keeps
# only a seed's low 32 bits, so the stride must change them: a prime near 2^30 keeps the ranks' streams apart.
RANK_SEED_STRIDE = 1_000_000_007


def init_distributed(device: str) -> tuple[int, int]:
    """``(rank, number of processes)``: joins the process group when started by torchrun (``WORLD_SIZE`` > 1; NCCL for
    CUDA, gloo for the CPU; rendezvous from torchrun's environment), else ``(0, 1)``."""
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    if processes == 1:
        return 0, 1
    if not dist.is_initialized():
        cuda = device in ("auto", "cuda") and torch.cuda.is_available() or device.startswith("cuda")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return dist.get_rank(), dist.get_world_size()


def resolve_device(device: str) -> torch.device:
    """ "auto" is cuda when present, else cpu; anything else is passed to torch (and must exist). Under torchrun,
    "auto" and "cuda" mean this process's GPU (``LOCAL_RANK``)."""
    if device in ("auto", "cuda") and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device(device)


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as ``config.json`` in the run folder."""

    agent: str = "ram"
    env: str = "GlimpseMNIST-v0"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    eval_split: str = "test"
    eval_env_kwargs: dict[str, Any] = field(default_factory=dict)  # replace env_kwargs in tests (e.g. size)
    policy: str = "learned"  # "random" / "center": the location baselines (classifier and core still learn)
    steps: int = 2000  # updates; each is one episode of every env in the batch
    batch: int = 128
    seed: int = 0
    device: str = "auto"
    lr: float | None = None  # None: the agent's default (AGENT_DEFAULTS), likewise below
    lr_final: float | None = None  # cosine decay to this rate when set
    warmup: int = 0  # updates of linear learning-rate warmup from lr / warmup (0: none)
    hidden: int | None = None
    glimpse_hidden: int | None = None
    core: str = "rnn"  # RAM's recurrent core
    combine: str | None = None
    what: str | None = None
    layers: int = 1  # GAM: encoder and decoder layers
    heads: int = 4  # GAM: attention heads
    encoder_skip: bool = False  # GAM: the location head also reads the newest encoder token (README, GAM)
    ppo_epochs: int = 4  # PPO: passes over each batch of episodes
    minibatches: int = 4  # PPO: minibatches of whole episodes per pass
    clip_range: float = 0.2  # PPO: ratio clipping
    gamma: float = 1.0  # PPO and top-down Q-learning: discount per decision
    gae_lambda: float = 0.95  # PPO
    vf_coef: float = 0.5  # PPO: weight of the value loss
    regions: int = 3  # top-down: the image cut into regions x regions
    rounds: int = 2  # top-down: region choices per episode
    epsilon: float = 1.0  # top-down: exploration at the start, annealed linearly ...
    epsilon_final: float = 0.05  # ... to this
    epsilon_fraction: float = 0.5  # ... over this fraction of the updates
    target_every: int = 50  # top-down: updates between target-network copies
    n_step: int = 1  # top-down: rewards summed before bootstrapping from the target network
    std: float = 0.17  # the location std (PPO: its initial value; PPO learns it)
    std_final: float | None = None  # linear anneal of the location std to this value when set
    entropy: float = 0.0  # entropy bonus (REINFORCE: of the fixed-std Gaussian, logged only; PPO: its coefficient)
    classify_steps: str = "last"  # "all": cross-entropy on the scores after every glimpse, averaged
    weight_decay: float = 0.0  # AdamW's decoupled weight decay
    dropout: float = 0.0  # on the state, before the classifier
    clip: float = 5.0
    eval_every: int = 500
    eval_batch: int = 1000
    checkpoint_every: int = 500
    compile: bool = False

    def check(self) -> TrainConfig:
        """Fill the agent's defaults; raise a ValueError naming any bad value and what is allowed."""
        check_field_types(self)
        check_choice("agent", self.agent, AGENTS)
        for name, value in AGENT_DEFAULTS[self.agent].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.env not in activevision.ENV_IDS:
            raise ValueError(f"env={self.env!r} is not allowed: choose one of {sorted(activevision.ENV_IDS)}")
        for name, allowed in {
            "policy": POLICIES,
            "core": CORES,
            "combine": COMBINES,
            "what": WHATS,
            "classify_steps": CLASSIFY_STEPS,
        }.items():
            check_choice(name, getattr(self, name), allowed)
        for name in (
            "steps",
            "batch",
            "hidden",
            "glimpse_hidden",
            "layers",
            "heads",
            "eval_every",
            "eval_batch",
            "checkpoint_every",
            "ppo_epochs",
            "minibatches",
            "regions",
            "rounds",
            "target_every",
            "n_step",
        ):
            check_int(name, getattr(self, name), 1)
        check_int("warmup", self.warmup, 0)
        for name in ("lr", "std", "clip", "clip_range"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed: it must be > 0")
        for name in ("gamma", "gae_lambda", "epsilon", "epsilon_final", "epsilon_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed: use a number in [0, 1]")
        if not self.vf_coef >= 0.0:
            raise ValueError(f"vf_coef={self.vf_coef!r} is not allowed: it must be >= 0")
        if not 0.0 <= self.dropout < 1.0 or not self.weight_decay >= 0.0:
            raise ValueError(
                f"dropout={self.dropout!r} / weight_decay={self.weight_decay!r} are not allowed: "
                "use 0 <= dropout < 1 and weight_decay >= 0"
            )
        for name in ("env_kwargs", "eval_env_kwargs"):
            value = getattr(self, name)
            if not isinstance(value, dict):
                raise ValueError(f"{name}={value!r} is not allowed: use a dict (JSON object)")
            # Saved in config.json: paths become strings, anything else JSON cannot hold is refused by name.
            value = {key: os.fspath(v) if isinstance(v, os.PathLike) else v for key, v in value.items()}
            for key, v in value.items():
                try:
                    json.dumps(v)
                except TypeError:
                    raise ValueError(
                        f"{name}[{key!r}]={v!r} is not allowed: use JSON values (numbers, strings, lists, dicts, null)"
                    ) from None
            setattr(self, name, value)
            if value.get("action_mode", "continuous") != "continuous":
                raise ValueError(
                    f"{name} action_mode must be 'continuous' for {self.agent} (location + scores every step)"
                )
        if self.agent != "ram" and self.compile:
            raise ValueError(
                f"compile=True is not allowed for {self.agent}: use it with ram (GAM's caches grow "
                "every step; PPO replays and the top-down frame run the agent eagerly)"
            )
        if not isinstance(self.encoder_skip, bool) or (self.encoder_skip and self.agent not in ("gam", "ppo-gam")):
            raise ValueError(
                f"encoder_skip={self.encoder_skip!r} is not allowed for {self.agent}: use True or False, "
                "and True only with gam or ppo-gam (the skip is GAM's)"
            )
        if ALGORITHMS[self.agent] == "ppo":
            if self.std_final is not None:
                raise ValueError(
                    f"std_final={self.std_final!r} is not allowed for {self.agent}: PPO learns the "
                    "location std (std is its initial value); leave std_final unset"
                )
            if self.policy != "learned":
                raise ValueError(
                    f"policy={self.policy!r} is not allowed for {self.agent}: PPO trains the learned "
                    "policy (the location baselines train with agent ram)"
                )
            if self.batch < self.minibatches:
                raise ValueError(
                    f"minibatches={self.minibatches} is not allowed with batch={self.batch}: use at "
                    "most one minibatch per episode"
                )
        if self.agent in CONTEXT_SIZES and self.env_kwargs.get("context_size") is None:
            self.env_kwargs = {**self.env_kwargs, "context_size": CONTEXT_SIZES[self.agent]}
        return self

    @property
    def algorithm(self) -> str:
        """How the agent learns: "reinforce", "ppo" or "q-topdown"."""
        return ALGORITHMS[self.agent]


def _make_envs(config: TrainConfig, device: torch.device, num_envs: int, **overrides: Any) -> GlimpseVectorEnv:
    kwargs = {**config.env_kwargs, "action_mode": "continuous", **overrides}
    envs = gym.make_vec(config.env, num_envs=num_envs, device=device, compile=config.compile, **kwargs)
    assert isinstance(envs, GlimpseVectorEnv)  # every registered world's batched entry point makes one
    return envs


def _test_kwargs(config: TrainConfig, split: str) -> dict[str, Any]:
    """The world options of a test on ``split``: ``eval_env_kwargs`` over ``env_kwargs``, no augmentation."""
    return {**config.env_kwargs, **config.eval_env_kwargs, "split": split, "order": "sequential", "shift": 0}


def make_agent(config: TrainConfig, observation_space: gym.spaces.Dict, num_classes: int) -> nn.Module:
    """The agent ``config`` names, for a world of this observation space and number of classes."""
    config.check()
    # Every setting check() filled from the agent's defaults, as the agent's keyword arguments.
    shared: dict[str, Any] = {
        name: getattr(config, name) for name in ("hidden", "glimpse_hidden", "combine", "what", "dropout")
    }
    if config.agent == "topdown":
        return TopDown(
            observation_space, num_classes, core=config.core, grid=config.regions, rounds=config.rounds, **shared
        )
    core: nn.Module
    if config.agent in ("gam", "ppo-gam"):
        core = GAM(
            observation_space,
            num_classes,
            layers=config.layers,
            heads=config.heads,
            encoder_skip=config.encoder_skip,
            **shared,
        )
    else:
        core = RAM(observation_space, num_classes, core=config.core, **shared)
    return GaussianPolicy(core, config.std) if config.algorithm == "ppo" else core


class Trainer:
    """Trains an agent on a batched world (REINFORCE, PPO or top-down Q-learning, as its config names);
    ``run()`` until ``config.steps`` updates."""

    def __init__(self, config: TrainConfig, out: str | os.PathLike) -> None:
        self.config = config.check()
        self.out = Path(out)
        self.rank, self.processes = init_distributed(config.device)
        if config.batch % self.processes:
            raise ValueError(
                f"batch={config.batch} is not allowed with {self.processes} processes: use a multiple "
                f"of {self.processes} (each process runs batch / {self.processes} episodes)"
            )
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)  # the same initial parameters on every rank
        self.envs = _make_envs(config, self.device, config.batch // self.processes)
        # Any: RAM, GAM, TopDown or PPO's GaussianPolicy, each an nn.Module with the GlimpseAgent step interface.
        self.agent: Any = make_agent(config, self.envs.single_observation_space, self.envs.world.num_classes)
        self.agent.to(self.device)
        assert config.lr is not None  # check() filled it
        # fused: one kernel updates every parameter (fewer ops; on this CPU within noise of the per-tensor loop)
        self.optimizer = torch.optim.AdamW(
            self.agent.parameters(),
            lr=config.lr,
            weight_decay=config.weight_decay,
            fused=self.device.type in ("cpu", "cuda"),
        )
        self.step = torch.compile(self.agent, dynamic=False) if config.compile else self.agent
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
        assert rate is not None  # check() filled it
        if config.lr_final is not None:
            progress = min(self.update / max(config.steps - 1, 1), 1.0)
            rate = config.lr_final + 0.5 * (rate - config.lr_final) * (1.0 + np.cos(np.pi * progress))
        # A Python float: the optimizer's state is saved, and checkpoints hold plain values only.
        return float(rate * min(1.0, (self.update + 1) / config.warmup) if config.warmup else rate)

    def epsilon(self) -> float:
        """Top-down exploration at this update: linear from ``epsilon`` to ``epsilon_final`` over the first
        ``epsilon_fraction`` of the updates."""
        config = self.config
        span = config.epsilon_fraction * config.steps
        progress = min(self.update / span, 1.0) if span > 0 else 1.0
        return config.epsilon + (config.epsilon_final - config.epsilon) * progress

    def env_steps(self) -> int:
        """Env steps taken so far over all processes: every update runs ``batch`` episodes of fixed length."""
        world = self.envs.world
        return self.update * self.config.batch * (world.n_glimpses + int(world.start == "choose"))

    # ------------------------------------------------------------------ checkpoints
    def parameter_digest(self) -> str:
        """SHA-256 of every parameter's bytes: equal on all ranks while they are in sync."""
        return hashlib.sha256(b"".join(p.detach().cpu().numpy().tobytes() for p in self.agent.parameters())).hexdigest()

    def _gather(self, value: Any) -> list[Any]:
        """``value`` of every rank, in rank order (collective: every rank must call it)."""
        if self.processes == 1:
            return [value]
        values: list[Any] = [None] * self.processes
        dist.all_gather_object(values, value)
        return values

    def save(self) -> None:
        """Write config and checkpoint atomically (rank 0; every rank must call it: it gathers each rank's random
        states, and refuses to write if the ranks' parameters differ)."""
        generators = self._gather(self.generator.get_state())
        rngs = self._gather(torch.get_rng_state())
        digests = self._gather(self.parameter_digest())
        if len(set(digests)) > 1:
            raise RuntimeError(f"the {self.processes} ranks' parameters differ at update {self.update}: not saved")
        if self.rank != 0:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write(self.out / "config.json", json.dumps(dataclasses.asdict(self.config), indent=2).encode())
        buffer = io.BytesIO()
        state = {
            "update": self.update,
            "model": self.agent.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generators": generators,
            "torch_rngs": rngs,
            "world_size": self.processes,  # torch.distributed's name for it
            "digests": digests,
            "evals": self.evals,
        }
        torch.save({**state, "state_digest": state_digest(state)}, buffer)
        atomic_write(self.out / "checkpoint.pt", buffer.getvalue())

    @classmethod
    def resume(cls, out: str | os.PathLike, **changes: Any) -> Trainer:
        """The trainer of a run folder, at its last checkpoint. ``changes`` may set what a resumed run can change
        (``RESUME_CHANGES``: steps, device, evaluation and checkpoint settings); any other setting that differs
        from the saved one is refused by name. A damaged or foreign run folder is a ValueError naming the file."""
        folder = Path(out)
        fields = config_fields(TrainConfig)
        require_checkpoint(folder)  # before the config: a folder that is no run says so first
        saved = read_config(folder, fields)
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; allowed: {sorted(fields)}")
        try:
            before = TrainConfig(**saved).check()
        except ValueError as error:
            raise ValueError(f"{folder / 'config.json'}: {error}") from None
        config = TrainConfig(**{**dataclasses.asdict(before), **changes}).check()
        check_resume_changes(dataclasses.asdict(before), dataclasses.asdict(config))
        trainer = cls(config, folder)
        trainer.load()
        return trainer

    def load(self) -> None:
        """Continue from the run folder's checkpoint (tensors and plain values only, verified by its digests)."""
        path = self.out / "checkpoint.pt"
        state = read_checkpoint(path, self.device)
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
            raise ValueError(f"{path} does not match {self.out / 'config.json'} ({one_line(error)})") from None
        if state["digests"] and self.parameter_digest() != state["digests"][0]:
            raise ValueError(f"{path} is damaged: its weights do not match the parameter digest stored with them")
        self.update, self.evals = int(state["update"]), list(state["evals"])

    def _write_evals(self) -> None:
        if not self.evals:
            return
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(self.evals[0]))
        writer.writeheader()
        writer.writerows(self.evals)
        atomic_write(self.out / "evals.csv", text.getvalue().encode())

    # ------------------------------------------------------------------ training
    def train_step(self) -> dict[str, float]:
        """One update: a batched episode of every env, then the agent's algorithm (REINFORCE: the hybrid loss and
        one clipped Adam step; PPO: its epochs of minibatch steps; top-down: hybrid loss + Q-learning loss)."""
        config = self.config
        obs, _ = self.envs.reset(seed=config.seed * 1_000_003 + self.update + self.rank * RANK_SEED_STRIDE)
        self.agent.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr()
        if config.algorithm == "ppo":
            settings = PPOSettings(
                epochs=config.ppo_epochs,
                minibatches=config.minibatches,
                clip_range=config.clip_range,
                gamma=config.gamma,
                gae_lambda=config.gae_lambda,
                vf_coef=config.vf_coef,
                ent_coef=config.entropy,
                classify_steps=config.classify_steps,
            )
            metrics = ppo_update(self.agent, self.envs, obs, settings, self.generator, self._optimise)
        else:
            place = None
            if config.algorithm == "q-topdown":
                place = self.agent.placer(obs, location_decisions(self.envs.world), self.epsilon(), self.generator)
            episode, _ = rollout(
                self.agent,
                self.envs,
                obs,
                policy=config.policy,
                std=self.std(),
                generator=self.generator,
                step=self.step,
                place=place,
            )
            loss, metrics = hybrid_loss(episode, config.entropy, config.classify_steps)
            if place is not None and place.actions:
                q_loss, q_mean = q_learning_loss(self.agent, place, episode.reward, config.gamma, config.n_step)
                loss = loss + q_loss
                metrics.update(loss=loss.item(), q_loss=q_loss.item(), q_mean=q_mean, epsilon=self.epsilon())
            self._optimise(loss)
            metrics.update(accuracy=episode.reward.mean().item(), pixels_seen=episode.pixels_seen.mean().item())
        self.update += 1
        if config.algorithm == "q-topdown" and self.update % config.target_every == 0:
            self.agent.sync_target()
        if self.processes > 1:  # the metrics of the whole batch
            values = torch.tensor(list(metrics.values()), dtype=torch.float64, device=self.device)
            dist.all_reduce(values)
            metrics = dict(zip(metrics, (values / self.processes).tolist()))
        return metrics

    def _optimise(self, loss: torch.Tensor) -> None:
        """One gradient step: backward, gradients averaged over the processes, clipped, AdamW."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.processes > 1:
            self._average_gradients()
        torch.nn.utils.clip_grad_norm_(self.agent.parameters(), self.config.clip)
        self.optimizer.step()

    def _average_gradients(self) -> None:
        """Every rank's gradient becomes the mean over ranks (one all-reduce of all gradients as one vector): the
        gradient of the loss over the whole batch."""
        params = [p for p in self.agent.parameters() if p.requires_grad]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.processes
        offset = 0
        for p in params:
            p.grad = flat[offset : offset + p.numel()].view_as(p).clone()
            offset += p.numel()

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


@torch.no_grad()
def evaluate(
    agent: Any,  # an nn.Module with the GlimpseAgent step interface
    config: TrainConfig,
    device: torch.device,
    split: str = "test",
    mc: int = 1,
    limit: int | None = None,
) -> dict[str, float]:
    """Accuracy and mean pixels seen over every image of ``split`` once (the first ``limit`` if given), in the
    world of ``env_kwargs`` with ``eval_env_kwargs`` over them and no ``shift``.

    ``mc=1``: the location head's mean, no sampling. ``mc=M``: M runs with sampled locations, class
    probabilities averaged.
    """
    check_int("mc", mc, 1)
    agent.eval()
    world_options = PRESETS[config.env][1]
    kwargs = _test_kwargs(config, split)
    size = len(make_dataset(config.env, **{k: v for k, v in kwargs.items() if k in world_options}))
    total = size if limit is None else min(limit, size)
    batch = min(config.eval_batch, total)
    envs = _make_envs(config, device, batch, **kwargs)
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed + 7)
    std = float(agent.std()) if isinstance(agent, GaussianPolicy) else config.std_final or config.std
    correct, seen, counted = 0, 0.0, 0
    for start in range(0, total, batch):
        index = (torch.arange(batch, device=device) + start) % size
        probabilities, keep = torch.zeros(()), min(batch, total - start)
        for _ in range(mc):
            obs, _ = envs.reset(options={"index": index})
            episode, _ = rollout(
                agent, envs, obs, policy=config.policy, std=std, deterministic=mc == 1, generator=generator
            )
            probabilities = probabilities + torch.softmax(episode.logits, dim=1)
        prediction = probabilities.argmax(1)[:keep]
        correct += int((prediction == episode.labels[:keep]).sum())
        seen += float(episode.pixels_seen[:keep].sum())
        counted += keep
    return {"accuracy": correct / counted, "pixels_seen": seen / counted, "images": counted, "mc": mc}


@torch.no_grad()
def trace(
    agent: Any, config: TrainConfig, device: torch.device, split: str = "test", examples: int = 8
) -> dict[str, Any]:
    """The first ``examples`` images of ``split``, with where the agent looked (``locs``: (n, T, 2)), what it
    answered and the truth: the material of glimpse pictures."""
    agent.eval()
    envs = _make_envs(config, device, examples, **_test_kwargs(config, split))
    obs, _ = envs.reset(options={"index": torch.arange(examples, device=device)})
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed + 7)
    locations: list[torch.Tensor] = []
    episode, _ = rollout(
        agent, envs, obs, policy=config.policy, deterministic=True, generator=generator, locations=locations
    )
    world = envs.world
    # The images, or small overviews of canvases too large to draw (all shrunk by the same factor).
    pictures = [envs.source.picture(i) for i in range(examples)]
    images, factor = [picture for picture, _ in pictures], pictures[0][1]

    def boxes_of(loc: Any, height: int, width: int) -> Any:
        """The glimpse boxes at full size, scaled to the picture (an overview's factor)."""
        return world.geometry.boxes(loc, world.height, world.width) // factor

    return {
        "images": images,
        "locs": torch.stack(locations, dim=1).cpu().numpy(),
        "predictions": episode.logits.argmax(1).tolist(),
        "labels": episode.labels.tolist(),
        "boxes_of": boxes_of,
    }


def load_run(out: str | os.PathLike, device: str = "auto") -> tuple[TrainConfig, nn.Module, torch.device]:
    """The config and trained agent of a run folder."""
    trainer = Trainer.resume(out, device=device)
    return trainer.config, trainer.agent, trainer.device
