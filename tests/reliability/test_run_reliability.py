"""`snnlab run` loses nothing when killed or when a cell fails: a real process, a real SIGKILL.

The kill lands at ``run:notebook-written`` (``snnlab.utils.pause_point``): the new executed copy and
its results are complete under their temporary names and not yet renamed, the moment that would hurt
most.
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from snnlab import run

pytestmark = [pytest.mark.notebook, pytest.mark.slow]  # a real process, killed

DEADLINE_S = 120  # a kernel start on a busy 2-core machine; normally a few seconds


def tiny_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("x = 1")
    params.metadata["tags"] = ["parameters"]
    # A negative x makes the cell fail: one notebook serves the good and the failing runs.
    nb.cells = [params,
                nbformat.v4.new_code_cell("from snnlab.results import record_results\nrecord_results('01_tiny', x=x)"),
                nbformat.v4.new_code_cell("print('x =', x)\nif x < 0:\n    raise ValueError(f'x must be >= 0, got {x}')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def printed(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for o in nb.cells[-1].outputs)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """A notebook and a folder holding its executed copy from a run with x = 1 (made once)."""
    folder = tmp_path_factory.mktemp("good")
    notebook = tiny_notebook(folder / "01_tiny.ipynb")
    out = folder / "out"
    assert run.main([str(notebook), "--out", str(out), "--no-progress"]) == 0
    assert printed(out / "01_tiny.ipynb") == "x = 1\n"
    assert recorded(out / "01_tiny.results.json") == 1
    assert (out / "results.csv").read_text() == "notebook,x,run,status\n01_tiny,1,.,ok\n"
    return notebook, out


def recorded(path: Path):
    """The value of x in a results file."""
    return json.loads(path.read_text())["results"]["x"]


@pytest.fixture
def out_with_good_copy(good_run, tmp_path):
    notebook, good_out = good_run
    out = tmp_path / "out"
    shutil.copytree(good_out, out)
    return notebook, out, (out / "01_tiny.ipynb").read_bytes(), (out / "01_tiny.results.json").read_bytes()


def wait_for_line(path: Path, proc: subprocess.Popen, log: Path) -> str:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        if proc.poll() is not None:
            pytest.fail(f"snnlab run ended (exit {proc.returncode}) before the pause point:\n{log.read_text()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"snnlab run did not reach the pause point within {DEADLINE_S} s:\n{log.read_text()}")


def test_kill_before_the_rename_keeps_the_last_good_copy(out_with_good_copy, tmp_path):
    notebook, out, good_bytes, good_results = out_with_good_copy
    pause_file, log = tmp_path / "paused", tmp_path / "run.log"
    env = {**os.environ, "SNNLAB_PAUSE_AT": "run:notebook-written", "SNNLAB_PAUSE_FILE": str(pause_file)}
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "snnlab.run", str(notebook), "-p", "x", "2", "--out", str(out), "--no-progress"],
            env=env, stdout=sink, stderr=subprocess.STDOUT,
        )
        try:
            line = wait_for_line(pause_file, proc, log)
        finally:
            proc.kill()
            proc.wait()  # reaped, so its pid is free and its temporary counts as stale
    assert line == f"run:notebook-written {proc.pid}"

    temporary = out / f".01_tiny.running-{proc.pid}.ipynb"
    temporary_results = out / f".01_tiny.running-{proc.pid}.results.json"
    assert printed(temporary) == "x = 2\n"  # the new copy was complete: the kill came before the rename
    assert recorded(temporary_results) == 2  # so were its results
    assert (out / "01_tiny.ipynb").read_bytes() == good_bytes
    assert (out / "01_tiny.results.json").read_bytes() == good_results  # the previous results are intact too

    assert run.main([str(notebook), "-p", "x", "2", "--out", str(out), "--no-progress"]) == 0
    assert not temporary.exists() and not temporary_results.exists()
    assert not list(out.glob(".*.running-*"))
    assert printed(out / "01_tiny.ipynb") == "x = 2\n"
    assert recorded(out / "01_tiny.results.json") == 2
    executed = nbformat.read(out / "01_tiny.ipynb", as_version=4)
    assert executed.metadata.papermill.output_path == str((out / "01_tiny.ipynb").resolve())
    assert executed.metadata.snnlab.results == json.loads((out / "01_tiny.results.json").read_text())
    assert (out / "results.csv").read_text() == "notebook,x,run,status\n01_tiny,2,.,ok\n"


def test_failing_cell_keeps_the_last_good_copy_and_writes_the_failed_one(out_with_good_copy, capsys):
    notebook, out, good_bytes, good_results = out_with_good_copy
    assert run.main([str(notebook), "-p", "x", "-1", "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    failed = out / "01_tiny.failed.ipynb"
    assert "01_tiny.ipynb failed in cell" in err and "x must be >= 0, got -1" in err
    assert f"the executed copy with the traceback: {failed.resolve()}" in err
    assert (out / "01_tiny.ipynb").read_bytes() == good_bytes
    assert (out / "01_tiny.results.json").read_bytes() == good_results  # the failed run's x = -1 is not committed
    assert (out / "results.csv").read_text() == "notebook,run,status\n01_tiny,.,failed\n"
    errors = [o for c in nbformat.read(failed, as_version=4).cells for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert [e.evalue for e in errors] == ["x must be >= 0, got -1"]
    assert not list(out.glob(".*.running-*"))

    # A later good run replaces the copy and drops the failure it no longer describes.
    assert run.main([str(notebook), "-p", "x", "3", "--out", str(out), "--no-progress"]) == 0
    assert printed(out / "01_tiny.ipynb") == "x = 3\n" and not failed.exists()
    assert recorded(out / "01_tiny.results.json") == 3
