"""Shared fixtures: the real MNIST t10k files committed in tests/data/mnist, and small SVHN .mat files
written in the official format-2 layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

MNIST_DIR = Path(__file__).parent / "data" / "mnist"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="the device of every test whose subject takes one (make test-gpu: cuda)",
    )


@pytest.fixture(scope="session")
def device(request: pytest.FixtureRequest) -> str:
    """The device the device-taking tests run on (``--device``, default cpu)."""
    name = request.config.getoption("--device")
    if name == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError("--device cuda needs a CUDA device; this torch sees none")
    return name


def assert_same_tensors(a: torch.Tensor, b: torch.Tensor, name: str = "") -> None:
    """Bit-equal on the CPU. On CUDA within float32 rounding (rtol 1e-5, atol 1e-6): its reductions (atomic adds
    in the backward of gathers and embeddings, cuBLAS's split sums) are not bit-reproducible run to run."""
    if a.device.type == "cuda":
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    else:
        assert torch.equal(a, b), name


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return MNIST_DIR


def cli_train_args(mnist_dir: Path, agent: str, out: Path, *options: str) -> list[str]:
    """``activevision train AGENT`` arguments on the committed MNIST t10k files (trained on t10k-train, tested on
    t10k-test), on the CPU, quiet, into ``out``, with ``options`` added."""
    world = json.dumps({"data_dir": str(mnist_dir), "split": "t10k-train", "download": False})
    return [
        "train",
        agent,
        "--env",
        "GlimpseMNIST-v0",
        "--env-kwargs",
        world,
        "--eval-split",
        "t10k-test",
        *options,
        "--device",
        "cpu",
        "--out",
        str(out),
        "--quiet",
    ]


def assert_learns_above_chance(config, out: Path) -> None:
    """Train ``config.steps`` updates on MNIST t10k-train: the classify loss of the last 10 updates must sit 0.4
    below that of the first 10, and the accuracy on all 2,000 t10k-test images exceed 0.3 (chance is 0.1)."""
    from activevision.agents.trainer import Trainer, evaluate

    trainer = Trainer(config, out)
    losses = [trainer.train_step()["classify"] for _ in range(config.steps)]
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.4
    result = evaluate(trainer.agent, config, trainer.device, split="t10k-test")
    assert result["images"] == 2000 and result["accuracy"] > 0.3


def assert_resumes_exactly(config, out: Path, stop: int, total: int):
    """Train ``total`` updates straight, and ``stop`` updates, save, ``Trainer.resume`` and go on to ``total``: the
    two runs' parameters (and buffers) must be bit-equal. Returns the resumed trainer for agent-specific checks."""
    from activevision.agents.trainer import Trainer

    straight = Trainer(config, out / "straight")
    for _ in range(total):
        straight.train_step()
    first = Trainer(config, out / "stopped")
    for _ in range(stop):
        first.train_step()
    first.save()
    resumed = Trainer.resume(out / "stopped")
    assert resumed.update == stop
    for _ in range(total - stop):
        resumed.train_step()
    for key, value in straight.agent.state_dict().items():
        assert_same_tensors(value, resumed.agent.state_dict()[key], key)
    return resumed


def write_svhn_mat(path: Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Write an SVHN-layout file (X: 32x32x3xN uint8, y: Nx1 with 10 meaning digit 0); return NHWC and labels 0-9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    digits = np.arange(n) % 10
    y = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(n, 1)
    scipy.io.savemat(path, {"X": np.ascontiguousarray(images.transpose(1, 2, 3, 0)), "y": y})
    return images, digits


@pytest.fixture(scope="session")
def svhn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("svhn")
    write_svhn_mat(folder / "train_32x32.mat", 60, 0)
    write_svhn_mat(folder / "test_32x32.mat", 30, 1)
    return folder


@pytest.fixture(scope="session")
def world_kwargs(mnist_dir: Path, svhn_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Offline kwargs for every registered id: MNIST worlds on the real t10k files, SVHN on generated files, small
    large-image canvases in a temporary folder."""
    large_dir = tmp_path_factory.mktemp("large")

    def kwargs(env_id: str) -> dict:
        if env_id == "GlimpseSVHN-v0":
            return {"data_dir": svhn_dir, "split": "test", "download": False, "verify": False}
        if "MNIST" in env_id:
            return {"data_dir": mnist_dir, "split": "t10k-test", "download": False}
        if env_id == "GlimpseLargeImage-v0":
            return {"data_dir": large_dir, "canvas": 160, "size": 24}
        return {"size": 2048}

    return kwargs
