"""Smoke test: ``benchmarks/florian.py --quick`` runs, prints its ratios and finds the three implementations agree."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark script in a subprocess

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_florian_quick_runs_and_agrees():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "florian.py"), "--quick"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "per-synapse loop / snnlab" in out and "spikingjelly / snnlab" in out
    assert "EXTRAPOLATED" in out  # the slow references are extrapolated, and the output says so
    agreement = out.split("agreement:")[1]
    errors = [float(tok.split()[0]) for tok in agreement.split("= ")[1:]]
    assert len(errors) == 2 and max(errors) < 1e-6


def test_benchmark_florian_rejects_bad_size():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "florian.py"), "--quick", "--n", "0"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "--n" in proc.stderr
