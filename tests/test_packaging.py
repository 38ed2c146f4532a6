"""The install story: pins agree across files, torch is never unpinned, README/CI/Makefile agree."""
import re
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
