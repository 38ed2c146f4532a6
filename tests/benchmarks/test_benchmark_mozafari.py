"""Smoke test: ``benchmarks/mozafari.py --quick`` runs, prints samples/s and ratios for every stage,
and finds the fast path and the per-time-step reference agree."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "mozafari.py"


def test_benchmark_mozafari_quick_runs_and_agrees():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.rstrip().endswith(("yes", "NO"))]
    stages = [line.split("  ")[0] for line in lines]
    assert stages == ["inference (image -> decision)", "STDP training conv1", "STDP training conv2",
                      "R-STDP training conv3"]
    for line in lines:
        fast, reference, ratio = line.split()[-4:-1]
        assert float(fast) > 0 and float(reference) > 0
        # the printed ratio is rounded to 0.1 and the rates to 0.1 samples/s
        assert abs(float(ratio.rstrip("x")) - float(fast) / float(reference)) <= 0.06 + 0.01 * float(fast) / float(reference)
        assert line.rstrip().endswith("yes")


def test_benchmark_mozafari_rejects_bad_threads():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--threads", "0"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "--threads" in proc.stderr
