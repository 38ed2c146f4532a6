"""`snnlab.results.record_results`: checked values, nothing written interactively, atomic writes under the runner."""
import json
import math

import numpy as np
import pytest
import torch

from snnlab import results, utils


@pytest.fixture
def interactive(monkeypatch, tmp_path):
    """A JupyterLab-like kernel: no runner variables, working directory in tmp_path."""
    monkeypatch.delenv(results.RESULTS_ENV, raising=False)
    monkeypatch.delenv(results.PARAMETERS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def under_runner(monkeypatch, tmp_path):
    """A kernel started by `snnlab run`: SNNLAB_RESULTS names a file, SNNLAB_PARAMETERS the injected values."""
    target = tmp_path / ".02_x.running-1.results.json"
    monkeypatch.setenv(results.RESULTS_ENV, str(target))
    monkeypatch.setenv(results.PARAMETERS_ENV, json.dumps({"seed": 3, "rstdp_epochs": 2}))
    return target


def test_record_results_without_the_variable_writes_nothing_and_returns_the_record(interactive):
    record = results.record_results("02_x", test_accuracy=0.91, best_epoch=7, dataset="digits")
    assert record == {"notebook": "02_x", "results": {"test_accuracy": 0.91, "best_epoch": 7, "dataset": "digits"}}
    assert list(interactive.iterdir()) == []


def test_record_results_writes_the_record_with_the_injected_parameters(under_runner):
    record = results.record_results("02_x", test_accuracy=0.91, curve=[0.5, 0.75], solved=True, note=None)
    written = json.loads(under_runner.read_text())
    assert written == record == {"notebook": "02_x", "parameters": {"seed": 3, "rstdp_epochs": 2},
                                 "results": {"test_accuracy": 0.91, "curve": [0.5, 0.75], "solved": True, "note": None}}
    assert results.read_record(under_runner) == written
    assert sorted(p.name for p in under_runner.parent.iterdir()) == [under_runner.name]  # no temporary left


def test_record_results_omits_parameters_when_unknown(under_runner, monkeypatch):
    monkeypatch.delenv(results.PARAMETERS_ENV)
    assert "parameters" not in json.loads(json.dumps(results.record_results("02_x", acc=1.0)))
    assert "parameters" not in json.loads(under_runner.read_text())


def test_record_results_writes_atomically(under_runner, monkeypatch):
    under_runner.write_text('{"notebook": "02_x", "results": {"acc": 0.5}}\n')
    before = under_runner.read_bytes()

    def interrupted(src, dst):
        raise OSError("killed between writing and renaming")

    monkeypatch.setattr(utils.os, "replace", interrupted)
    with pytest.raises(OSError, match="killed"):
        results.record_results("02_x", acc=0.9)
    # The old file is whole and no half-written file is left: the write went through a temporary and a rename.
    assert under_runner.read_bytes() == before
    assert sorted(p.name for p in under_runner.parent.iterdir()) == [under_runner.name]


def test_a_second_call_adds_to_the_record(under_runner):
    results.record_results("02_x", acc=0.5, epochs=3)
    record = results.record_results("02_x", acc=0.9, loss=0.1)
    assert record["results"] == {"acc": 0.9, "epochs": 3, "loss": 0.1}
    assert json.loads(under_runner.read_text())["results"] == {"acc": 0.9, "epochs": 3, "loss": 0.1}


@pytest.mark.parametrize("value,kind", [
    (torch.tensor(0.9), "torch.Tensor"),
    (np.array([0.1, 0.2]), "numpy.ndarray"),
    ({"a": 1}, "dict"),
    (object(), "object"),
    ({1, 2}, "set"),
])
def test_a_value_that_is_not_a_json_scalar_is_refused_naming_the_key(under_runner, value, kind):
    with pytest.raises(ValueError, match=rf"test_accuracy is a {kind}\b.*not a JSON scalar"):
        results.record_results("02_x", best_epoch=3, test_accuracy=value)
    assert not under_runner.exists()  # nothing of a refused record is written


def test_list_items_and_lengths_are_checked(interactive):
    with pytest.raises(ValueError, match=r"curve\[1\] is a list"):
        results.record_results("02_x", curve=[1.0, [2.0]])
    with pytest.raises(ValueError, match=r"curve is a list of 101 items \(at most 100\)"):
        results.record_results("02_x", curve=[0.0] * 101)
    with pytest.raises(ValueError, match="note is a string of 501 characters"):
        results.record_results("02_x", note="x" * 501)


def test_numpy_scalars_become_plain_and_nan_becomes_none(under_runner):
    record = results.record_results("02_x", acc=np.float32(0.25), n=np.int64(3), ok=np.bool_(True),
                                    sd=float("nan"), top=math.inf, pair=(np.float64(1.5), float("-inf")))
    assert record["results"] == {"acc": 0.25, "n": 3, "ok": True, "sd": None, "top": None, "pair": [1.5, None]}
    assert [type(v) for v in record["results"].values()][:3] == [float, int, bool]
    assert json.loads(under_runner.read_text())["results"] == record["results"]  # strict JSON: no NaN written
    assert "NaN" not in under_runner.read_text() and "Infinity" not in under_runner.read_text()


def test_notebook_name_and_at_least_one_number_are_required(interactive):
    with pytest.raises(ValueError, match="notebook must be the notebook's name"):
        results.record_results("", acc=1.0)
    with pytest.raises(ValueError, match="at least one number"):
        results.record_results("02_x")
    with pytest.raises(ValueError, match="'bad key' is not a valid name"):
        results.record_results("02_x", **{"bad key": 1.0})


def test_read_record_refuses_what_is_not_a_results_file(tmp_path):
    (tmp_path / "a.json").write_text("[1, 2]")
    (tmp_path / "b.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a results file"):
        results.read_record(tmp_path / "a.json")
    with pytest.raises(ValueError, match="not a readable results file"):
        results.read_record(tmp_path / "b.json")
