"""The layers import downwards only (docs/architecture.md): rules never import a model or an experiment,
models never import an experiment, and the learning rules draw no figures through snnlab.plots."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "snnlab"


def imported_snnlab_modules(path: Path) -> set[str]:
    """Absolute names of the snnlab modules ``path`` imports (relative imports resolved)."""
    parts = ("snnlab",) + path.relative_to(PACKAGE).with_suffix("").parts
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return {m for m in out if m == "snnlab" or m.startswith("snnlab.")}


HIGHER = ("snnlab.plasticity", "snnlab.learning", "snnlab.models", "snnlab.experiments", "snnlab.train",
          "snnlab.training", "snnlab.run", "snnlab.handout", "snnlab.cli")
COMMANDS = ("snnlab.train", "snnlab.run", "snnlab.handout", "snnlab.cli")
FORBIDDEN = [
    ("neurons.py", HIGHER),
    ("encoding.py", HIGHER),
    ("stats.py", HIGHER + ("snnlab.plots", "snnlab.data")),
    ("training", ("snnlab.experiments", "snnlab.learning", "snnlab.plots") + COMMANDS),
    ("plasticity", ("snnlab.models", "snnlab.experiments", "snnlab.learning", "snnlab.plots")),
    ("learning", ("snnlab.experiments", "snnlab.plots")),
    ("models", ("snnlab.experiments", "snnlab.plots")),
]


@pytest.mark.parametrize("where, forbidden", FORBIDDEN, ids=[w for w, _ in FORBIDDEN])
def test_layers_import_downwards_only(where, forbidden):
    target = PACKAGE / where
    files = [target] if target.is_file() else sorted(target.glob("*.py"))
    assert files
    for path in files:
        bad = sorted(m for m in imported_snnlab_modules(path) if any(m == f or m.startswith(f + ".") for f in forbidden))
        assert not bad, f"{path.relative_to(PACKAGE.parent)} imports {bad}"


def test_nothing_in_snnlab_imports_the_notebook_parameters():
    """notebook_params sits just below the notebooks (it may read train.py); a module that imported it
    would turn a notebook's parameters into a dependency of the library."""
    users = [path.relative_to(PACKAGE.parent) for path in sorted(PACKAGE.rglob("*.py"))
             if path.name != "notebook_params.py" and "snnlab.notebook_params" in imported_snnlab_modules(path)]
    assert not users, f"{users} import snnlab.notebook_params"
