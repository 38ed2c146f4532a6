"""Every notebook: committed clean, shaped by the conventions, and run through `snnlab run`.

nbval executes each notebook on its defaults (pytest collects ``notebooks/*.ipynb``), except a
notebook whose ``metadata.snnlab.suite_runs_defaults`` is false (its defaults run in ``make demo``; see
conftest.py); here each one runs again through the main job with its small ``test_parameters``, and
once with a bad value that its validation cell must refuse.
"""
import ast
import json

import nbformat
import pytest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
from snnlab import run

IDS = [nb.name for nb in NOTEBOOKS]


def load(path):
    return nbformat.read(path, as_version=4)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_committed_without_outputs(path):
    nb = load(path)
    nbformat.validate(nb)
    for cell in code_cells(nb):
        assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: outputs committed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_follows_the_cell_conventions(path):
    nb = load(path)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert "goals" in nb.cells[0].source.lower()
    cells = code_cells(nb)
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell must be tagged 'parameters'"
    first = tagged[0]
    for cell in cells[:first]:  # only imports may come before the parameters cell
        for node in ast.parse(cell.source).body:
            assert isinstance(node, (ast.Import, ast.ImportFrom)), f"{path.name}: non-import before parameters"
    names = set()
    for node in ast.parse(cells[first].source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, f"{path.name}: parameters must be assignments"
        ast.literal_eval(node.value)  # literals only, so papermill can override them
        names.add(node.targets[0].id)
    assert {"seed", "device"} <= names
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "solution" in tags:
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_metadata_registry(path):
    meta = load(path).metadata.get("snnlab", {})
    assert {"title", "cpu_minutes", "test_parameters", "bad_parameters"} <= set(meta), path.name
    declared = run.declared_parameters(path)
    assert set(meta["test_parameters"]) <= set(declared)
    assert len(meta["bad_parameters"]) == 1 and set(meta["bad_parameters"]) <= set(declared)


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_through_snnlab_run_with_test_parameters(path, tmp_path, figures_dir):
    params = load(path).metadata["snnlab"]["test_parameters"]
    argv = [str(path), "--out", str(tmp_path), "--no-progress"]
    for name, value in params.items():
        argv += ["-p", name, json.dumps(value) if not isinstance(value, str) else value]
    assert run.main(argv) == 0
    executed = load(tmp_path / path.name)
    errors = [o for c in code_cells(executed) for o in c.outputs if o.output_type == "error"]
    assert not errors
    injected = [c for c in code_cells(executed) if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and all(name in injected[0].source for name in params)
    prefix = path.name[:2]
    assert list(figures_dir.glob(f"{prefix}_*.png")), f"{path.name} wrote no figure {prefix}_*.png"
    assert (tmp_path / "run_card.json").is_file()
    record = json.loads((tmp_path / f"{path.stem}.results.json").read_text())   # its headline numbers
    assert record["notebook"] == path.stem and record["results"]
    assert record["parameters"] == params


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_refuses_its_bad_parameter(path, tmp_path, capsys):
    (name, value), = load(path).metadata["snnlab"]["bad_parameters"].items()
    argv = [str(path), "--out", str(tmp_path), "--no-progress", "-p", name, json.dumps(value)]
    assert run.main(argv) == 1
    err = capsys.readouterr().err
    assert f"{path.name} failed in cell" in err and name in err and "Error" in err


@pytest.mark.notebook
@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if "data_path" in run.declared_parameters(p)],
                         ids=lambda p: p.name)
def test_notebook_missing_data_path_is_a_clear_error(path, tmp_path, capsys):
    # 02 refuses a data_path with its default dataset (mnist5k reads no files) before looking for it
    argv = [str(path), "--out", str(tmp_path), "--no-progress", "-p", "data_path", "/no/such/folder"]
    assert run.main(argv) == 1
    err = capsys.readouterr().err
    assert "data_path" in err and "/no/such/folder" in err


def test_only_notebook_02_skips_nbval_on_defaults_and_says_why():
    skipping = [p.name for p in NOTEBOOKS if load(p).metadata["snnlab"].get("suite_runs_defaults") is False]
    assert skipping == ["02_mozafari_rstdp.ipynb"]
    assert "make demo" in load(NOTEBOOKS[2]).metadata["snnlab"]["defaults_note"]
