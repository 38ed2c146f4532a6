"""Smoke test: ``benchmarks/mozafari.py --quick`` runs on both data sets, prints samples/s and ratios
for every phase in training order, and finds the fast path and the per-time-step reference agree
(no timing is asserted: the figures are printed, not tested)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark script in a subprocess

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "mozafari.py"
STAGES = ["encoding (DoG + latency)", "STDP training conv1", "STDP training conv2", "R-STDP training conv3",
          "inference (image -> decision)"]


@pytest.mark.parametrize("dataset", ["mnist5k", "digits"])
def test_benchmark_mozafari_quick_runs_and_agrees(dataset):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--dataset", dataset], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"dataset {dataset}" in proc.stdout
    lines = [line for line in proc.stdout.splitlines() if line.rstrip().endswith(("yes", "NO"))
             and not line.startswith(" ")]
    stages = [line.split("  ")[0] for line in lines]
    assert stages == STAGES
    for line in lines:
        fast, reference, ratio = line.split()[-4:-1]
        assert float(fast) > 0 and float(reference) > 0
        # the printed ratio is rounded to 0.1 and the rates to 0.1 samples/s
        assert abs(float(ratio.rstrip("x")) - float(fast) / float(reference)) <= 0.06 + 0.01 * float(fast) / float(reference)
        assert line.rstrip().endswith("yes")
    assert "where conv2's time goes" in proc.stdout
    assert "same weights and winners: yes" in proc.stdout


@pytest.mark.parametrize("args", [["--threads", "0"], ["--dataset", "cifar"], ["--samples", "1"]])
def test_benchmark_mozafari_rejects_bad_arguments(args):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and args[0] in proc.stderr
