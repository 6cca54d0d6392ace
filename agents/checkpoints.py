"""Run folders read and written safely: configs checked by name, checkpoints loaded without running code
(``weights_only``) and verified against their stored digests, runs never overwritten by accident.

Every problem is a ValueError of one line naming the file and what is wrong, raised before anything is written.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import pickle
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from activevision.data.files import atomic_write

__all__ = [
    "RESUME_CHANGES",
    "RUN_FILES",
    "one_line",
    "read_config",
    "read_checkpoint",
    "require_checkpoint",
    "state_digest",
    "check_resume_changes",
    "check_new_run",
    "clear_run",
    "write_run",
]

# What a resumed run may change: neither what it learns nor how (batch, rates, model, world) can.
RESUME_CHANGES = ("steps", "device", "eval_split", "eval_env_kwargs", "eval_every", "eval_batch", "checkpoint_every")
# The files a run writes in its folder.
RUN_FILES = ("config.json", "checkpoint.pt", "evals.csv", "tb")
# What a checkpoint must hold (older ones may lack "state_digest"; those of single-process runs written before
# torchrun support hold one "generator" and "torch_rng" and no digests).
CHECKPOINT_KEYS = ("update", "model", "optimizer", "evals")
# Numpy scalars that checkpoints written before every value was converted to a Python number may hold (an
# optimizer's float64 learning rate): safe to rebuild, nothing else is allowed.
_MULTIARRAY = importlib.import_module("numpy._core.multiarray" if hasattr(np, "_core") else "numpy.core.multiarray")
_NUMPY_SCALARS = [_MULTIARRAY.scalar, np.dtype, type(np.dtype(np.float64))]


def one_line(error: BaseException) -> str:
    """An exception as one short line (torch's messages run over several)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def read_config(folder: Path) -> dict[str, Any]:
    """The settings saved in ``folder/config.json``, as a dict (keys and values are checked by the config)."""
    path = folder / "config.json"
    if not path.is_file():
        raise ValueError(f"{path} is missing: {folder} is not a run folder (train with --out {folder})")
    try:
        settings = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} cannot be read: {one_line(error)}") from None
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    if not isinstance(settings, dict):
        raise ValueError(f"{path} holds a {type(settings).__name__}, not a JSON object of settings")
    return settings


def write_run(folder: Path, config: dict[str, Any], state: dict[str, Any]) -> None:
    """Write ``config.json`` and ``checkpoint.pt`` (``state`` with its whole-state digest), each atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / "config.json", json.dumps(config, indent=2).encode())
    buffer = io.BytesIO()
    torch.save({**state, "state_digest": state_digest(state)}, buffer)
    atomic_write(folder / "checkpoint.pt", buffer.getvalue())


def state_digest(state: Any) -> str:
    """SHA-256 of a checkpoint's content: every tensor's dtype, shape and bytes and every plain value, walked in a
    fixed order (dict keys sorted), so any changed byte of weights, optimizer or generator states shows."""
    digest = hashlib.sha256()

    def walk(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous()
            digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
        elif isinstance(value, dict):
            digest.update(b"{")
            for key in sorted(value, key=repr):
                digest.update(repr(key).encode())
                walk(value[key])
            digest.update(b"}")
        elif isinstance(value, (list, tuple)):
            digest.update(b"[")
            for item in value:
                walk(item)
            digest.update(b"]")
        else:
            digest.update(repr(value).encode())

    walk(state)
    return digest.hexdigest()


def require_checkpoint(folder: Path) -> Path:
    """``folder/checkpoint.pt``, or a ValueError saying ``folder`` is not a run folder."""
    path = folder / "checkpoint.pt"
    if not path.is_file():
        raise ValueError(f"{folder} is not a run folder: it has no checkpoint.pt (train with --out {folder})")
    return path


def read_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    """A checkpoint's content, loaded with ``weights_only=True`` (tensors and plain values only: a file that
    would run code is refused) and checked against its stored digest."""
    require_checkpoint(path.parent)
    try:
        with torch.serialization.safe_globals(_NUMPY_SCALARS), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a damaged file's warnings: the error below says what is wrong
            state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only" in str(error).lower() or "weights_only" in str(error):
            raise ValueError(
                f"{path} holds objects other than tensors and plain values: refused to load it (it "
                "could run code); use a checkpoint written by activevision"
            ) from None
        raise ValueError(f"{path} cannot be read as a checkpoint ({one_line(error)})") from None
    except Exception as error:  # torch and zipfile raise many kinds for truncated or garbage files
        raise ValueError(f"{path} cannot be read as a checkpoint ({type(error).__name__}: {one_line(error)})") from None
    missing = [key for key in CHECKPOINT_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise ValueError(f"{path} is not an activevision checkpoint (missing {missing})")
    stored = state.pop("state_digest", None)
    if stored is not None and stored != state_digest(state):
        raise ValueError(f"{path} is damaged: its content does not match the digest stored with it")
    if "generators" not in state:
        state.update(generators=[state.get("generator")], torch_rngs=[state.get("torch_rng")], world_size=1)
    state.setdefault("digests", [])
    return state


def check_resume_changes(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Refuse, by name, every resolved setting outside ``RESUME_CHANGES`` that a resume would change."""
    names = sorted(set(before) | set(after))
    refused = [name for name in names if name not in RESUME_CHANGES and before.get(name) != after.get(name)]
    if refused:
        shown = ", ".join(f"{name} ({before.get(name)!r} -> {after.get(name)!r})" for name in refused)
        raise ValueError(
            f"{shown} cannot change when a run resumes (it would no longer be the same run): a "
            f"resume changes only {', '.join(RESUME_CHANGES)}; train a new run for the others"
        )


def check_new_run(out: str | os.PathLike, overwrite: bool = False) -> Path:
    """The folder of a new run, checked before training starts: a usable folder path, writable, and not holding a
    run unless ``overwrite`` (``clear_run`` then removes that run's files, once the new run is known to start).
    Under torchrun only rank 0 checks for an earlier run (it alone writes)."""
    if isinstance(out, str) and not out.strip():
        raise ValueError("--out '' is not allowed: name the run folder (e.g. --out runs/ram)")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {folder} is a file, not a folder: name a new or empty folder for the run")
    existing = [name for name in RUN_FILES if (folder / name).exists()]
    if existing and not overwrite and int(os.environ.get("RANK", "0")) == 0:
        raise ValueError(
            f"{folder} already holds a run ({', '.join(existing)}): continue it with --resume "
            f"{folder}, replace it with --overwrite, or choose another --out"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ValueError(f"--out {folder} cannot be written: {one_line(error)}") from None
    return folder


def clear_run(folder: Path) -> None:
    """Remove the files of the run ``folder`` holds (``--overwrite``), so the new run's logs start clean."""
    for name in RUN_FILES:
        target = folder / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
