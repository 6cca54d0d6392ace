"""Run folders that cannot run code, checkpoints verified on load, damaged folders refused in one line naming the
file, runs never overwritten by accident, resumes that change only what may change, TensorBoard points kept."""

from __future__ import annotations

import builtins
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from activevision.agents.trainer import Trainer
from activevision.cli import main
from tests.conftest import cli_train_args

SMALL = (
    "--steps",
    "2",
    "--batch",
    "8",
    "--hidden",
    "16",
    "--glimpse-hidden",
    "8",
    "--eval-every",
    "2",
    "--eval-batch",
    "500",
)


@pytest.fixture(scope="module")
def finished_run(mnist_dir, tmp_path_factory) -> Path:
    """A finished two-update RAM run on MNIST (trained once; tests copy it)."""
    out = tmp_path_factory.mktemp("runs") / "good"
    main(cli_train_args(mnist_dir, "ram", out, *SMALL, "--lr-final", "1e-4"))
    return out


@pytest.fixture()
def run(finished_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: "nothing written" is this staying equal."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def commands(run: Path, tmp_path: Path) -> list[list[str]]:
    """The three commands that read a run folder."""
    return [
        ["eval", str(run), "--device", "cpu", "--split", "t10k-test"],
        ["render", str(run), "--device", "cpu", "--out", str(tmp_path / "picture.png"), "--split", "t10k-test"],
        ["train", "ram", "--resume", str(run), "--steps", "3", "--quiet"],
    ]


def refused(argv: list[str]) -> str:
    """The one-line message a command exits with (non-zero: SystemExit with a message)."""
    with pytest.raises(SystemExit) as error:
        main(argv)
    message = str(error.value.code)
    assert error.value.code not in (0, None) and "\n" not in message
    return message


class Planted:
    """Unpickling this runs code: it writes a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def test_a_checkpoint_that_would_run_code_is_refused_by_every_command(run, tmp_path):
    marker = tmp_path / "ran.txt"
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    torch.save({**state, "evals": [Planted(marker)]}, run / "checkpoint.pt")
    before = snapshot(run)
    for argv in commands(run, tmp_path):
        message = refused(argv)
        assert str(run / "checkpoint.pt") in message and "could run code" in message, argv
        assert not marker.exists() and not (tmp_path / "picture.png").exists()
        assert snapshot(run) == before


def test_runs_with_a_cosine_rate_store_plain_numbers_and_load(finished_run):
    state = torch.load(finished_run / "checkpoint.pt", weights_only=True)  # would fail on a numpy float64
    assert type(state["optimizer"]["param_groups"][0]["lr"]) is float
    assert Trainer.resume(finished_run, device="cpu").update == 2


def test_a_checkpoint_with_a_numpy_rate_from_earlier_versions_still_loads(run):
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    del state["state_digest"]
    state["optimizer"]["param_groups"][0]["lr"] = np.float64(1e-4)
    torch.save(state, run / "checkpoint.pt")
    assert Trainer.resume(run, device="cpu").optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


def _zero_inside_a_weight(path: Path, count: int = 4000) -> None:
    """Zero ``count`` bytes of the largest weight, in place in the file (the way a bad disk or copy would)."""
    state = torch.load(path, weights_only=True)
    largest = max(state["model"].values(), key=lambda t: t.numel())
    raw, data = largest.numpy().tobytes(), bytearray(path.read_bytes())
    at = data.find(raw)
    assert at >= 0 and len(raw) >= 64
    data[at : at + min(count, len(raw))] = bytes(min(count, len(raw)))
    path.write_bytes(bytes(data))


def test_damaged_weights_are_refused_by_the_stored_digests(run, tmp_path):
    _zero_inside_a_weight(run / "checkpoint.pt")
    message = refused(commands(run, tmp_path)[0])
    assert str(run / "checkpoint.pt") in message and "damaged" in message
    # A checkpoint without the whole-state digest (written before it existed) is checked by the parameter digest.
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    del state["state_digest"]
    torch.save(state, run / "checkpoint.pt")
    assert "parameter digest" in refused(commands(run, tmp_path)[0])


def _damage(run: Path, how: str) -> str:
    """Damage ``run`` one way; returns the file the message must name."""
    checkpoint, config = run / "checkpoint.pt", run / "config.json"
    settings = json.loads(config.read_text())
    if how == "truncated checkpoint":
        checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    elif how == "empty checkpoint":
        checkpoint.write_bytes(b"")
    elif how == "garbage checkpoint":
        checkpoint.write_bytes(np.random.default_rng(0).bytes(5000))
    elif how == "checkpoint of a list":
        torch.save([1, 2, 3], checkpoint)
    elif how == "checkpoint without weights":
        state = torch.load(checkpoint, weights_only=True)
        del state["model"], state["state_digest"]
        torch.save(state, checkpoint)
    elif how == "missing config":
        config.unlink()
    elif how == "config of a list":
        config.write_text("[1, 2]")
    elif how == "unknown key":
        config.write_text(json.dumps({**settings, "lerning_rate": 0.1}))
    elif how == "lr as a string":
        config.write_text(json.dumps({**settings, "lr": "0.1"}))
    elif how == "bad JSON":
        config.write_text(config.read_text()[:-5])
    elif how == "weights of another size":
        config.write_text(json.dumps({**settings, "hidden": 24}))
    elif how == "an unknown agent":
        config.write_text(json.dumps({**settings, "agent": "dqn"}))
    else:
        raise AssertionError(how)
    return (
        "config.json"
        if "config" in how or how in ("unknown key", "lr as a string", "bad JSON", "an unknown agent")
        else "checkpoint.pt"
    )


DAMAGES = [
    "truncated checkpoint",
    "empty checkpoint",
    "garbage checkpoint",
    "checkpoint of a list",
    "checkpoint without weights",
    "missing config",
    "config of a list",
    "unknown key",
    "lr as a string",
    "bad JSON",
    "weights of another size",
    "an unknown agent",
]


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_run_folder_gives_one_line_naming_the_file(run, tmp_path, how):
    name = _damage(run, how)
    before = snapshot(run)
    for argv in commands(run, tmp_path):
        message = refused(argv)
        assert str(run / name) in message or (name == "config.json" and str(run) in message), (how, message)
        assert snapshot(run) == before and not (tmp_path / "picture.png").exists()


def test_a_damaged_run_exits_non_zero_without_a_traceback(run):
    _damage(run, "bad JSON")
    result = subprocess.run(
        [sys.executable, "-m", "activevision", "eval", str(run), "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1
    assert lines[0].startswith(f"{run / 'config.json'} is not valid JSON")


def test_a_finished_run_is_not_overwritten_without_overwrite(run, mnist_dir):
    before = snapshot(run)
    message = refused(cli_train_args(mnist_dir, "ram", run, *SMALL))
    assert "already holds a run" in message and "--overwrite" in message and "--resume" in message
    assert snapshot(run) == before
    main(cli_train_args(mnist_dir, "ram", run, "--steps", "1", "--batch", "8", "--hidden", "16", "--overwrite"))
    assert torch.load(run / "checkpoint.pt", weights_only=True)["update"] == 1
    assert json.loads((run / "config.json").read_text())["steps"] == 1
    assert (run / "evals.csv").read_text().count("\n") == 2  # the old run's evaluations are gone


def test_resume_applies_what_may_change_and_refuses_the_rest_by_name(run, mnist_dir):
    before = snapshot(run)
    message = refused(["train", "ram", "--resume", str(run), "--batch", "64", "--lr", "0.5", "--quiet"])
    assert "batch (8 -> 64)" in message and "lr (" in message and "cannot change" in message
    assert snapshot(run) == before
    assert "agent" in refused(["train", "gam", "--resume", str(run), "--quiet"])
    main(
        [
            "train",
            "ram",
            "--resume",
            str(run),
            "--steps",
            "4",
            "--eval-every",
            "1",
            "--checkpoint-every",
            "3",
            "--batch",
            "8",
            "--quiet",
        ]
    )  # batch as saved: not a change
    settings = json.loads((run / "config.json").read_text())
    assert (settings["steps"], settings["eval_every"], settings["checkpoint_every"]) == (4, 1, 3)
    assert [row.split(",")[0] for row in (run / "evals.csv").read_text().splitlines()[1:]] == ["2", "3", "4"]


def test_bad_out_folders_are_refused_with_a_message(mnist_dir, tmp_path):
    argv = cli_train_args(mnist_dir, "ram", tmp_path, *SMALL)
    argv[argv.index("--out") + 1] = ""
    assert "--out ''" in refused(argv)
    assert list(Path.cwd().glob("config.json")) == []
    afile = tmp_path / "notes.txt"
    afile.write_text("keep me")
    assert "is a file" in refused(cli_train_args(mnist_dir, "ram", afile, *SMALL))
    assert "cannot be written" in refused(cli_train_args(mnist_dir, "ram", afile / "run", *SMALL))
    assert afile.read_text() == "keep me"
    assert "--resume" in refused(["train", "ram", "--resume", str(tmp_path), "--out", str(tmp_path / "x")])


def test_resumed_runs_keep_every_tensorboard_point(mnist_dir, tmp_path):
    out = tmp_path / "tb_run"
    main(cli_train_args(mnist_dir, "ram", out, *SMALL))
    main(["train", "ram", "--resume", str(out), "--steps", "4", "--quiet"])
    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    assert [event.step for event in events.Scalars("train/loss")] == [1, 2, 3, 4]
