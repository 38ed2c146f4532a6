"""``snnlab run``: execute notebooks headless with papermill, the kit's main job.

    snnlab run [NOTEBOOK ...] [-p NAME VALUE ...] [-f params.yaml] [--grid NAME=V1,V2,... ...]
               [--out DIR] [--figures DIR] [--device auto|cpu|cuda] [-j N] [--keep-going] [--list]

Without NOTEBOOK it runs every ``notebooks/NN_*.ipynb`` in numeric order. Executed copies go to
``--out`` (default ``build/notebooks/``), figures to ``--figures`` (default ``figures/``), and a run
card (versions, parameters, git commit) to ``<out>/run_card.json``. A parameter that no chosen
notebook declares is refused with the list of declared ones (papermill itself only warns); a
parameter is passed to each notebook that declares it.

**Grids.** ``--grid seed=0,1,2 --grid lr=0.01,0.1`` (or ``grid: {seed: [0, 1, 2]}`` in the ``-f`` file)
runs each notebook once per combination of the grid values it declares (the cartesian product, in the
order given), each in its own folder ``<out>/seed=0,lr=0.01/`` with its own ``figures/`` (under
``--figures``, when given: ``<figures>/seed=0,lr=0.01/``) and run card. ``-j N`` runs N of them at once.

**Results.** A notebook records its headline numbers with :func:`snnlab.results.record_results`: for
each execution the runner sets ``SNNLAB_RESULTS`` (where the kernel writes them) and
``SNNLAB_PARAMETERS`` (the injected parameters, JSON). A completed run leaves
``<run folder>/<stem>.results.json`` next to ``<stem>.ipynb``. At the end ``<out>/results.csv`` holds one
row per run (notebook, grid values, recorded numbers, run folder, status ``ok``/``failed``/``skipped``)
and ``<out>/results_summary.csv`` the mean, sd (n - 1) and n of every numeric result per setting (notebook
and grid values except ``seed``: seeds are what is averaged over); the summary is printed too. Without a
grid the two tables are written when some notebook recorded results or failed.

**Safety.** Every argument is checked before anything is written. Each notebook runs through
:func:`snnlab.execution.execute`: its copy and results are written under temporary names and committed
only when the run completes, and a notebook whose cell fails leaves ``<out>/<stem>.failed.ipynb`` and
no results. Input errors print one line and exit 2 (bad arguments) or 1 (a notebook failed);
``--debug`` or ``SNNLAB_DEBUG=1`` adds the traceback.
"""
from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import math
import os
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import command_boundary
# RunError and remove_stale_runs stay importable from here: snnlab run raises and calls them.
from .execution import (
    FIGURES_ENV, RunError, execute, failed_path, kernel_environment, remove_stale_runs, results_path,
)
from .results import read_record
from .utils import DEVICE_CHOICES, atomic_write_text, exit_with_parent, figures_dir, pick_device, write_run_card

NOTEBOOK_PATTERN = re.compile(r"^(\d+)_.+\.ipynb$")
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SEED_AXIS = "seed"  # the grid axis that results_summary.csv averages over
RESULTS_TABLE = "results.csv"
SUMMARY_TABLE = "results_summary.csv"


# --------------------------------------------------------------------------- discovery
def default_notebook_dir() -> Path:
    from .utils import repo_root

    root = repo_root()
    return (root / "notebooks") if root else Path("notebooks")


def discover(folder: str | os.PathLike | None = None) -> list[Path]:
    """Every ``NN_name.ipynb`` in ``folder``, in numeric order."""
    folder = Path(folder) if folder is not None else default_notebook_dir()
    if not folder.is_dir():
        raise RunError(f"no notebooks folder at {folder}: run from the repository root or name the notebooks")
    found = [p for p in folder.iterdir() if NOTEBOOK_PATTERN.match(p.name)]
    return sorted(found, key=lambda p: (int(NOTEBOOK_PATTERN.match(p.name).group(1)), p.name))


