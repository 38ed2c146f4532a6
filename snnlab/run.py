"""``snnlab run``: execute notebooks headless with papermill, the kit's main job.

    snnlab run [NOTEBOOK ...] [-p NAME VALUE ...] [-f params.yaml] [--out DIR] [--figures DIR]
               [--device auto|cpu|cuda] [-j N] [--keep-going] [--list]

Without NOTEBOOK it runs every ``notebooks/NN_*.ipynb`` in numeric order. Executed copies go to
``--out`` (default ``build/notebooks/``), figures to ``--figures`` (default ``figures/``), and a run
card (versions, parameters, git commit) to ``<out>/run_card.json``. A parameter that no chosen
notebook declares is refused with the list of declared ones (papermill itself only warns); a
parameter is passed to each notebook that declares it.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from .utils import DEVICE_CHOICES, pick_device, write_run_card

KERNEL = "python3"  # custom kernelspec names fail with NoSuchKernel under papermill (DESIGN.md §3)
NOTEBOOK_PATTERN = re.compile(r"^(\d+)_.+\.ipynb$")


class RunError(Exception):
    """A user-facing error: bad arguments or a failed notebook. ``main`` prints it and exits 1/2."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


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
            candidate = default_notebook_dir() / name
            path = candidate if candidate.exists() else path
        if not path.is_file():
            raise RunError(f"notebook {name!r} not found")
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


def plan_parameters(notebooks: list[Path], params: dict[str, Any]) -> dict[Path, dict[str, Any]]:
    """Give each notebook the parameters it declares; refuse names no notebook declares."""
    declared = {nb: declared_parameters(nb) for nb in notebooks}
    for name in params:
        if not any(name in d for d in declared.values()):
            lines = [f"unknown parameter {name!r}."]
            for nb, d in declared.items():
                allowed = ", ".join(f"{k} (default {v['default']})" for k, v in d.items())
                lines.append(f"  {nb.name} declares: {allowed}")
            raise RunError("\n".join(lines))
    return {nb: {k: v for k, v in params.items() if k in declared[nb]} for nb in notebooks}


# --------------------------------------------------------------------------- execution
def execute(notebook: Path, output: Path, parameters: dict, *, progress: bool = True) -> float:
    """Run one notebook with papermill; return seconds. Raises RunError naming the failing cell."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(notebook), str(output), parameters=parameters, kernel_name=KERNEL,
            cwd=str(notebook.parent), progress_bar=progress, log_output=False,
        )
    except PapermillExecutionError as exc:
        source = (exc.source or "").strip().splitlines()
        first = source[0] if source else ""
        raise RunError(
            f"{notebook.name} failed in cell {exc.cell_index} (execution count {exc.exec_count}: "
            f"{first!r}):\n  {exc.ename}: {exc.evalue}\n  the executed copy with the traceback: {output}",
            code=1,
        ) from exc
    return time.perf_counter() - start


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snnlab run",
        description="Execute snnlab notebooks headless with papermill (all of them, in order, by default).",
    )
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="notebook paths or names in notebooks/")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="set a parameter (value parsed as YAML: 5, 5.0, true, text)")
    parser.add_argument("-f", "--parameters-file", metavar="YAML", help="parameters from a YAML mapping (-p wins)")
    parser.add_argument("--out", default="build/notebooks", help="folder for executed notebooks (default: %(default)s)")
    parser.add_argument("--figures", default=None, help="folder for figures (default: figures/ in the checkout)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default=None,
                        help="sets the `device` parameter of notebooks that declare one; cuda fails at once without CUDA")
    parser.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                        help="run up to N notebooks at once, each in its own process (default: 1)")
    parser.add_argument("--keep-going", action="store_true", help="run the remaining notebooks after a failure")
    parser.add_argument("--list", action="store_true", help="list notebooks with their parameters and expected CPU time")
    parser.add_argument("--no-progress", action="store_true", help="no per-cell progress bars")
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
    try:
        return _main(args)
    except RunError as exc:
        print(f"snnlab run: {exc}", file=sys.stderr)
        return exc.code


def _main(args) -> int:
    notebooks = resolve_notebooks(args.notebooks)
    if args.list:
        print(list_notebooks(notebooks))
        return 0
    params: dict[str, Any] = load_param_file(args.parameters_file) if args.parameters_file else {}
    params.update({name: parse_value(value) for name, value in args.parameter})
    if args.device is not None:
        params["device"] = args.device
    if "device" in params:
        try:
            pick_device(params["device"])  # fail now, not minutes later inside a notebook
        except (RuntimeError, ValueError) as exc:
            raise RunError(f"--device/-p device: {exc}") from exc
    plan = plan_parameters(notebooks, params)

    out = Path(args.out)
    figures = Path(args.figures) if args.figures else None
    # The kernels inherit this environment: figures land in one place, widgets render statically.
    os.environ["SNNLAB_HEADLESS"] = "1"
    if figures is not None:
        os.environ["SNNLAB_FIGURES"] = str(figures.resolve())
    elif "SNNLAB_FIGURES" not in os.environ:
        from .utils import figures_dir

        os.environ["SNNLAB_FIGURES"] = str(figures_dir().resolve())
    write_run_card(out / "run_card.json", params=params, seed=params.get("seed"),
                   device=params.get("device", "notebook default"))

    if args.jobs < 1:
        raise RunError(f"-j/--jobs must be >= 1, got {args.jobs}")
    runner = _run_parallel if args.jobs > 1 and len(notebooks) > 1 else _run_sequential
    failures = runner(notebooks, plan, out, args)
    if failures:
        print(f"snnlab run: failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    print(f"all {len(notebooks)} notebook(s) ran; executed copies in {out}/, "
          f"figures in {os.environ['SNNLAB_FIGURES']}/")
    return 0


def _run_sequential(notebooks, plan, out, args) -> list[str]:
    failures, total = [], len(notebooks)
    for i, nb in enumerate(notebooks, 1):
        print(f"[{i}/{total}] {nb.name} {plan[nb] or ''}".rstrip(), flush=True)
        try:
            seconds = execute(nb, out / nb.name, plan[nb], progress=not args.no_progress)
        except RunError as exc:
            print(f"snnlab run: {exc}", file=sys.stderr, flush=True)
            failures.append(nb.name)
            if not args.keep_going:
                break
            continue
        print(f"[{i}/{total}] {nb.name} done in {seconds:.1f} s -> {out / nb.name}", flush=True)
    return failures


def _execute_quietly(nb: Path, output: Path, parameters: dict) -> float:
    return execute(nb, output, parameters, progress=False)


def _run_parallel(notebooks, plan, out, args) -> list[str]:
    """Notebooks are independent, so each runs in its own process (papermill's event loop is not
    shared); results are reported as they finish. Without --keep-going a failure cancels the rest."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    failures, total = [], len(notebooks)
    print(f"running {total} notebooks, {args.jobs} at a time", flush=True)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(_execute_quietly, nb, out / nb.name, plan[nb]): nb for nb in notebooks}
        for done, future in enumerate(as_completed(futures), 1):
            nb = futures[future]
            try:
                seconds = future.result()
            except RunError as exc:
                print(f"snnlab run: {exc}", file=sys.stderr, flush=True)
                failures.append(nb.name)
                if not args.keep_going:
                    for other in futures:
                        other.cancel()
                continue
            except Exception as exc:  # a crashed worker: report it against its notebook
                print(f"snnlab run: {nb.name}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                failures.append(nb.name)
                continue
            print(f"[{done}/{total}] {nb.name} done in {seconds:.1f} s -> {out / nb.name}", flush=True)
    return failures


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
