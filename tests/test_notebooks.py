"""Every notebook: committed clean, shaped by the conventions, and run through `snnlab run`.

nbval executes each notebook on its defaults (pytest collects ``notebooks/*.ipynb``), except a
notebook whose ``metadata.snnlab.suite_runs_defaults`` is false (its defaults run in ``make demo``; see
conftest.py); here each one runs again through the main job with its small ``test_parameters``, and
once with a bad value that its validation cell must refuse.
"""
import ast
import inspect
import json
import re

import nbformat
import pytest
import torch
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
def test_notebook_runs_through_snnlab_run_with_test_parameters(path, quick_copy):
    params = load(path).metadata["snnlab"]["test_parameters"]
    folder, code = quick_copy(path)   # `snnlab run` with these parameters, shared with the site's test
    assert code == 0
    figures_dir = folder / "figures"
    executed = load(folder / path.name)
    errors = [o for c in code_cells(executed) for o in c.outputs if o.output_type == "error"]
    assert not errors
    # no progress-bar residue: a headless tqdm leaves "0%|          | 0/10072" frozen in the copy
    texts = [o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for c in code_cells(executed)
             for o in c.outputs]
    residue = [t[:80] for t in texts if re.search(r"\d+%\|", t) or "application/vnd.jupyter.widget-view" in t]
    widget_views = [c for c in code_cells(executed) for o in c.outputs
                    if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert not residue and not widget_views, f"{path.name}: progress-bar residue in the saved copy: {residue}"
    injected = [c for c in code_cells(executed) if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and all(name in injected[0].source for name in params)
    prefix = path.name[:2]
    assert list(figures_dir.glob(f"{prefix}_*.png")), f"{path.name} wrote no figure {prefix}_*.png"
    assert (folder / "run_card.json").is_file()
    record = json.loads((folder / f"{path.stem}.results.json").read_text())   # its headline numbers
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


# --------------------------------------------------------------------------- device
WITH_DEVICE = [p for p in NOTEBOOKS if "device" in run.declared_parameters(p)]


def _resolve(node, namespace):
    """The object an expression like ``meta.init_mlp`` or ``RecurrentSNN`` names in ``namespace``, or None."""
    if isinstance(node, ast.Name):
        return namespace.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, namespace)
        return None if base is None else getattr(base, node.attr, None)
    return None


def _device_argument(function, call: ast.Call):
    """The expression ``call`` gives ``function``'s ``device`` parameter: None when it gives none,
    ``...`` when it cannot be told (``*args``/``**kwargs``)."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return ...
    values = {**{i: a for i, a in enumerate(call.args)}, **{k.arg: k.value for k in call.keywords}}
    keywords = {k.arg: k.arg for k in call.keywords}
    bound = inspect.signature(function).bind_partial(*range(len(call.args)), **keywords)
    given = bound.arguments.get("device")
    return None if given is None else values[given]


@pytest.mark.parametrize("path", WITH_DEVICE, ids=[p.name for p in WITH_DEVICE])
def test_notebook_passes_its_device_to_every_snnlab_call_that_takes_one(path):
    """After the validation cell (``dev = utils.pick_device(device)``), every call of a snnlab function or
    class that has a ``device`` parameter gives it ``dev``: `snnlab run --device cuda` moves the whole
    notebook, not just its run card. The import cells run here to tell what each name is."""
    cells = code_cells(load(path))
    first = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    assert "dev = utils.pick_device(device)" in cells[first + 1].source, f"{path.name}: validation cell"
    namespace: dict = {}
    for cell in cells[:first]:
        exec(cell.source, namespace)
    uses = 0  # dev read anywhere but in a print (03 hands it to snnlab.train inside its validation cell)
    for cell in cells[first + 1:]:
        tree = ast.parse(cell.source)
        printed = {id(n) for call in ast.walk(tree) if isinstance(call, ast.Call) and ast.unparse(call.func) == "print"
                   for n in ast.walk(call)}
        uses += sum(isinstance(n, ast.Name) and n.id == "dev" and isinstance(n.ctx, ast.Load) and id(n) not in printed
                    for n in ast.walk(tree))
    missing = []
    for cell in cells[first + 2:]:
        for node in ast.walk(ast.parse(cell.source)):
            if not isinstance(node, ast.Call):
                continue
            function = _resolve(node.func, namespace)
            if not callable(function) or not (getattr(function, "__module__", None) or "").startswith("snnlab"):
                continue
            try:
                if "device" not in inspect.signature(function).parameters:
                    continue
            except (TypeError, ValueError):
                continue
            given = _device_argument(function, node)
            names = set() if given in (None, ...) else {n.id for n in ast.walk(given) if isinstance(n, ast.Name)}
            if given is not ... and "dev" not in names:
                where = cell.source.splitlines()[0]
                missing.append(f"{ast.unparse(node.func)} (line {node.lineno} of the cell `{where}`)")
    assert not missing, f"{path.name}: snnlab calls without device=dev: {missing}"
    assert uses, f"{path.name} only prints dev"


@pytest.mark.notebook
def test_notebook_runs_with_device_auto_and_matches_cpu(tmp_path):
    """``-p device auto`` is a real run: on a machine without CUDA it is the CPU run, number for number."""
    path = NOTEBOOKS[0]
    params = load(path).metadata["snnlab"]["test_parameters"]
    records = {}
    for device in ("auto", "cpu"):
        out = tmp_path / device
        argv = [str(path), "--out", str(out), "--no-progress", "--device", device]
        for name, value in params.items():
            argv += ["-p", name, json.dumps(value)]
        assert run.main(argv) == 0
        records[device] = json.loads((out / f"{path.stem}.results.json").read_text())["results"]
        printed = "".join(o.get("text", "") for c in code_cells(load(out / path.name)) for o in c.outputs)
        expected = "cuda" if torch.cuda.is_available() and device == "auto" else "cpu"
        assert f"device {expected}" in printed
    if not torch.cuda.is_available():
        assert records["auto"] == records["cpu"]


@pytest.mark.notebook
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("path", WITH_DEVICE, ids=[p.name for p in WITH_DEVICE])
def test_notebook_asked_for_cuda_without_cuda_fails_in_its_validation_cell(path, tmp_path):
    """Executed directly (papermill, past `snnlab run`'s own check), the notebook stops in the cell after
    its parameters with a one-line RuntimeError, before any work."""
    with pytest.raises(run.RunError) as info:
        run.execute(path, tmp_path / path.name, {"device": "cuda"}, progress=False)
    message = str(info.value)
    error = message.splitlines()[1].strip()
    assert error.startswith("RuntimeError: device='cuda' was asked for, but CUDA is not available")
    executed = load(tmp_path / path.name)   # the failed copy
    cells = code_cells(executed)
    failed = [i for i, c in enumerate(cells) if any(o.output_type == "error" for o in c.outputs)]
    injected = next(i for i, c in enumerate(cells) if "injected-parameters" in c.metadata.get("tags", []))
    assert failed == [injected + 1], f"{path.name} failed in cell {failed}, not in its validation cell"
    assert all(c.execution_count is None for c in cells[injected + 2:])