def resolve_notebooks(names: list[str]) -> list[Path]:
    if not names:
        notebooks = discover()
        if not notebooks:
            raise RunError("no NN_*.ipynb notebooks found in notebooks/")
        return notebooks
    paths = []
    for name in names:
        path = Path(name)
        if not path.exists() and not path.is_absolute():
            # a name in notebooks/, with or without .ipynb (`snnlab run 02_mozafari_rstdp`)
            for candidate in (default_notebook_dir() / name, default_notebook_dir() / f"{name}.ipynb"):
                if candidate.is_file():
                    path = candidate
                    break
        if not path.is_file():
            known = ", ".join(nb.stem for nb in discover())
            raise RunError(f"notebook {name!r} not found" + (f" (the notebooks: {known})" if known else ""))
        if path.suffix != ".ipynb":
            raise RunError(f"{name!r} is not a notebook (.ipynb)")
        paths.append(path)
    return paths


def declared_parameters(notebook: Path) -> dict[str, dict]:
    """The notebook's ``parameters`` cell as ``{name: {"default": ..., "type": ...}}``."""
    import papermill

    try:
        info = papermill.inspect_notebook(str(notebook))
    except Exception as exc:  # papermill raises several types for unreadable notebooks
        raise RunError(f"{notebook}: cannot read its parameters ({exc})") from exc
    if not info:
        raise RunError(f"{notebook}: no cell tagged 'parameters' (every snnlab notebook needs one)")
    return {name: {"default": p.get("default"), "type": p.get("inferred_type_name")} for name, p in info.items()}


def notebook_metadata(notebook: Path) -> dict:
    """The notebook's ``metadata.snnlab`` registry entry (title, cpu_minutes, test parameters)."""
    data = json.loads(Path(notebook).read_text(encoding="utf-8"))
    return dict(data.get("metadata", {}).get("snnlab", {}))


# --------------------------------------------------------------------------- parameters
def parse_value(text: str) -> Any:
    """A command-line value as YAML: ``5`` -> int, ``5.0`` -> float, ``true`` -> bool, else str."""
    try:
        return yaml.safe_load(text) if text.strip() else text
    except yaml.YAMLError:
        return text


