"""Execute one notebook with papermill and commit its copy and results atomically.

Used by ``snnlab run`` (:mod:`snnlab.run`, which adds arguments, grids and results tables) and
``snnlab handout`` (:mod:`snnlab.handout`).

**Safety.** An executed copy is written under a temporary name (``<out>/.<stem>.running-<pid>.ipynb``, its
results under ``.<stem>.running-<pid>.results.json``) and committed when the run completes: first the
results file is renamed to ``<stem>.results.json`` (or an older one removed, if this run recorded nothing),
then the notebook to ``<name>.ipynb``. The notebook comes last because it is the run's commit record: it
carries its own results in ``metadata.snnlab.results``, so even a kill between the two renames leaves each
file complete and a notebook that still says which numbers it produced; a kill before leaves both earlier
files as they were. A notebook whose cell fails leaves its copy, traceback included, in
``<out>/<stem>.failed.ipynb`` and no results. A later run removes the temporaries of runs whose process
is gone (:func:`remove_stale_runs`).
"""
from __future__ import annotations

import json
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import SnnlabError
from .results import PARAMETERS_ENV, RESULTS_ENV, read_record
from .utils import pause_point

KERNEL = "python3"  # custom kernelspec names fail with NoSuchKernel under papermill (DESIGN.md §3)
# A run's temporaries: the notebook, its results, and what a killed atomic write of the results left.
RUNNING_PATTERN = re.compile(r"^\..+\.running-(\d+)\.(?:ipynb|results\.json)(?:\.[A-Za-z0-9_]+\.tmp)?$")
FIGURES_ENV = "SNNLAB_FIGURES"


class RunError(SnnlabError):
    """A user-facing error: bad arguments (``code`` 2) or a failed notebook (``code`` 1).

    Defined here, below :mod:`snnlab.run`, because :func:`execute` raises it too; ``snnlab run`` and
    ``snnlab handout`` print it in one line and exit with ``code``.
    """

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.exit_code = code

    @property
    def code(self) -> int:
        return self.exit_code


# --------------------------------------------------------------------------- file names
def running_path(output: Path) -> Path:
    """Where papermill writes ``output`` while it runs: a hidden name in the same folder.

    The same folder keeps the final ``os.replace`` a rename on one file system; the pid tells a
    later run whether the writer is still alive (:func:`remove_stale_runs`).
    """
    return output.with_name(f".{output.stem}.running-{os.getpid()}.ipynb")


def running_results_path(output: Path) -> Path:
    """Where the kernel writes the results of ``output`` while it runs (``$SNNLAB_RESULTS``)."""
    return output.with_name(f".{output.stem}.running-{os.getpid()}.results.json")


def results_path(output: Path) -> Path:
    """The committed results of ``output``: ``<stem>.results.json`` next to it."""
    return output.with_name(f"{output.stem}.results.json")


