"""The install story: pins agree across files, torch is never unpinned, README/CI/Makefile agree."""
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt line {line!r} is not an exact pin"
            pins[normalise(name)] = version
    return pins


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_constraints_pin_the_tested_torch_and_spikingjelly():
    pins = constraints()
    assert pins["torch"] == "2.13.0"
    assert pins["spikingjelly"] == "2.0.0"
    for name in ("jupyterlab", "ipywidgets", "matplotlib", "plotly", "nbval", "papermill", "numpy",
                 "scikit-learn", "tqdm", "pyyaml", "pytest"):
        assert name in pins, f"{name} is not pinned in constraints.txt"


def test_environment_yml_pip_section_matches_constraints():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    pins = constraints()
    pinned = [p for p in pip_section if "==" in p]
    assert len(pinned) >= 15
    for entry in pinned:
        name, version = entry.split("==")
        assert pins.get(normalise(name)) == version, f"environment.yml pins {entry}, constraints.txt has {pins.get(normalise(name))}"
    assert "-e ." in pip_section, "environment.yml must install the package itself"


def test_every_dependency_is_pinned_in_constraints_and_environment():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["test"]
    pins = constraints()
    env_names = {normalise(p.split("==")[0]) for p in
                 next(d["pip"] for d in yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
                      if isinstance(d, dict)) if "==" in p}
    for dep in deps:
        name = normalise(re.split(r"[<>=!~\[ ]", dep, maxsplit=1)[0])
        assert name in pins, f"dependency {dep!r} has no exact pin in constraints.txt"
        assert name in env_names, f"dependency {dep!r} is missing from environment.yml's pip section"
    assert project["requires-python"] == ">=3.11"
    assert project["scripts"]["snnlab"] == "snnlab.cli:main"


def test_every_pip_install_goes_through_constraints():
    # An install without the constraints file lets pip pull torch 2.15 plus CUDA wheels (DESIGN.md §3).
    for path in [ROOT / "Makefile", ROOT / "README.md", *ROOT.glob(".ci/*")]:
        for line in path.read_text().splitlines():
            if re.search(r"pip install\b", line):
                assert "-c constraints.txt" in line, f"{path.name}: pip install without -c constraints.txt: {line.strip()}"


def test_readme_quick_start_and_ci_use_the_same_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^\s*make test\b", ci, re.M), ".ci/run must call the README's test command"


def test_snnlab_never_imports_torchvision_timm_or_torchaudio():
    pattern = re.compile(r"^\s*(import|from)\s+(torchvision|timm|torchaudio)\b", re.M)
    offenders = [p.relative_to(ROOT) for p in (ROOT / "snnlab").rglob("*.py") if pattern.search(p.read_text())]
    assert not offenders, f"these modules import packages that fail on CPU torch: {offenders}"


# ----------------------------------------------------------------------------- the fast lane
# `make test-fast` runs `-m "not notebook and not slow"`. The markers are what keeps a notebook out of
# it, so a notebook execution without one would silently slow the lane (or a misspelt marker would
# silently drop a test): pytest collects, in a subprocess, the files that execute notebooks, and the
# probe reports each item's markers. Collection only: no kernel starts.
MARKER_PROBE = """
import json, sys, pytest
class Probe:
    items = []
    def pytest_collection_finish(self, session):
        Probe.items = [[i.nodeid, sorted({m.name for m in i.iter_markers()})] for i in session.items]
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *sys.argv[1:]], plugins=[Probe()])
print("MARKERS=" + json.dumps(Probe.items))
sys.exit(code)
"""
EXECUTES_A_NOTEBOOK = re.compile(
    r"^notebooks/"                                                      # nbval's cells
    r"|::test_notebook_(runs_through_snnlab_run|runs_with_device_auto|refuses_its_bad_parameter|missing_data_path"
    r"|asked_for_cuda_without_cuda)"
    r"|::test_welcome_student_version_runs_top_to_bottom"
    r"|^tests/reliability/test_run_reliability\.py::")


def test_every_notebook_execution_carries_the_notebook_marker():
    paths = ["notebooks", "tests/test_notebooks.py", "tests/test_exercises.py",
             "tests/reliability/test_run_reliability.py"]
    proc = subprocess.run([sys.executable, "-c", MARKER_PROBE, *paths], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    line, = [ln for ln in proc.stdout.splitlines() if ln.startswith("MARKERS=")]
    markers = dict(json.loads(line.removeprefix("MARKERS=")))
    executing = [node for node in markers if EXECUTES_A_NOTEBOOK.search(node)]
    nbval = [node for node in executing if node.startswith("notebooks/")]
    assert len(nbval) > 50 and len(executing) > len(nbval) + 20      # the probe saw them
    assert [node for node in executing if "notebook" not in markers[node]] == []
    # the static checks of the notebooks stay in the fast lane
    static = [node for node in markers if "::test_notebook_is_committed_without_outputs" in node]
    assert static and all(not {"notebook", "slow"} & set(markers[node]) for node in static)


def test_make_test_runs_everything_and_test_fast_skips_notebooks_and_slow_tests():
    makefile = (ROOT / "Makefile").read_text()
    recipes = dict(re.findall(r"^([\w-]+):[^\n]*\n\t([^\n]*)", makefile, re.M))
    assert recipes["test"] == "$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)"
    assert recipes["test-fast"] == '$(BIN)/python -m pytest -n 2 -m "not notebook and not slow" $(PYTEST_ARGS)'
    assert re.search(r"^\.PHONY:.*\btest-fast\b", makefile, re.M)
    assert re.search(r"^\s*make test\s*$", (ROOT / ".ci" / "run").read_text(), re.M)   # CI: the full suite
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert {m.split(":")[0] for m in declared["markers"]} == {"notebook", "slow"}
    assert "--strict-markers" in declared["addopts"]    # a misspelt marker is an error, not a silent no-op
