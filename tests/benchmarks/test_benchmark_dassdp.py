"""Smoke test: benchmarks/dassdp.py --quick runs and reports a finite overhead ratio for both variants."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark script in a subprocess

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_dassdp_quick_reports_ratios():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "dassdp.py"), "--quick", "--json", "--threads", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {r["rule"] for r in rows} == {"paper", "released"}
    for r in rows:
        assert r["step_s_baseline"] > 0 and r["step_s_dassdp"] > 0
        assert 0.2 < r["overhead_ratio"] < 5.0          # same work plus a small rule: near 1
        assert r["rule_only_s"] < r["step_s_dassdp"]
