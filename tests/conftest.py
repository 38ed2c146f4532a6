"""Suite-wide set-up: headless widgets, figures into a temporary folder, one thread per xdist worker.

The environment is set before torch is imported anywhere, and the notebook kernels that nbval and
papermill start inherit it.
"""
import os
import shutil
import tempfile
from pathlib import Path

import pytest


def pytest_configure(config):
    os.environ["SNNLAB_HEADLESS"] = "1"
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
