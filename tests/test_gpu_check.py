"""``benchmarks/gpu.py`` runs end to end (``--quick``, on the tests' device) and writes one CSV row per printed
figure, so the GPU check cannot rot between the sessions that have a GPU."""

from __future__ import annotations

import collections
import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_check_prints_and_writes_every_figure(tmp_path, device):
    out = tmp_path / "gpu.csv"
    result = subprocess.run(
        [sys.executable, "benchmarks/gpu.py", "--device", device, "--quick", "--csv", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = list(csv.DictReader(out.open()))
    assert collections.Counter(row["figure"] for row in rows) == {
        "env_steps": 4,
        "ram_training": 2,
        "inference": 4,
        "time_to_98": 1,
    }
    assert all(float(row["value"]) > 0 and row["device"] == device for row in rows)
    printed = [line for line in result.stdout.splitlines() if line.startswith("gpu_check ") and " device=" in line]
    assert len(printed) == len(rows)
    assert all("paper_rtx3080=" in row["reference"] for row in rows if row["figure"] == "inference")
    assert all("reference_style=" in row["reference"] for row in rows if row["figure"] == "ram_training")
