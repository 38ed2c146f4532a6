"""Smoke test: ``benchmarks/zoo.py --quick`` runs, prints a ratio for each of the four rules, says the loop
is extrapolated, and finds snnlab and the per-synapse loop agree on the slice."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark script in a subprocess

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "zoo.py"


def test_benchmark_zoo_quick_runs_and_agrees():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "EXTRAPOLATED" in out
    rows = [line for line in out.splitlines() if "ms" in line and "x " in line]
    names = ["R-STDP + eligibility", "homeostatic synaptic scaling", "Tsodyks-Markram STP", "structural prune+regrow"]
    assert [any(line.startswith(n) for line in rows) for n in names] == [True] * 4
    diffs = [float(d) for d in re.findall(r"max \|diff\| = ([0-9.e+-]+)", out)]
    assert len(diffs) == 3 and max(diffs) < 1e-5          # float32 snnlab vs float64 loop
    assert "same pruned set, counts kept: yes" in out
    ratios = [float(r) for r in re.findall(r"([0-9]+)x", out.split("ratios,")[1])]
    assert len(ratios) == 8


def test_benchmark_zoo_rejects_bad_size():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--n", "0"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and "--n" in proc.stderr
