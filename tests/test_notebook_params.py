"""The parameters of each notebook (snnlab.notebook_params): defaults equal to the notebook's parameters
cell, one ValueError naming the parameter for each bad value, and the validation cell that builds them.
No kernel is started: milliseconds."""
import ast
import dataclasses
import json
from pathlib import Path

import pytest

from snnlab import notebook_params
from snnlab.errors import CheckpointError
from snnlab.notebook_params import BY_NOTEBOOK

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def parameters_cell(path: Path) -> tuple[int, dict[str, object]]:
    """(index among the code cells, {name: literal}) of the cell tagged ``parameters``."""
    cells = code_cells(path)
    index = next(i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))
    values = {}
    for node in ast.parse("".join(cells[index]["source"])).body:
        values[node.targets[0].id] = ast.literal_eval(node.value)
    return index, values


def params_class(path: Path):
    return BY_NOTEBOOK[path.stem]


def test_every_notebook_has_one_params_class_and_no_class_lacks_a_notebook():
    assert sorted(BY_NOTEBOOK) == [p.stem for p in NOTEBOOKS]
    for stem, cls in BY_NOTEBOOK.items():
        assert cls.__name__ == f"Notebook{stem[:2]}Params" and cls.notebook == stem
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_params_defaults_are_the_notebooks_parameters_cell(path):
    _, values = parameters_cell(path)
    fields = dataclasses.fields(params_class(path))
    assert [f.name for f in fields] == list(values), "same names, in the order of the parameters cell"
    for f in fields:
        assert f.default == values[f.name] and type(f.default) is type(values[f.name]), f.name
    params_class(path)()  # the defaults pass their own checks


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_params_refuse_the_notebooks_bad_parameter(path):
    (name, value), = json.loads(path.read_text())["metadata"]["snnlab"]["bad_parameters"].items()
    with pytest.raises(ValueError, match=name):
        params_class(path)(**{name: value})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_validation_cell_builds_the_params_from_every_parameter(path):
    """The cell after the parameters cell passes each parameter, by its own name, to NotebookNNParams:
    a parameter added to the notebook but not to the checks fails here."""
    index, values = parameters_cell(path)
    tree = ast.parse("".join(code_cells(path)[index + 1]["source"]))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr == params_class(path).__name__]
    assert len(calls) == 1, f"{path.name}: the validation cell must build {params_class(path).__name__} once"
    (call,) = calls
    assert not call.args
    assert {k.arg: k.value.id for k in call.keywords if isinstance(k.value, ast.Name)} == {n: n for n in values}


BAD = [  # (class, overrides, error type, words the message must hold)
    (notebook_params.Notebook00Params, {"tau": 0.0}, ValueError, ["tau", "> 0.0"]),
    (notebook_params.Notebook00Params, {"tau": 1.0, "dt": 1.0}, ValueError, ["tau must be larger than dt"]),
    (notebook_params.Notebook00Params, {"input_current": "high"}, ValueError, ["input_current", "number"]),
    (notebook_params.Notebook00Params, {"n_neurons": 0}, ValueError, ["n_neurons", ">= 1"]),
    (notebook_params.Notebook00Params, {"seed": -1}, ValueError, ["seed", ">= 0"]),
    (notebook_params.Notebook00Params, {"refractory_ms": 1.5}, ValueError, ["refractory_ms", "multiple of dt"]),
    (notebook_params.Notebook01Params, {"ordering": "later"}, ValueError, ["ordering", "'same-step'", "'delayed'"]),
    (notebook_params.Notebook01Params, {"trace_mode": "all"}, ValueError, ["trace_mode", "'nearest'"]),
    (notebook_params.Notebook01Params, {"trial_ms": 5}, ValueError, ["trial_ms", ">= 10"]),
    (notebook_params.Notebook02Params, {"dataset": "cifar10"}, ValueError, ["dataset", "'mnist5k'"]),
    (notebook_params.Notebook02Params, {"data_path": "/data"}, ValueError, ["data_path='/data' is read only with"]),
    (notebook_params.Notebook02Params, {"checkpoint": None}, ValueError, ["data_path and checkpoint must be strings"]),
    (notebook_params.Notebook02Params, {"dataset": "mnist", "data_path": "/no/such/folder"}, FileNotFoundError,
     ["data_path='/no/such/folder'", "no such directory"]),
    (notebook_params.Notebook03Params, {"model": "xl"}, ValueError, ["model", "'nano'"]),
    (notebook_params.Notebook03Params, {"lr": 0}, ValueError, ["lr", "> 0.0"]),
    (notebook_params.Notebook03Params, {"data_path": "/data"}, ValueError, ["leave data_path None"]),
    (notebook_params.Notebook03Params, {"dataset": "cifar10"}, ValueError, ["dataset='cifar10' needs data_path"]),
    (notebook_params.Notebook03Params, {"dassdp_warmup": 3}, ValueError, ["dassdp_warmup=3 must be < epochs=3"]),
    (notebook_params.Notebook04Params, {"n_train": 31}, ValueError, ["n_train", ">= 32"]),
    (notebook_params.Notebook04Params, {"lr": 0.0}, ValueError, ["lr", "> 0.0"]),
    (notebook_params.Notebook05Params, {"inner_steps": 0}, ValueError, ["inner_steps", ">= 1"]),
    (notebook_params.Notebook05Params, {"meta_batch": 1.5}, ValueError, ["meta_batch", "integer"]),
    (notebook_params.Notebook06Params, {"target_rate_hz": 60.0}, ValueError, ["target_rate_hz", "<= 50.0"]),
    (notebook_params.Notebook06Params, {"scaling_duration_ms": 999.0}, ValueError,
     ["scaling_duration_ms", ">= 1000.0"]),
    (notebook_params.Notebook07Params, {"rewiring_ms": 100.0}, ValueError, ["rewiring_ms", ">= 500.0"]),
    (notebook_params.Notebook07Params, {"generations": True}, ValueError, ["generations", "integer"]),
]


@pytest.mark.parametrize("cls, overrides, error, words", BAD,
                         ids=[f"{c.notebook[:2]}-{'-'.join(o)}" for c, o, _, _ in BAD])
def test_params_bad_value_names_the_parameter_and_what_is_allowed(cls, overrides, error, words):
    with pytest.raises(error) as info:
        cls(**overrides)
    assert type(info.value) is error and "\n" not in str(info.value)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("cls", BY_NOTEBOOK.values(), ids=list(BY_NOTEBOOK))
def test_params_device_is_checked_for_its_spelling_not_for_the_machine(cls):
    assert cls(device=" CUDA:1 ").device == "cuda:1"  # no GPU needed: pick_device asks the machine later
    assert cls(device="auto").device == "auto"
    with pytest.raises(ValueError, match=r"device must be one of \('auto', 'cpu', 'cuda'\).*'tpu'"):
        cls(device="tpu")


def test_params_are_frozen_and_hold_normalised_numbers():
    p = notebook_params.Notebook06Params(delay_ms=200, target_rate_hz=20)
    assert p.delay_ms == 200.0 and type(p.delay_ms) is float and type(p.target_rate_hz) is float
    assert type(notebook_params.Notebook00Params(tau=5, dt=1).tau) is float
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.n_trials = 3


def test_notebook02_params_read_the_checkpoint_before_any_work(tmp_path):
    bad = tmp_path / "trainer.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="checkpoint"):
        notebook_params.Notebook02Params(checkpoint=str(bad))
    assert notebook_params.Notebook02Params(checkpoint=str(tmp_path / "new.pt")).checkpoint.endswith("new.pt")
