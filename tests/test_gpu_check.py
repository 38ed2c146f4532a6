"""scripts/gpu_check.py (``make gpu-check``): refuses a machine without CUDA in one line, names missing
packages, and on the CPU runs every job and prints one table row per job."""
import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.py"
_spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
gpu_check = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = gpu_check  # its dataclasses look their module up there
_spec.loader.exec_module(gpu_check)


def run_script(*args, timeout=60):
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_gpu_check_without_cuda_fails_at_once_in_one_line(tmp_path):
    proc = run_script("--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("gpu_check: --device cuda, but torch") and proc.stderr.count("\n") == 1
    assert "--device cpu" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_missing_packages_names_the_package_to_install(tmp_path, monkeypatch):
    (tmp_path / "needs_a_dependency").mkdir()
    (tmp_path / "needs_a_dependency" / "__init__.py").write_text("import absent_dependency_of_it\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert gpu_check.missing_packages(("json", "no_such_module", "needs_a_dependency", "yaml")) == [
        "no-such-module", "absent-dependency-of-it"]
    assert gpu_check.pip_name("sklearn") == "scikit-learn" and gpu_check.pip_name("yaml") == "pyyaml"


def test_gpu_check_names_missing_packages_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "REQUIRED", {"json": "json", "no_such_module": "no-such-module"})
    assert gpu_check.main(["--device", "cpu", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == ("gpu_check: missing Python packages: no-such-module; install them (pip install no-such-module) "
                   "or, without internet, carry them as wheels\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, message", [
    (["--device", "cpu", "-j", "2"], "-j/--jobs 2: give 1, or more only with --quick"),
    (["--device", "cpu", "--quick", "-j", "0"], "-j/--jobs 0"),
])
def test_gpu_check_refuses_concurrent_timings(argv, message, tmp_path, capsys):
    assert gpu_check.main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


def test_gpu_check_refuses_an_output_file(tmp_path, capsys):
    (tmp_path / "out").write_text("x")
    assert gpu_check.main(["--device", "cpu", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith(f"gpu_check: --out {tmp_path / 'out'} is a file")


@pytest.mark.slow
def test_gpu_check_runs_every_job_on_the_cpu_and_prints_one_row_each(tmp_path):
    out = tmp_path / "out"
    # Two at a time: quick timings are no figures, and the four jobs then fit in about two minutes.
    proc = run_script("--device", "cpu", "--skip-cpu", "--quick", "-j", "2", "--out", str(out), timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("job "))
    assert lines[header].split() == ["job", "cpu", "s"]
    rows = lines[header + 1:header + 1 + len(gpu_check.JOBS)]
    assert [r.split()[0] for r in rows] == [j.name for j in gpu_check.JOBS]
    assert all(float(r.split()[1]) > 0 for r in rows)
    assert lines[header + 1 + len(gpu_check.JOBS)].startswith("total ")
    with open(out / "gpu_check.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [(r["job"], r["device"], r["device_status"], r["cpu_status"]) for r in table] == [
        (j.name, "cpu", "ok", "skipped") for j in gpu_check.JOBS]
    for job in gpu_check.JOBS:
        folder = out / f"{job.name}-cpu"
        assert (folder / "results.json").is_file() if job.notebook is None else list(folder.glob("*.ipynb"))
    assert (out / "gpu_check.txt").read_text().strip() == "\n".join(lines[header - 1:header + 2 + len(gpu_check.JOBS)])
