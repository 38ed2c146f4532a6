"""scripts/nb06_control_study.py: a tiny run writes the JSON and the markdown table with every condition."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_nb06_control_study_runs_and_writes_its_tables(tmp_path):
    out = tmp_path / "study"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "nb06_control_study.py"), "--seeds", "0", "--n-trials", "2",
                    "--delay-ms", "20", "--long-iti-ms", "50", "--out", str(out)], check=True, cwd=ROOT,
                   capture_output=True, text=True, timeout=300)
    study = json.loads(out.with_suffix(".json").read_text())
    assert {r["condition"] for r in study["runs"]} == {"mstdpet", "mstdp", "mstdp_long_iti", "frozen"}
    assert study["summary"]["frozen"]["total_abs_dw_mean"] == 0.0
    table = out.with_suffix(".md").read_text()
    assert "| mstdp |" in table and "nb06_control_study.py" in table