def load_param_file(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        raise RunError(f"-f {path}: no such parameters file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise RunError(f"-f {path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise RunError(f"-f {path}: expected a mapping of parameter names to values")
    return data


def check_declared(names, declared: dict[Path, dict[str, dict]], *, what: str = "parameter") -> None:
    """Refuse a name that no chosen notebook declares, listing what each one declares."""
    for name in names:
        if not any(name in d for d in declared.values()):
            lines = [f"unknown {what} {name!r}."]
            for nb, d in declared.items():
                allowed = ", ".join(f"{k} (default {v['default']})" for k, v in d.items())
                lines.append(f"  {nb.name} declares: {allowed}")
            raise RunError("\n".join(lines))


def plan_parameters(notebooks: list[Path], params: dict[str, Any], *,
                    declared: dict[Path, dict[str, dict]] | None = None) -> dict[Path, dict[str, Any]]:
    """Give each notebook the parameters it declares; refuse names no notebook declares."""
    if declared is None:
        declared = {nb: declared_parameters(nb) for nb in notebooks}
    check_declared(params, declared)
    return {nb: {k: v for k, v in params.items() if k in declared[nb]} for nb in notebooks}


# --------------------------------------------------------------------------- grids
def _grid_values(where: str, values: Any) -> list:
    """A grid axis as a non-empty list of distinct values (distinct as folder names)."""
    if not isinstance(values, list):
        raise RunError(f"{where}: expected a list of values, got {values!r}")
    if not values:
        raise RunError(f"{where}: no values (give at least one, e.g. seed=0,1,2)")
    seen: dict[str, Any] = {}
    for value in values:
        key = folder_value(value)
        if key in seen:
            raise RunError(f"{where}: values {seen[key]!r} and {value!r} are the same setting (folder name {key!r})")
        seen[key] = value
    return values


def parse_grid_option(text: str) -> tuple[str, list]:
    """``--grid NAME=V1,V2,...`` as ``(NAME, [V1, V2, ...])``, each value read as YAML like ``-p``.

    The values are read as one YAML flow list, so ``lr=0.1,0.01`` gives floats, ``mode=a,b`` strings and
    ``sizes=[1, 2],[3, 4]`` two lists.
    """
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise RunError(f"--grid {text!r}: expected NAME=V1,V2,... (e.g. --grid seed=0,1,2)")
    if not PARAMETER_NAME.match(name):
        raise RunError(f"--grid {text!r}: {name!r} is not a parameter name")
    try:
        items = yaml.safe_load(f"[{values}]")
    except yaml.YAMLError as exc:
        problem = one_line_yaml_error(exc)
        raise RunError(f"--grid {text!r}: cannot read {values!r} as comma-separated values ({problem})") from exc
    return name, _grid_values(f"--grid {name}", items)


def one_line_yaml_error(exc: yaml.YAMLError) -> str:
    return str(getattr(exc, "problem", None) or exc).splitlines()[0]


def take_file_grid(data: dict, path: str) -> dict[str, list]:
    """Remove the ``grid:`` mapping from a ``-f`` file's contents and return it checked."""
    if "grid" not in data:
        return {}
    grid = data.pop("grid")
    if not isinstance(grid, dict) or not grid:
        raise RunError(f"-f {path}: grid must be a mapping of parameter names to lists of values, "
                       "e.g. grid: {seed: [0, 1, 2]}")
    for name, values in grid.items():
        if not isinstance(name, str) or not PARAMETER_NAME.match(name):
            raise RunError(f"-f {path}: grid: {name!r} is not a parameter name")
        if name in data:
            raise RunError(f"-f {path}: {name} is both a plain parameter and a grid axis; keep one")
        _grid_values(f"-f {path}: grid: {name}", values)
    return dict(grid)


def folder_value(value: Any) -> str:
    """A grid value as it appears in a folder name: YAML-like text with only ``[A-Za-z0-9._+-]`` kept."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or value is None:
        text = json.dumps(value)
    else:
        text = json.dumps(value, default=str)
    return re.sub(r"[^A-Za-z0-9._+-]", "_", text) or "_"


def run_folder_name(setting: tuple[tuple[str, Any], ...]) -> str:
    """``(("seed", 0), ("lr", 0.1))`` -> ``"seed=0,lr=0.1"``; ``""`` for no grid."""
    return ",".join(f"{name}={folder_value(value)}" for name, value in setting)


@dataclass
class Run:
    """One execution: a notebook with its parameters, written into ``folder``."""

    notebook: Path
    parameters: dict[str, Any]
    folder: Path
    figures: Path | None = None          # None: the kernel inherits SNNLAB_FIGURES
    setting: tuple[tuple[str, Any], ...] = ()  # this run's grid values, in axis order

    @property
    def folder_name(self) -> str:
        return run_folder_name(self.setting)

    @property
    def label(self) -> str:
        return f"{self.notebook.name} [{self.folder_name}]" if self.setting else self.notebook.name

    @property
    def output(self) -> Path:
        return self.folder / self.notebook.name


def plan_runs(notebooks: list[Path], plan: dict[Path, dict[str, Any]], grid: dict[str, list],
              declared: dict[Path, dict[str, dict]], out: Path, figures: Path | None) -> list[Run]:
    """Every (notebook, grid setting) run, notebooks in order, settings in product order.

    A notebook runs over the grid axes it declares (a notebook that declares none runs once, in
    ``out``). ``figures`` is the ``--figures`` folder if one was named: grid runs then put their figures
    in ``<figures>/<setting>/``; otherwise in ``<run folder>/figures``.
    """
    runs = []
    for nb in notebooks:
        axes = [name for name in grid if name in declared[nb]]
        names: dict[str, tuple] = {}
        for values in itertools.product(*(grid[a] for a in axes)):
            setting = tuple(zip(axes, values))
            name = run_folder_name(setting)
            if name in names:
                raise RunError(f"--grid: settings {dict(names[name])} and {dict(setting)} share the folder {name!r}; "
                               "make the values differ in letters or digits")
            names[name] = setting
            if not setting:
                runs.append(Run(nb, dict(plan[nb]), out))
                continue
            folder = out / name
            runs.append(Run(nb, {**plan[nb], **dict(setting)}, folder,
                            (figures / name) if figures is not None else folder / "figures", setting))
    return runs


# --------------------------------------------------------------------------- output folders
def check_output_folder(option: str, path: str | os.PathLike) -> Path:
    """Refuse ``path`` for ``option`` if it, or a folder above it, exists as something else than a folder.

    Called before anything is written, so that a wrong ``--out`` costs nothing instead of a
    traceback from ``mkdir`` after the run card is already written.
    """
    path = Path(path)
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():  # a dangling link blocks mkdir too
            if candidate.is_dir():
                return path
            what = "is a file" if candidate.is_file() else "is not a folder"
            where = f"{path} {what}" if candidate == path else f"{path}: {candidate} {what}"
            raise RunError(f"{option} {where}; {option} needs a folder (it is created if missing)")
    return path


# --------------------------------------------------------------------------- execution
def execute_run(run: Run, *, progress: bool = True) -> tuple[float, dict | None]:
    """:func:`execute` as ``snnlab run`` uses it; returns (seconds, the committed results record or None).

    ``<folder>/<name>.ipynb``, failures to ``<stem>.failed.ipynb``, results to ``<stem>.results.json``.
    Module level (not a closure) so that ``-j N`` can send it to its worker processes.
    """
    output = run.output
    results = results_path(output)
    seconds = execute(run.notebook, output, run.parameters, progress=progress, failed_output=failed_path(output),
                      results_output=results, figures=run.figures)
    return seconds, (read_record(results) if results.is_file() else None)


# --------------------------------------------------------------------------- results tables
@dataclass
class Outcome:
    """What became of one :class:`Run`: ``status`` is ``ok``, ``failed`` or ``skipped`` (not started)."""

    run: Run
    status: str = "skipped"
    seconds: float | None = None
    record: dict | None = None
    results: dict[str, Any] = field(init=False, default_factory=dict)

    def __post_init__(self):
        if self.record is not None:
            self.results = dict(self.record.get("results", {}))


def table_value(value: Any) -> str:
    """A value as a CSV cell: numbers in full precision, JSON for bools/lists, empty for missing."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return json.dumps(value, default=str)
    return str(value)


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _ordered_union(lists) -> list[str]:
    return list(dict.fromkeys(item for items in lists for item in items))


def results_table(outcomes: list[Outcome], axes: list[str]) -> tuple[list[str], list[list[str]]]:
    """``results.csv``: one row per run: notebook, grid values, recorded numbers, run folder, status.

    A recorded name that is also a column (a grid parameter, ``run``, ``status``) is written as
    ``result.<name>``.
    """
    keys = _ordered_union(o.results for o in outcomes)
    fixed = {"notebook", *axes, "run", "status"}
    columns = [f"result.{k}" if k in fixed else k for k in keys]
    rows = []
    for o in outcomes:
        setting = dict(o.run.setting)
        rows.append([o.run.notebook.stem, *(table_value(setting[a]) if a in setting else "" for a in axes),
                     *(table_value(o.results.get(k)) for k in keys), o.run.folder_name or ".", o.status])
    return ["notebook", *axes, *columns, "run", "status"], rows


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def summary_table(outcomes: list[Outcome], axes: list[str]) -> tuple[list[str], list[list[str]]]:
    """``results_summary.csv``: per setting (notebook + grid values except ``seed``) and numeric result:
    n, mean and sd (n - 1; empty for n = 1) over the runs that recorded it."""
    settings = [a for a in axes if a != SEED_AXIS]
    groups: dict[tuple, list[Outcome]] = {}
    for o in outcomes:
        values = dict(o.run.setting)
        key = (o.run.notebook.stem, *(table_value(values[a]) if a in values else "" for a in settings))
        groups.setdefault(key, []).append(o)
    rows = []
    for key, members in groups.items():
        for name in _ordered_union(m.results for m in members):
            numbers = [m.results[name] for m in members if _is_number(m.results.get(name))]
            if not numbers:
                continue  # text, lists and missing values have no mean
            sd = statistics.stdev(numbers) if len(numbers) > 1 else None
            rows.append([*key, name, str(len(numbers)), table_value(statistics.fmean(numbers)), table_value(sd)])
    return ["notebook", *settings, "result", "n", "mean", "sd"], rows


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """An aligned plain-text table (numbers to 4 significant digits) for the terminal."""
    def short(text: str) -> str:
        try:
            number = float(text)
        except ValueError:
            return text
        return text if text.isdigit() else f"{number:.4g}"

    cells = [header] + [[short(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def write_results_tables(out: Path, outcomes: list[Outcome], axes: list[str]) -> tuple[Path, Path, str]:
    """Write ``results.csv`` then ``results_summary.csv`` atomically; return their paths and the summary as text."""
    table = out / RESULTS_TABLE
    summary = out / SUMMARY_TABLE
    atomic_write_text(table, _csv_text(*results_table(outcomes, axes)))
    header, rows = summary_table(outcomes, axes)
    atomic_write_text(summary, _csv_text(header, rows))
    return table, summary, format_table(header, rows) if rows else "(no numeric results)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snnlab run",
        description="Execute snnlab notebooks headless with papermill (all of them, in order, by default).",
    )
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="notebook paths or names in notebooks/")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="set a parameter (value parsed as YAML: 5, 5.0, true, text)")
    parser.add_argument("-f", "--parameters-file", metavar="YAML",
                        help="parameters from a YAML mapping (-p wins); its optional grid: mapping adds grid axes")
    parser.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                        help="run every combination of these values (repeatable; values read as YAML), each in "
                             "<out>/NAME=V,.../; results.csv and results_summary.csv collect the recorded numbers")
    parser.add_argument("--out", default="build/notebooks", help="folder for executed notebooks (default: %(default)s)")
    parser.add_argument("--figures", default=None, help="folder for figures (default: figures/ in the checkout)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default=None,
                        help="sets the `device` parameter of notebooks that declare one; cuda fails at once without CUDA")
    parser.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                        help="run up to N notebooks (or grid runs) at once, each in its own process (default: 1)")
    parser.add_argument("--keep-going", action="store_true", help="run the remaining notebooks after a failure")
    parser.add_argument("--list", action="store_true", help="list notebooks with their parameters and expected CPU time")
    parser.add_argument("--no-progress", action="store_true", help="no per-cell progress bars")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of input errors too (as SNNLAB_DEBUG=1 does)")
    return parser


def list_notebooks(notebooks: list[Path]) -> str:
    lines = []
    for nb in notebooks:
        meta = notebook_metadata(nb)
        minutes = meta.get("cpu_minutes")
        lines.append(f"{nb.name}  ~{minutes} min on 2 CPU cores" if minutes is not None else nb.name)
        if meta.get("title"):
            lines.append(f"    {meta['title']}")
        for name, p in declared_parameters(nb).items():
            lines.append(f"    {name:<20} = {p['default']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return command_boundary("snnlab run", lambda: _main(args), debug=args.debug)


def _main(args) -> int:
    # Everything that can be wrong with the arguments is found before the first byte is written.
    if args.jobs < 1:
        raise RunError(f"-j/--jobs must be >= 1, got {args.jobs}")
    notebooks = resolve_notebooks(args.notebooks)
    if args.list:
        print(list_notebooks(notebooks))
        return 0
    out = check_output_folder("--out", args.out)
    from_env = not args.figures and os.environ.get(FIGURES_ENV)
    figures = check_output_folder(FIGURES_ENV if from_env else "--figures", args.figures or figures_dir())
    params: dict[str, Any] = load_param_file(args.parameters_file) if args.parameters_file else {}
    grid = take_file_grid(params, args.parameters_file) if args.parameters_file else {}
    command_line_grid: dict[str, list] = {}
    for text in args.grid:
        name, values = parse_grid_option(text)
        if name in command_line_grid:
            raise RunError(f"--grid {name} is given twice; list all its values in one --grid {name}=V1,V2,...")
        command_line_grid[name] = values
    grid.update(command_line_grid)  # the command line wins over the file, as -p does
    command_line = {name: parse_value(value) for name, value in args.parameter}
    if args.device is not None:
        command_line["device"] = args.device
    for name in grid:
        if name in command_line:
            option = "--device" if name == "device" and args.device is not None else "-p"
            raise RunError(f"{name} is both a grid axis (--grid or grid: in -f) and a {option} value; use one of them")
        params.pop(name, None)  # a plain value from the -f file gives way to a command-line grid axis
    params.update(command_line)
    devices = [params["device"]] if "device" in params else []
    for device in devices + list(grid.get("device", [])):
        try:
            pick_device(device)  # fail now, not minutes later inside a notebook
        except (RuntimeError, ValueError) as exc:
            raise RunError(f"--device/-p device/--grid device: {exc}") from exc
    declared = {nb: declared_parameters(nb) for nb in notebooks}
    plan = plan_parameters(notebooks, params, declared=declared)
    check_declared(grid, declared, what="grid parameter")
    named_figures = figures if (args.figures or from_env) else None
    runs = plan_runs(notebooks, plan, grid, declared, out, named_figures)
    for run in runs:
        check_output_folder("--out", run.folder)
        if run.figures is not None:
            check_output_folder("--figures" if named_figures is not None else "--out", run.figures)

    out.mkdir(parents=True, exist_ok=True)
    write_run_card(out / "run_card.json", params=params, seed=params.get("seed"),
                   device=params.get("device", "notebook default"))
    for folder, setting in {r.folder: r.setting for r in runs if r.setting}.items():
        card = {**params, **dict(setting)}
        write_run_card(folder / "run_card.json", params=card, seed=card.get("seed"),
                       device=card.get("device", "notebook default"))
    for folder in dict.fromkeys(r.folder for r in runs):
        remove_stale_runs(folder)

    runner = _run_parallel if args.jobs > 1 and len(runs) > 1 else _run_sequential
    # The kernels inherit this environment (restored afterwards): widgets render statically, figures
    # land in one place unless a grid run names its own folder.
    with kernel_environment({"SNNLAB_HEADLESS": "1", FIGURES_ENV: str(figures.resolve())}):
        outcomes = runner(runs, args)
    failures = [o.run.label for o in outcomes if o.status == "failed"]
    if grid or failures or any(o.record is not None for o in outcomes):
        table, summary, text = write_results_tables(out, outcomes, list(grid))
        averaged = f" over {SEED_AXIS}" if SEED_AXIS in grid else ""
        print(f"results: {table} (one row per run); mean and sd{averaged}: {summary}\n{text}", flush=True)
    if failures:
        print(f"snnlab run: failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    if grid:
        figures_where = f"{named_figures}/<setting>/" if named_figures is not None else f"{out}/<setting>/figures/"
        print(f"all {len(runs)} runs done; executed copies in {out}/<setting>/, figures in {figures_where}")
    else:
        print(f"all {len(notebooks)} notebook(s) ran; executed copies in {out}/, "
              f"figures in {figures.resolve()}/")
    return 0


def _run_sequential(runs: list[Run], args) -> list[Outcome]:
    outcomes, total = [Outcome(run) for run in runs], len(runs)
    for i, outcome in enumerate(outcomes, 1):
        run = outcome.run
        print(f"[{i}/{total}] {run.label} {run.parameters or ''}".rstrip(), flush=True)
        try:
            seconds, record = execute_run(run, progress=not args.no_progress)
        except RunError as exc:
            print(f"snnlab run: {exc}", file=sys.stderr, flush=True)
            outcome.status = "failed"
            if not args.keep_going:
                break
            continue
        outcomes[i - 1] = Outcome(run, "ok", seconds, record)
        print(f"[{i}/{total}] {run.label} done in {seconds:.1f} s -> {run.output}", flush=True)
    return outcomes


def _run_parallel(runs: list[Run], args) -> list[Outcome]:
    """Runs are independent, so each runs in its own process (papermill's event loop is not shared;
    each worker sets its own kernel environment); results are reported as they finish. Without
    --keep-going a failure cancels the runs not yet started."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    outcomes, total = [Outcome(run) for run in runs], len(runs)
    print(f"running {total} notebook runs, {args.jobs} at a time", flush=True)
    # each kernel gets its share of the cores: torch starts one thread per core, and N kernels each
    # spinning that many threads on small tensors run several times slower than with their share
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    share = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS") or str(max(1, cores // args.jobs))}
    with kernel_environment(share), ProcessPoolExecutor(max_workers=args.jobs, initializer=exit_with_parent) as pool:
        futures = {pool.submit(execute_run, run, progress=False): i for i, run in enumerate(runs)}
        for done, future in enumerate(as_completed(futures), 1):
            i = futures[future]
            run = runs[i]
            if future.cancelled():
                continue
            try:
                seconds, record = future.result()
            except RunError as exc:
                print(f"snnlab run: {exc}", file=sys.stderr, flush=True)
                outcomes[i].status = "failed"
                if not args.keep_going:
                    for other in futures:
                        other.cancel()
                continue
            except Exception as exc:  # a crashed worker: report it against its run
                print(f"snnlab run: {run.label}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                outcomes[i].status = "failed"
                continue
            outcomes[i] = Outcome(run, "ok", seconds, record)
            print(f"[{done}/{total}] {run.label} done in {seconds:.1f} s -> {run.output}", flush=True)
    return outcomes


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
