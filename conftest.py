"""Which notebooks nbval executes on their defaults.

pytest collects ``notebooks/*.ipynb`` through nbval (``--nbval-lax``). A notebook whose defaults take
longer than the suite can afford sets ``metadata.snnlab.suite_runs_defaults = false`` (with the reason
in ``metadata.snnlab.defaults_note``): the suite then runs it only through ``snnlab run`` with its
small ``test_parameters`` (tests/test_notebooks.py), and ``make demo`` runs its defaults.

Every cell nbval collects carries the ``notebook`` marker, so ``make test-fast`` (``-m "not notebook and
not slow"``) leaves them out.
"""
import json

import pytest


def pytest_ignore_collect(collection_path, config):
    if collection_path.suffix != ".ipynb" or collection_path.parent.name != "notebooks":
        return None
    meta = json.loads(collection_path.read_text(encoding="utf-8")).get("metadata", {}).get("snnlab", {})
    return True if meta.get("suite_runs_defaults") is False else None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb":   # nbval's cells: each one runs in the notebook's kernel
            item.add_marker(pytest.mark.notebook)