def failed_path(output: Path) -> Path:
    """Where the copy of a run whose cell failed goes: ``<stem>.failed.ipynb`` next to ``output``."""
    return output.with_name(f"{output.stem}.failed.ipynb")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_runs(folder: str | os.PathLike) -> list[Path]:
    """Delete the ``.<stem>.running-<pid>.ipynb`` (and ``.results.json``) files in ``folder`` whose process is gone.

    A killed run leaves its temporary copy and results behind; one whose pid is alive belongs to
    another ``snnlab run`` writing into the same folder right now and is left alone.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = []
    for path in folder.iterdir():
        match = RUNNING_PATTERN.match(path.name)
        if match and path.is_file() and not _pid_alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            stale.append(path)
    return stale


def _record_output_path(notebook: Path, output: Path, results: dict | None = None) -> None:
    """Make the copy's ``metadata.papermill.output_path`` name where it ends up, not its temporary name.

    With ``results`` (the run's record), also store it as ``metadata.snnlab.results``: the executed copy
    then says which numbers it produced, whatever happens to the results file next to it.
    """
    import nbformat

    nb = nbformat.read(str(notebook), as_version=nbformat.NO_CONVERT)
    nb.metadata.setdefault("papermill", {})["output_path"] = str(output)
    if results is not None:
        nb.metadata.setdefault("snnlab", {})["results"] = results
    nbformat.write(nb, str(notebook))


# --------------------------------------------------------------------------- execution
@contextmanager
def kernel_environment(values: dict[str, str | None]):
    """Set (or, for ``None``, remove) environment variables while a kernel starts; restore them after.

    The kernel inherits this process's environment when papermill starts it, so this is how a run tells
    its kernel where figures and results go. Each ``-j`` worker is its own process, with its own copy.
    """
    saved = {name: os.environ.get(name) for name in values}
    try:
        _set_environment(values)
        yield
    finally:
        _set_environment(saved)


def _set_environment(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def execute(notebook: Path, output: Path, parameters: dict, *, progress: bool = True,
            failed_output: Path | None = None, results_output: Path | None = None,
            figures: Path | None = None) -> float:
    """Run one notebook with papermill into ``output``; return seconds. Raises RunError naming the failing cell.

    papermill saves its copy after every cell, so it writes under :func:`running_path` and only a
    complete run is renamed to ``output``: a kill leaves the previous ``output`` untouched. When a
    cell fails, the copy with the traceback is moved to ``failed_output`` (``snnlab run`` passes
    :func:`failed_path`) and ``output`` is kept; ``None`` puts it at ``output`` itself, for callers
    that execute in a scratch folder and read the failed copy there (``snnlab handout``).

    With ``results_output``, the kernel gets ``$SNNLAB_RESULTS`` = :func:`running_results_path` and
    what :func:`snnlab.results.record_results` writes there is committed to ``results_output`` just
    before the notebook (a run that records nothing removes an older ``results_output``); without it,
    ``$SNNLAB_RESULTS`` is removed from the kernel's environment. ``figures`` sets ``$SNNLAB_FIGURES``.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    # Absolute: papermill saves the per-cell copies from inside the notebook's folder (its cwd).
    output = Path(output).resolve()
    failed = Path(failed_output).resolve() if failed_output is not None else output
    results = Path(results_output).resolve() if results_output is not None else None
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary, temporary_results = running_path(output), running_results_path(output)
    temporary_results.unlink(missing_ok=True)  # left by an earlier process with this pid: not ours
    env = {RESULTS_ENV: str(temporary_results) if results is not None else None,
           PARAMETERS_ENV: json.dumps(parameters, default=str)}
    if figures is not None:
        env[FIGURES_ENV] = str(Path(figures).resolve())
    start = time.perf_counter()
    try:
        with kernel_environment(env):
            papermill.execute_notebook(
                str(notebook), str(temporary), parameters=parameters, kernel_name=KERNEL,
                cwd=str(notebook.parent), progress_bar=progress, log_output=False,
            )
        seconds = time.perf_counter() - start
        record = None
        if results is not None and temporary_results.is_file():
            try:
                record = read_record(temporary_results)
            except ValueError as exc:
                raise RunError(f"{notebook.name} ran, but its results are unreadable: {exc}", code=1) from exc
        _record_output_path(temporary, output, record)
        pause_point("run:notebook-written")
        # The commit: results first, the notebook (which records them too) last. See the module docstring.
        if results is not None:
            if record is not None:
                os.replace(temporary_results, results)
            else:
                results.unlink(missing_ok=True)  # an older run's numbers do not describe this copy
        os.replace(temporary, output)
    except PapermillExecutionError as exc:
        temporary_results.unlink(missing_ok=True)  # a failed run's numbers are not committed
        if temporary.is_file():
            _record_output_path(temporary, failed)
            os.replace(temporary, failed)
        kept = (f" (the last complete copy {output} is unchanged)"
                if failed != output and output.is_file() else "")
        source = (exc.source or "").strip().splitlines()
        first = source[0] if source else ""
        raise RunError(
            f"{notebook.name} failed in cell {exc.cell_index} (execution count {exc.exec_count}: "
            f"{first!r}):\n  {exc.ename}: {exc.evalue}\n  the executed copy with the traceback: {failed}{kept}",
            code=1,
        ) from exc
    except BaseException:
        temporary.unlink(missing_ok=True)  # Ctrl-C, a dead kernel: a half copy is worth nothing
        temporary_results.unlink(missing_ok=True)
        raise
    if failed != output:
        failed.unlink(missing_ok=True)  # the failure it recorded is older than this good copy
    return seconds
