"""A notebook's headline numbers, recorded for batch runs: one call, :func:`record_results`.

A notebook ends with one cell that names the numbers its replication table or summary quotes::

    snnlab.results.record_results("02_mozafari_rstdp", dataset=dataset, test_accuracy=float(test_acc),
                                  best_epoch=int(best_epoch))

* **In JupyterLab** (no ``SNNLAB_RESULTS`` in the environment) it writes nothing: it checks the values
  and returns the record, which the cell displays.
* **Under** ``snnlab run`` the runner sets, for each execution, ``SNNLAB_RESULTS`` to a temporary file
  next to the executed copy and ``SNNLAB_PARAMETERS`` to the injected parameters as JSON. The record

  .. code-block:: json

      {"notebook": "02_mozafari_rstdp", "parameters": {"seed": 1}, "results": {"test_accuracy": 0.91}}

  is written there atomically (temporary file + rename); ``parameters`` is left out when unknown. When
  the notebook completes, the runner renames it to ``<out>/<stem>.results.json`` and then renames the
  notebook (see :mod:`snnlab.run`), and collects every run's record into ``<out>/results.csv``.

Values must be JSON scalars (``int``, ``float``, ``bool``, ``str``, ``None``; NumPy scalars are
converted) or short flat lists of them. NaN and infinities become ``None`` (JSON has no NaN) and are
left out of means. A tensor, an array, a dict or any other object is refused with a ``ValueError``
naming the key: convert it (``float(acc)``, ``int(epoch)``, ``x.tolist()``) or record its parts under
their own names. A second call in the same run adds to the record (a key given again is replaced).
Nothing happens on import.
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

RESULTS_ENV = "SNNLAB_RESULTS"        # file the record goes to (set by ``snnlab run`` per execution)
PARAMETERS_ENV = "SNNLAB_PARAMETERS"  # the injected parameters as a JSON mapping (set by ``snnlab run``)
MAX_LIST_ITEMS = 100                  # "short lists": a curve belongs in a figure or a file, not the table
MAX_STRING_CHARS = 500
KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _scalar(key: str, value: Any, where: str = "") -> int | float | bool | str | None:
    """``value`` as a JSON scalar, or a ValueError naming ``key``."""
    if value is None or isinstance(value, (bool, int, str)):
        if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
            raise ValueError(f"record_results: {key}{where} is a string of {len(value)} characters "
                             f"(at most {MAX_STRING_CHARS})")
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return _scalar(key, value.item(), where)  # np.float32, np.int64, np.bool_: already scalars
    kind = f"{type(value).__module__}.{type(value).__qualname__}".removeprefix("builtins.")
    hint = ("convert it with float(...) or int(...), or .tolist() for a short list"
            if hasattr(value, "shape") or hasattr(value, "item") else
            "record each part under its own name" if isinstance(value, dict) else
            "record a number, a string, a bool, None or a short list of them")
    raise ValueError(f"record_results: {key}{where} is a {kind}, which is not a JSON scalar; {hint}")


def check_results(numbers: dict[str, Any]) -> dict[str, Any]:
    """``numbers`` with every value checked and made plain (see the module docstring); ValueError names the key."""
    checked: dict[str, Any] = {}
    for key, value in numbers.items():
        if not isinstance(key, str) or not KEY_PATTERN.match(key):
            raise ValueError(f"record_results: {key!r} is not a valid name (letters, digits, _; not starting with a digit)")
        if isinstance(value, (list, tuple)):
            if len(value) > MAX_LIST_ITEMS:
                raise ValueError(f"record_results: {key} is a list of {len(value)} items (at most {MAX_LIST_ITEMS}); "
                                 "record a summary of it, or save it to a file")
            checked[key] = [_scalar(key, item, f"[{i}]") for i, item in enumerate(value)]
        else:
            checked[key] = _scalar(key, value)
    return checked


def injected_parameters() -> dict[str, Any] | None:
    """The parameters ``snnlab run`` injected into this kernel (``$SNNLAB_PARAMETERS``), or ``None`` if unknown."""
    text = os.environ.get(PARAMETERS_ENV)
    if not text:
        return None
    try:
        params = json.loads(text)
    except ValueError:
        return None
    return params if isinstance(params, dict) else None


def record_results(notebook: str, **numbers: Any) -> dict[str, Any]:
    """Record a notebook's headline numbers; under ``snnlab run`` write them for the results table.

    Args:
        notebook: the notebook's stem, its file name without ``.ipynb`` (``"02_mozafari_rstdp"``).
        **numbers: name = value, each a JSON scalar or a short flat list (see the module docstring).

    Returns:
        ``{"notebook": ..., "parameters": ... (only when known), "results": {...}}``: the record as
        written to ``$SNNLAB_RESULTS``, or as it would be when the variable is not set (then nothing is
        written).

    Raises:
        ValueError: ``notebook`` is empty, no number is given, or a value is not JSON-serialisable
            (the message names the key).
    """
    if not isinstance(notebook, str) or not notebook.strip():
        raise ValueError(f"record_results: notebook must be the notebook's name (its file name without .ipynb), "
                         f"got {notebook!r}")
    if not numbers:
        raise ValueError("record_results: give at least one number, e.g. record_results(name, test_accuracy=acc)")
    results = check_results(numbers)
    record: dict[str, Any] = {"notebook": notebook}
    params = injected_parameters()
    if params is not None:
        record["parameters"] = params
    target = os.environ.get(RESULTS_ENV)
    if target:
        try:
            previous = read_record(target) if Path(target).is_file() else None
        except ValueError:  # not a record (left by something else): replaced, not merged
            previous = None
        if previous is not None and previous.get("notebook") == notebook:
            results = {**previous.get("results", {}), **results}
        record["results"] = results
        from .utils import atomic_write_text

        atomic_write_text(target, json.dumps(record, indent=2) + "\n")
    else:
        record["results"] = results
    return record


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """A results file written by :func:`record_results`; ValueError if it is not one."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable results file ({exc})") from exc
    if not isinstance(record, dict) or not isinstance(record.get("results"), dict):
        raise ValueError(f"{path}: not a results file (expected a mapping with 'results')")
    return record
