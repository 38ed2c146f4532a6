"""Suite-wide set-up: headless widgets, figures into a temporary folder, one thread per xdist worker.

The environment is set before torch is imported anywhere, and the notebook kernels that nbval and
papermill start inherit it.
"""
import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

import pytest


def pytest_configure(config):
    os.environ["SNNLAB_HEADLESS"] = "1"
    # Every figure a notebook saves or a panel draws is checked for readability (plots.figure_problems).
    os.environ["SNNLAB_STRICT_FIGURES"] = "1"
    os.environ.setdefault("MPLBACKEND", "Agg")
    # Tests must not overwrite the figures the main job writes into the checkout.
    figures = tempfile.mkdtemp(prefix="snnlab-figures-")
    os.environ["SNNLAB_FIGURES"] = figures
    config.add_cleanup(lambda: shutil.rmtree(figures, ignore_errors=True))
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Two workers on two cores: one BLAS/OpenMP thread each avoids oversubscription.
        os.environ["OMP_NUM_THREADS"] = "1"
        os.environ["MKL_NUM_THREADS"] = "1"


@pytest.fixture
def figures_dir():
    """The folder the notebooks and ``save_figure`` write to during the tests."""
    return Path(os.environ["SNNLAB_FIGURES"])


def _assert_same(a, b, where: str = "result") -> None:
    """Bit-for-bit equality of nested results (tensors on the same device with the same dtype, numpy
    arrays, modules by their state, dicts, sequences, numbers)."""
    import numpy as np
    import torch

    if isinstance(a, torch.nn.Module):
        _assert_same(a.state_dict(), b.state_dict(), where)
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and (a.dtype, a.device, a.shape) == (b.dtype, b.device, b.shape), where
        assert torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            _assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.fixture
def assert_same():
    """``assert_same(a, b)``: the two results are equal bit for bit (how ``device="cpu"`` is checked
    against the default that every function had before it took a device)."""
    return _assert_same


@pytest.fixture(scope="session")
def quick_copy(tmp_path_factory):
    """``quick_copy(notebook_path) -> (folder, exit_code)``: the notebook run once through ``snnlab run``
    with its ``metadata.snnlab.test_parameters``, shared by every test of this pytest run.

    The folder holds what ``snnlab run --out folder --figures folder/figures`` leaves: the executed copy,
    ``run_card.json``, ``<stem>.results.json`` and the figures. tests/test_notebooks.py checks the run;
    the course website's browser test builds the site from the same copies, so the suite executes each
    notebook on its test parameters once, not once per use. Under pytest-xdist the workers share the
    folder (the run's base temporary folder, new for every pytest run) and a file lock per notebook:
    the first worker to ask executes it, the others wait and reuse it.
    """
    import json

    import nbformat
    from filelock import FileLock

    from snnlab import run

    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "quick-copies"
    shared.mkdir(exist_ok=True)

    def make(path: Path) -> tuple[Path, int]:
        folder = shared / path.stem
        status = shared / f"{path.stem}.status"
        with FileLock(str(shared / f"{path.stem}.lock")):
            if not status.is_file():
                params = nbformat.read(path, as_version=4).metadata["snnlab"]["test_parameters"]
                argv = [str(path), "--out", str(folder), "--figures", str(folder / "figures"), "--no-progress"]
                for name, value in params.items():
                    argv += ["-p", name, json.dumps(value) if not isinstance(value, str) else value]
                status.write_text(str(run.main(argv)))
            return folder, int(status.read_text())

    return make
