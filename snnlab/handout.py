"""``snnlab handout``: student and instructor handouts of the notebooks, as HTML and PDF.

    snnlab handout [NOTEBOOK ...] [--to html pdf ipynb | all] [--version student instructor | all]
                   [--out DIR] [-p NAME VALUE ...] [-f params.yaml] [--quick] [--executed DIR]
                   [--paper A4|Letter] [--print-check fail|warn|off]

Without NOTEBOOK it takes every ``notebooks/NN_*.ipynb``. Each notebook is executed once, headless,
with ``snnlab.execution.execute`` (papermill), or taken from ``--executed DIR`` (``snnlab run --out DIR``'s
copies, whose code must be the notebook's; cell tags and markdown come from the notebook), and exported to ``--out`` (default ``build/handouts/``) as
``<name>.<version>.<format>``:

* **instructor**: the notebook as it is, solutions included; every ``check`` cell must pass.
* **student**: made from the *source* notebook. The code between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` in each ``solution`` cell becomes nbgrader's stub (``# YOUR CODE HERE`` and
  ``raise NotImplementedError()``) at the markers' indentation, so nbgrader's own release gives the
  same code; the exercise prompt (the markdown) stays; markdown cells tagged ``instructor`` are
  dropped. Its outputs come from the same run (:func:`student_from_executed`): a cell an unfinished
  exercise would stop shows a boxed note instead of a traceback. Running the student notebook itself
  (:func:`execute_version`) raises in exactly those cells, which the test suite checks.

HTML is one self-contained file: images are embedded, the equations are rendered to inline SVG by
matplotlib's mathtext (no MathJax; an equation mathtext cannot parse stays as TeX source), plotly
figures carry plotly.js inline (``snnlab.plots.show_plotly``), and no script, style sheet or font is
fetched from the network. Code cells tagged as in Jupyter Book / MyST are hidden: ``remove-cell``,
``remove-input``, ``remove-output``, ``hide-input`` (folded under "Show code"; not printed). PDF is
that HTML printed by headless Chromium (Debian: ``apt-get install chromium``) on A4 (``--paper``), and
each PDF is checked by :func:`print_problems` (poppler-utils), one line per problem. ``ipynb`` writes the version's notebook without outputs: the exercise file students
work in.
"""
from __future__ import annotations

import argparse
import ast
import base64
import copy
import functools
import html as html_lib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import execution, run
from .errors import command_boundary
from .utils import atomic_write_bytes

FORMATS = ("html", "pdf", "ipynb")
VERSIONS = ("student", "instructor")
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
# nbgrader's default ClearSolutions.code_stub for Python: with the same stub, `snnlab handout
# --version student` and an instructor's own `nbgrader generate_assignment` give the same code cells.
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
SOLUTION, CHECK, INSTRUCTOR = "solution", "check", "instructor"
RAISES = "raises-exception"  # nbclient and JupyterLab continue a run past cells with this tag
PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"
# Cells of an executed copy that the source notebook does not have.
RUN_ONLY_TAGS = frozenset({"injected-parameters", PAPERMILL_ERROR_TAG})
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_HINT = (
    "PDF handouts are printed by headless Chromium, which was not found. Install it with "
    "`sudo apt-get install chromium` (Debian/Ubuntu), or point SNNLAB_CHROMIUM at a Chrome/Chromium "
    "binary. HTML handouts (--to html) need no browser."
)
PDF_TIMEOUT_S = 180


class HandoutError(run.RunError):
    """A user-facing handout failure (bad notebook, unexpected error, missing browser)."""


# --------------------------------------------------------------------------- the student version
def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _enclosing_function(lines: list[str], index: int, indent: str) -> str | None:
    """Name of the ``def`` that the marker on ``lines[index]`` sits in, if any."""
    for line in reversed(lines[:index]):
        match = re.match(r"^(\s*)(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(", line)
        if match and len(match.group(1)) < len(indent):
            return match.group(2)
    return None


def stub_source(source: str) -> str:
    """Replace every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` block by a raising stub.

    The stub is nbgrader's (:data:`CODE_STUB`) at the indentation of the BEGIN
    marker, naming the function to complete when the block sits inside one. Raises ``ValueError``
    for a cell without a block, an unclosed, nested or empty block, or an END without a BEGIN.
    """
    lines = source.splitlines()
    out: list[str] = []
    begin: int | None = None
    blocks = 0
    for n, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if begin is not None:
                raise ValueError(f"line {n + 1}: {BEGIN!r} inside another solution block")
            begin, indent = n, _indent(line)
            out.extend(indent + stub for stub in CODE_STUB)
        elif stripped.startswith(END):
            if begin is None:
                raise ValueError(f"line {n + 1}: {END!r} without a {BEGIN!r} before it")
            if not any(l.strip() for l in lines[begin + 1 : n]):
                raise ValueError(f"line {begin + 1}: the solution block is empty")
            begin, blocks = None, blocks + 1
        elif begin is None:
            out.append(line)
    if begin is not None:
        raise ValueError(f"line {begin + 1}: {BEGIN!r} is never closed by {END!r}")
    if blocks == 0:
        raise ValueError(f"no {BEGIN!r} ... {END!r} block")
    return "\n".join(out) + ("\n" if source.endswith("\n") else "")


def solution_lines(source: str) -> list[str]:
    """The non-blank lines between the solution markers (what the student version must not show)."""
    lines, inside = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            inside = True
        elif stripped.startswith(END):
            inside = False
        elif inside and stripped:
            lines.append(line)
    return lines


def module_level_names(source: str) -> set[str]:
    """Names a cell binds at module level (assignments, defs, imports, loop and ``with`` targets)."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        tree = ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return set()
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            return  # a new scope: its inner names are not module level
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def exercise_problems(nb) -> list[str]:
    """What breaks the exercise conventions of ``nb`` (an empty list when it follows them).

    Every ``solution`` code cell holds well-formed marker blocks and is followed, before the next
    solution cell, by a ``check`` code cell; markers appear only in solution cells; ``instructor``
    tags sit only on markdown cells. Cell numbers are 0-based indices into ``nb.cells``.
    """
    problems: list[str] = []
    pending: int | None = None  # the last solution cell still waiting for its check
    seen_solution = False
    for i, cell in enumerate(nb.cells):
        tags = _tags(cell)
        if cell.cell_type != "code":
            for tag in tags & {SOLUTION, CHECK}:
                problems.append(f"cell {i}: a {cell.cell_type} cell is tagged {tag!r} (only code cells may be)")
            continue
        if INSTRUCTOR in tags:
            problems.append(f"cell {i}: a code cell is tagged 'instructor' (only markdown notes may be dropped)")
        has_markers = BEGIN in cell.source or END in cell.source
        if SOLUTION in tags:
            if CHECK in tags:
                problems.append(f"cell {i}: tagged both 'solution' and 'check'; the check must be its own cell")
            if pending is not None:
                problems.append(f"cell {pending}: solution cell has no 'check' cell before the next solution (cell {i})")
            try:
                stub_source(cell.source)
            except ValueError as exc:
                problems.append(f"cell {i}: {exc}")
            pending, seen_solution = i, True
        elif has_markers:
            problems.append(f"cell {i}: has solution markers but is not tagged 'solution' (its solution would leak)")
        if CHECK in tags and SOLUTION not in tags:
            if not seen_solution:
                problems.append(f"cell {i}: a 'check' cell before any 'solution' cell")
            pending = None
    if pending is not None:
        problems.append(f"cell {pending}: solution cell is not followed by a 'check' cell")
    return problems


def student_notebook(nb):
    """The student version of ``nb`` (a new notebook; ``nb`` is left unchanged).

    Solutions become stubs (:func:`stub_source`), solution and check cells get the
    ``raises-exception`` tag, instructor-only markdown is dropped and outputs are cleared. Raises
    ``ValueError`` listing every problem when ``nb`` breaks the exercise conventions.
    """
    problems = exercise_problems(nb)
    if problems:
        raise ValueError("the exercise cells break the conventions:\n  " + "\n  ".join(problems))
    student = copy.deepcopy(nb)
    cells = []
    for cell in student.cells:
        tags = _tags(cell)
        if cell.cell_type == "markdown" and INSTRUCTOR in tags:
            continue
        if cell.cell_type == "code":
            if SOLUTION in tags:
                cell.source = stub_source(cell.source)
            if tags & {SOLUTION, CHECK} and RAISES not in tags:
                cell.metadata["tags"] = [*cell.metadata.get("tags", []), RAISES]
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    student.cells = cells
    return student


def _parse_cell(source: str) -> ast.Module | None:
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return None


def _reads(node: ast.AST) -> set[str]:
    """The names ``node`` reads from the notebook's namespace: names local to a function, lambda or
    comprehension inside it do not count, nor, in a ``for`` or ``with`` block, names the block binds
    itself (its loop target, ``as`` names, assignments in its body) before its body reads them."""
    if isinstance(node, (ast.For, ast.AsyncFor)):
        own = _binds(node)
        return _reads(node.iter) | (set().union(*(_reads(n) for n in node.body + node.orelse)) - own)
    if isinstance(node, (ast.With, ast.AsyncWith)):
        own = _binds(node)
        heads = set().union(*(_reads(item.context_expr) for item in node.items))
        return heads | (set().union(*(_reads(n) for n in node.body)) - own)
    local: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            local |= {a.arg for a in ast.walk(sub.args) if isinstance(a, ast.arg)}
            local |= {n.id for n in ast.walk(sub) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        elif isinstance(sub, ast.comprehension):
            local |= {n.id for n in ast.walk(sub.target) if isinstance(n, ast.Name)}
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - local


def _binds(node: ast.AST) -> set[str]:
    return module_level_names(ast.unparse(node))


def _is_stub(node: ast.AST) -> bool:
    """``node`` holds the ``raise NotImplementedError()`` of :data:`CODE_STUB`."""
    for sub in ast.walk(node):
        exc = sub.exc if isinstance(sub, ast.Raise) else None
        if isinstance(exc, ast.Call) and not exc.args and getattr(exc.func, "id", None) == "NotImplementedError":
            return True
    return False


_EXERCISE_HEADING = re.compile(r"^#+\s*Coding Exercise\s+(\d+)", re.M)


def exercise_dependencies(nb) -> dict[int, tuple[int, ...]]:
    """The code cells of ``nb``'s student version that unfinished exercises stop: index -> exercises.

    Every solution cell is listed with its exercise (numbered by the ``Coding Exercise N`` heading
    above it, else in order), every check cell with the exercise it checks, and every other cell
    that would raise in the student version with the exercises it needs. The student version is
    followed statement by statement: a stub at module level stops its cell and leaves what the
    solution binds undefined; a function whose body is a stub raises when called; a statement that
    reads such a name raises, and what the rest of its cell binds is undefined too; a check cell
    stops at its first call of ``snnlab.exercises`` at the latest; a statement that rebinds a name
    without needing an exercise makes it usable again. Only top-level statements count (an ``if``
    that calls an unfinished function is taken to raise).
    tests/test_exercises.py checks this against running the student version of every notebook.
    """
    tainted: dict[str, frozenset[int]] = {}
    out: dict[int, tuple[int, ...]] = {}
    number, ordinal, current = None, 0, None
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            match = _EXERCISE_HEADING.search(cell.source)
            number = int(match.group(1)) if match else number
            continue
        if cell.cell_type != "code":
            continue
        tags = _tags(cell)
        exercise = None
        if SOLUTION in tags:
            ordinal += 1
            exercise = current = number if number is not None else ordinal
            number = None  # a heading numbers one solution cell
        tree = _parse_cell(stub_source(cell.source) if exercise is not None else cell.source)
        if tree is None:
            continue
        own = frozenset({exercise if exercise is not None else current} if tags & {SOLUTION, CHECK} else ())
        if exercise is not None:  # what the solution binds is undefined, unless a statement that runs binds it
            tainted.update(dict.fromkeys(module_level_names(cell.source), own))
        stopped: frozenset[int] | None = None
        needs: set[int] = set(own)
        for stmt in tree.body:
            bound = _binds(stmt)
            reads = frozenset().union(*(tainted[n] for n in _reads(stmt) if n in tainted))
            needs |= reads
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and stopped is None:
                stub = own if exercise is not None and _is_stub(stmt) else frozenset()
                if reads | stub:
                    tainted[stmt.name] = reads | stub
                else:
                    tainted.pop(stmt.name, None)
                continue
            # a check of an unfinished exercise fails at its first call of snnlab.exercises at the latest
            checks = CHECK in tags and "exercises" in _reads(stmt)
            if stopped is None and (reads or checks or (exercise is not None and _is_stub(stmt))):
                stopped = reads | own
            if stopped is not None:
                tainted.update(dict.fromkeys(bound, stopped | own))
            else:
                for name in bound:
                    tainted.pop(name, None)
        if exercise is not None or stopped is not None:
            out[i] = tuple(sorted(needs))
    return out


NOTE_CLASS = "snnlab-exercise-note"
WRITE_LINE_EM = 1.9  # the ruled lines of the writing space: handwriting needs about 7 mm
MAX_WRITE_LINES = 10  # a longer solution still gets no more than a third of a page


def _note_output(html_text: str, plain: str, *, lines: int = 0):
    """A boxed note; with ``lines``, ruled space below it to write that many lines by hand.

    The ruling is a CSS background (``.snnlab-write-space``, printed: the template asks for exact
    colours); its height is fixed inline so that it stays right without the template's CSS too.
    """
    import nbformat

    space = (f'<div class="snnlab-write-space" style="height:{WRITE_LINE_EM * lines:.1f}em"></div>'
             if lines else "")
    return nbformat.v4.new_output("display_data", data={
        "text/html": f'<div class="{NOTE_CLASS}"><div class="snnlab-note-text">{html_text}</div>{space}</div>',
        "text/plain": plain})


def _exercise_task(source: str) -> str:
    """What the student writes: ``complete f()`` for a block inside a function, else the cell's code."""
    lines = source.splitlines()
    begin = next(n for n, line in enumerate(lines) if line.strip().startswith(BEGIN))
    function = _enclosing_function(lines, begin, _indent(lines[begin]))
    return f"complete <code>{function}()</code> in the cell above" if function else \
        "write the missing code in the cell above"


def run_code_cells(executed) -> list:
    """The code cells of an executed copy that its notebook has too: without the cells a papermill
    run adds (:data:`RUN_ONLY_TAGS`: the injected parameters, the error banner)."""
    return [c for c in executed.cells if c.cell_type == "code" and not (_tags(c) & RUN_ONLY_TAGS)]


def _matching_run_code(source, executed) -> list:
    """:func:`run_code_cells` of ``executed``; ``ValueError`` unless their code is ``source``'s."""
    ran = run_code_cells(executed)
    if [c.source for c in source.cells if c.cell_type == "code"] != [c.source for c in ran]:
        raise ValueError("the executed copy's code cells differ from the notebook's: run it again")
    return ran


def _insert_injected(nb, executed) -> None:
    """Put the parameters cell papermill injected into ``executed`` after ``nb``'s parameters cell
    (where papermill put it): the outputs come from that run, so the page shows its parameters."""
    injected = [c for c in executed.cells if "injected-parameters" in _tags(c)]
    if injected:
        at = next((k + 1 for k, c in enumerate(nb.cells) if "parameters" in _tags(c)), 0)
        nb.cells.insert(at, copy.deepcopy(injected[0]))


def student_from_executed(source, executed):
    """The executed student version of a notebook, made from its executed instructor copy.

    ``source`` is the notebook as written, ``executed`` the same notebook run as it is (``snnlab run``
    or the instructor handout). The result is :func:`student_notebook` of ``source`` whose code cells
    carry the outputs of ``executed``, except where an unfinished exercise would stop the cell
    (:func:`exercise_dependencies`): a solution cell shows a boxed note naming what to write, with
    room for it, and every cell that needs that exercise shows a one-line note instead of its output
    (running the student version shows a traceback there). Nothing is executed again.
    """
    import nbformat

    run_code = _matching_run_code(source, executed)
    deps = exercise_dependencies(source)
    code_index = {i: k for k, i in enumerate(i for i, c in enumerate(source.cells) if c.cell_type == "code")}
    student = student_notebook(source)
    kept = [i for i, c in enumerate(source.cells) if not (c.cell_type == "markdown" and INSTRUCTOR in _tags(c))]
    for i, cell in zip(kept, student.cells):
        if cell.cell_type != "code":
            continue
        ran = run_code[code_index[i]]
        if i not in deps:
            cell.outputs, cell.execution_count = copy.deepcopy(ran.outputs), ran.execution_count
            continue
        needed = deps[i]
        if SOLUTION in _tags(source.cells[i]):
            lines = min(len(solution_lines(source.cells[i].source)), MAX_WRITE_LINES)
            own = max(needed)  # a solution cell's own exercise is its latest
            cell.outputs = [_note_output(f"<b>Exercise {own}</b>: {_exercise_task(source.cells[i].source)}.",
                                         f"Exercise {own}: not done yet", lines=lines)]
        else:
            names = " and ".join(str(n) for n in needed)
            text = f"Runs once Exercise{'s' if len(needed) > 1 else ''} {names} {'are' if len(needed) > 1 else 'is'} done."
            cell.outputs = [_note_output(text, text)]
        cell.execution_count = None
    _insert_injected(student, executed)
    return student


def version_notebook(source, executed, version: str):
    """The executed notebook a ``version`` handout shows, from one instructor run ``executed``.

    Both versions are built from ``source`` (its markdown, its cell tags such as ``remove-input`` or
    ``hide-input``) with the outputs of ``executed``, whose code must equal ``source``'s: an executed
    copy made before a tag or a markdown cell changed prints as the notebook is now.
    """
    if version == "student":
        return student_from_executed(source, executed)
    run_code = _matching_run_code(source, executed)
    nb = copy.deepcopy(source)
    for cell, ran in zip((c for c in nb.cells if c.cell_type == "code"), run_code):
        cell.outputs, cell.execution_count = copy.deepcopy(ran.outputs), ran.execution_count
    _insert_injected(nb, executed)
    return nb


def clean_notebook(nb):
    """A copy of ``nb`` without outputs (the instructor's ``ipynb``)."""
    clean = copy.deepcopy(nb)
    for cell in clean.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return clean


# --------------------------------------------------------------------------- execution
def _stage_student(source: Path, staged: Path) -> tuple[set[str], str]:
    """Write the student notebook to execute; return the ids of the cells that may fail and the line added.

    The first code cell gets a first line that moves the kernel into the source notebook's folder
    (relative data paths keep working from the temporary copy; the line is removed again after the
    run). Every code cell from the first solution on is tagged ``raises-exception`` so that cells
    using an unfinished exercise do not stop the run; :func:`_check_student_errors` judges the
    errors afterwards against :func:`exercise_dependencies`.
    """
    import nbformat

    nb = nbformat.read(source, as_version=4)
    try:
        student = student_notebook(nb)
    except ValueError as exc:
        raise HandoutError(f"{source.name}: {exc}") from exc
    may_fail = {nb.cells[i].get("id") for i in exercise_dependencies(nb)}
    after_first = False
    for cell in student.cells:
        if cell.cell_type != "code":
            continue
        after_first = after_first or SOLUTION in _tags(cell)
        if after_first and RAISES not in _tags(cell):
            cell.metadata["tags"] = [*cell.metadata.get("tags", []), RAISES]
    setup = f"__import__('os').chdir({str(source.parent.resolve())!r})\n"
    first = next(c for c in student.cells if c.cell_type == "code")
    first.source = setup + first.source
    staged.write_text(nbformat.writes(student), encoding="utf-8")
    return may_fail, setup


def _check_student_errors(nb, may_fail: set[str], notebook_name: str) -> None:
    """Accept errors only in the cells an unfinished exercise stops; every code cell must have run."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("execution_count") is None and cell.source.strip():
            problems.append(f"cell {i} did not run")
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and cell.get("id") not in may_fail:
                problems.append(f"cell {i}: {output.get('ename')}: {output.get('evalue')}")
    if problems:
        raise HandoutError(f"{notebook_name} (student version) failed for a reason other than an "
                           f"unfinished exercise:\n  " + "\n  ".join(problems), code=1)


def execute_version(source: Path, version: str, workdir: Path, parameters: dict[str, Any],
                    *, progress: bool = False):
    """Execute the ``version`` of ``source`` in ``workdir`` and return the executed notebook.

    Uses :func:`snnlab.execution.execute` (papermill, kernel ``python3``). The instructor version must run
    without any error; the student version may fail only in the cells :func:`exercise_dependencies`
    lists (the cells whose outputs :func:`student_from_executed` replaces by a note).
    """
    import nbformat

    output = workdir / f"{source.stem}.{version}.executed.ipynb"
    if version == "instructor":
        try:
            execution.execute(source, output, parameters, progress=progress)
        except run.RunError as exc:
            raise HandoutError(f"(instructor version) {exc}", code=1) from exc
        return nbformat.read(output, as_version=4)
    staged = workdir / f"{source.stem}.student.ipynb"
    may_fail, setup = _stage_student(source, staged)
    try:
        execution.execute(staged, output, parameters, progress=progress)
    except run.RunError:
        if not output.is_file():
            raise
        # papermill reports any error output, even in raises-exception cells: judge them here.
    nb = nbformat.read(output, as_version=4)
    nb.cells = [c for c in nb.cells if PAPERMILL_ERROR_TAG not in _tags(c)]
    first = next(c for c in nb.cells if c.cell_type == "code")
    if not first.source.startswith(setup):
        raise HandoutError(f"{source.name}: the executed student copy lost its first line", code=1)
    first.source = first.source[len(setup):]
    _check_student_errors(nb, may_fail, source.name)
    return nb


# --------------------------------------------------------------------------- equations
# TeX that mathtext lacks but that only changes sizes or spelling: drop or rename it.
_TEX_REWRITES = (
    (re.compile(r"\\(?:big|Big|bigg|Bigg)[lrm]?(?![A-Za-z])"), ""),
    (re.compile(r"\\(?:displaystyle|textstyle|scriptstyle)(?![A-Za-z])"), ""),
    (re.compile(r"\\[td]frac(?![A-Za-z])"), r"\\frac"),
    (re.compile(r"\\\|"), r"\\Vert "),
    (re.compile(r"\\[lr]Vert(?![A-Za-z])"), r"\\Vert"),
    (re.compile(r"\\(ge|le)(?![A-Za-z])"), r"\\\1q"),
    (re.compile(r"\\!"), ""),
    (re.compile(r"\\(mathcal|mathbb|mathrm|mathbf|mathit|mathsf|mathtt)\s+([A-Za-z0-9])"), r"\\\1{\2}"),  # \mathcal L
    (re.compile(r"\\pmod\s*(?:\{([^{}]*)\}|(\\?[0-9A-Za-z]+))"), r"\\quad(\\mathrm{mod}\\ \1\2)"),  # mathtext has no \pmod
    (re.compile(r"\\sqrt\s*([0-9A-Za-z])"), r"\\sqrt{\1}"),  # \sqrt6
    # \frac1N, \frac2\pi, \frac\pi2: mathtext wants braces around one-token arguments
    (re.compile(r"\\frac\s*(\\[A-Za-z]+|[0-9A-Za-z])\s*(\\[A-Za-z]+|[0-9A-Za-z])"), r"\\frac{\1}{\2}"),
)
_FENCE = re.compile(r"(^|\n)([ \t]*)(```+|~~~+)[^\n]*\n.*?(\n[ \t]*\3[ \t]*(?=\n|$)|$)", re.S)
_CODE_SPAN = re.compile(r"(`+)(?:.+?)\1", re.S)
_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
# inline math may run over a line end (markdown wraps it), not over a blank line
_INLINE_MATH = re.compile(r"(?<![\\$])\$(?![\s$])((?:[^$\n]|\n(?![ \t]*\n))+?)(?<![\s\\])\$(?!\d)")


def _display_fractions(tex: str) -> str:
    """``\\frac`` outside every ``{...}`` group becomes ``\\dfrac``: TeX sets a display equation's own
    fractions at full size, mathtext sets every ``\\frac`` at text size (about 70 %). Fractions in
    exponents, subscripts and other groups keep the smaller size, as in TeX."""
    out, depth, k = [], 0, 0
    while k < len(tex):
        if tex.startswith("\\frac", k) and not tex[k + 5:k + 6].isalpha():
            out.append("\\dfrac" if depth == 0 else "\\frac")
            k += 5
            continue
        if tex[k] == "\\" and k + 1 < len(tex):  # an escaped brace or a command: copy it whole
            out.append(tex[k:k + 2])
            k += 2
            continue
        depth += {"{": 1, "}": -1}.get(tex[k], 0)
        out.append(tex[k])
        k += 1
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def math_svg(tex: str, display: bool = False) -> str | None:
    """An ``<img>`` tag holding ``tex`` rendered by matplotlib's mathtext as SVG, or ``None``.

    ``None`` means mathtext cannot parse it (environments such as ``cases``); the caller keeps the
    TeX source then. Glyphs are drawn as paths, so the SVG needs no font.
    """
    import io

    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser

    text = " ".join(tex.split())
    for pattern, replacement in _TEX_REWRITES:
        text = pattern.sub(replacement, text)
    if display:
        text = _display_fractions(text)
    # One size for inline and display equations: the body's, enlarged by the ratio of x-heights
    # (Computer Modern's is about 0.43 em, the sans serif body's about 0.53 em) so letters match.
    prop = FontProperties(size=BODY_PT * MATH_SCALE, math_fontfamily="cm")
    try:
        width, height, depth, _, _ = MathTextParser("path").parse(f"${text}$", dpi=72, prop=prop)
        buffer = io.BytesIO()
        with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "snnlab"}):
            fig = Figure(figsize=(width / 72.0, height / 72.0))
            fig.text(0, depth / height, f"${text}$", fontproperties=prop)
            fig.savefig(buffer, format="svg", transparent=True, metadata={"Date": None})
    except (ValueError, ZeroDivisionError, RuntimeError):
        return None
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    alt = html_lib.escape(tex.strip(), quote=True)
    style = (f"display:block;margin:0.6em auto;height:{height:.2f}pt" if display
             else f"display:inline;height:{height:.2f}pt;vertical-align:{-depth:.2f}pt")
    return f'<img class="snnlab-math" alt="{alt}" style="{style}" src="data:image/svg+xml;base64,{data}">'


def _render_math_text(text: str) -> str:
    text = _DISPLAY_MATH.sub(lambda m: math_svg(m.group(1), True) or m.group(0), text)
    return _INLINE_MATH.sub(lambda m: math_svg(m.group(1), False) or m.group(0), text)


def render_math(markdown: str) -> str:
    """Replace ``$...$`` and ``$$...$$`` in markdown by inline SVG images, outside code."""
    out, position = [], 0
    fences = [m.span() for m in _FENCE.finditer(markdown)]
    for start, end in [*fences, (len(markdown), len(markdown))]:
        chunk, cursor = markdown[position:start], 0
        for code in _CODE_SPAN.finditer(chunk):  # `$x$` in a code span stays code
            out.append(_render_math_text(chunk[cursor:code.start()]))
            out.append(code.group(0))
            cursor = code.end()
        out.append(_render_math_text(chunk[cursor:]))
        out.append(markdown[start:end])
        position = end
    return "".join(out)


# --------------------------------------------------------------------------- export
# Jupyter Book / MyST cell tags, honoured as myst-nb honours them on the course website.
REMOVE_CELL, REMOVE_INPUT, REMOVE_OUTPUT, HIDE_INPUT = "remove-cell", "remove-input", "remove-output", "hide-input"
HIDE_TAGS = (REMOVE_CELL, REMOVE_INPUT, REMOVE_OUTPUT, HIDE_INPUT)
PAPER_SIZES = ("A4", "Letter")
# Body text of the printed page; equations are sized from it (math_svg).
BODY_PT = 10.5
MATH_SCALE = 1.2


def apply_hide_tags(nb):
    """A copy of ``nb`` with the MyST hide tags applied to its code cells.

    ``remove-cell``: the cell is gone; ``remove-input``: its source is gone, its outputs stay;
    ``remove-output``: its outputs are gone; ``hide-input``: the template folds the source into a
    ``<details>`` ("Show code") that is not printed. Markdown cells may carry ``remove-cell`` too.
    """
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells:
        tags = _tags(cell)
        if REMOVE_CELL in tags:
            continue
        if cell.cell_type == "code":
            if REMOVE_OUTPUT in tags:
                cell.outputs = []
            if REMOVE_INPUT in tags:  # nbconvert's templates skip a source marked so
                cell.metadata.setdefault("transient", {})["remove_source"] = True
        cells.append(cell)
    nb.cells = cells
    return nb


_TEMPLATE = r"""{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block input_group -%}
{%- if 'hide-input' in cell.metadata.get('tags', []) -%}
<details class="snnlab-hide-input"><summary>Show code</summary>
{{ super() }}
</details>
{%- else -%}
{{ super() }}
{%- endif -%}
{%- endblock input_group %}
{% block extra_css %}
<style type="text/css">
  img.snnlab-math { max-width: none; }
  .snnlab-handout-banner { border-left: 4px solid #888; padding: 0.3em 0.8em; color: #444; }
  details.snnlab-hide-input > summary { cursor: pointer; color: #555; font-size: 0.9em; margin: 0.2em 0 0.2em 64px; }
  .snnlab-exercise-note { border: 1.5px solid #444; border-radius: 4px; padding: 0.45em 0.8em 0.6em;
                          margin: 0.3em 0; background: #fff; color: #111; }
  .snnlab-write-space { margin-top: 0.3em; -webkit-print-color-adjust: exact; print-color-adjust: exact;
                        background-image: repeating-linear-gradient(to bottom, transparent 0,
                          transparent calc(@@LINE@@em - 1px), #9a9a9a calc(@@LINE@@em - 1px), #9a9a9a @@LINE@@em); }
  /* code lines wrap with a hanging indent: each line is a block whose continuation lines start
     under the line's own indentation plus four columns (see _wrap_code_lines) */
  .highlight pre { white-space: pre-wrap; }
  /* lines wrap at spaces; a word or number is split only where it does not fit on a line by itself
     (JupyterLab's outputs use word-break: break-all, which printed 'inpu|t' and '1e-|12'). 'anywhere',
     not 'break-word': with break-word a deeply indented continuation line widened the page and
     Chromium shrank every page of 06 and 07 to 80 % */
  .jp-OutputArea-output pre, .highlight pre { word-break: normal !important; overflow-wrap: anywhere !important; }
  .snnlab-line { display: block; padding-left: calc(var(--snnlab-indent, 0ch) + 4ch);
                 text-indent: calc(-1 * (var(--snnlab-indent, 0ch) + 4ch)); }
  @page { size: @@PAPER@@; margin: 13mm 12mm 14mm 12mm; }
  @media print {
    body, .jp-RenderedHTMLCommon { font-size: @@BODY@@pt; }
    /* the prompts take a sixth of the width a printed figure needs */
    .jp-InputPrompt, .jp-OutputPrompt { display: none !important; }
    .jp-Cell, .jp-Notebook { padding-left: 0 !important; padding-right: 0 !important; }
    .jp-Notebook { padding-top: 0 !important; }
    details.snnlab-hide-input { display: none; }
    /* big things may break across pages; figures are scaled to fit a page so they never
       push more than half a page of empty space ahead of them */
    /* JupyterLab's own print rule keeps each output whole (.jp-OutputArea-child: avoid-page), which
       sends a long printout or a whole study report to the next page */
    .jp-Cell, .jp-OutputArea-child, .jp-OutputArea-output, .jp-InputArea, pre, table { break-inside: auto !important; }
    /* JupyterLab lays cells out as CSS tables that hide or scroll their overflow; Chromium does not
       split such boxes across pages, so a long output or listing moved whole to the next page */
    .jp-InputArea, .jp-OutputArea, .jp-OutputArea-child, .jp-OutputArea-output, .jp-Cell-inputWrapper,
    .jp-Cell-outputWrapper { display: block !important; overflow: visible !important; width: auto !important; }
    .jp-OutputArea-output img, .jp-RenderedHTMLCommon img:not(.snnlab-math) {
      max-width: 100% !important; max-height: @@FIGMAX@@mm; width: auto; height: auto; object-fit: contain; }
    img, svg, .snnlab-exercise-note, tr, .snnlab-line { break-inside: avoid; }
    h1, h2, h3, h4 { break-after: avoid; break-inside: avoid; }
    /* a lead-in line ("Instructor notes (...)", "Answer 1.") stays with the list it introduces */
    .jp-RenderedHTMLCommon p:has(+ ul), .jp-RenderedHTMLCommon p:has(+ ol) { break-after: avoid; }
    /* a wide table wraps its cells instead of running off the paper */
    .jp-RenderedHTMLCommon table { table-layout: auto; width: auto; max-width: 100%; }
    /* cells break between words and after _ or / (see _break_table_names), never inside a word or number:
       'anywhere' let narrow columns print 'con|diti|on' and '0.|3|6' */
    .jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { overflow-wrap: break-word; padding: 0.2em 0.4em; }
    .jp-MarkdownOutput p, .jp-RenderedMarkdown p, li { orphans: 2; widows: 2; }
  }
</style>
{% endblock extra_css %}
"""
FIGURE_MAX_MM = 118  # under half the printable height of A4 (270 mm) and of Letter (252 mm)
# The printable box (CSS px at 96 per inch) of each paper with the @page margins above.
PRINT_BOX_PX = {"A4": ((210 - 24) / 25.4 * 96, (297 - 27) / 25.4 * 96),
                "Letter": ((215.9 - 24) / 25.4 * 96, (279.4 - 27) / 25.4 * 96)}
# The notebooks draw at 100 dpi with legends of 8 pt or more: printed at scale s a legend is
# 8 * 100/96 * s pt, so s >= 0.72 keeps it at 6 pt or more.
MIN_FIGURE_SCALE = 0.72
_PNG_IMG = re.compile(r'<img\b([^>]*?)src="data:image/png;base64,([A-Za-z0-9+/=]{40})')


def figure_print_scale(width_px: int, height_px: int, paper: str = "A4") -> float:
    """The scale a ``width_px`` x ``height_px`` figure prints at on ``paper``.

    At most its natural size and the page width; at most half the page height too, so that a figure
    pushed to the next page never leaves more than half a page blank, unless that would shrink it
    below :data:`MIN_FIGURE_SCALE` (legends under 6 pt): then it may take up to the full height.
    """
    box_w, box_h = PRINT_BOX_PX[paper]
    scale = min(1.0, box_w / width_px, FIGURE_MAX_MM / 25.4 * 96 / height_px)
    if scale < MIN_FIGURE_SCALE:
        scale = min(MIN_FIGURE_SCALE, box_w / width_px, 0.95 * box_h / height_px)
    return scale


def _size_figures(html: str, paper: str) -> str:
    """Give every PNG output a print width from :func:`figure_print_scale` (a print-only rule)."""
    rules = []

    def one(match: re.Match) -> str:
        head = base64.b64decode(match.group(2))
        if head[12:16] != b"IHDR":
            return match.group(0)
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        n = len(rules)
        rules.append(f"#snnlab-fig-{n} {{ width: {width * figure_print_scale(width, height, paper):.0f}px !important; "
                     f"max-height: none !important; }}")
        return f'<img id="snnlab-fig-{n}"{match.group(1)}src="data:image/png;base64,{match.group(2)}'

    html = _PNG_IMG.sub(one, html)
    if rules:
        style = '<style type="text/css">@media print {\n' + "\n".join(rules) + "\n}</style>\n"
        html = html.replace("</head>", style + "</head>", 1)
    return html


def _template(paper: str) -> str:
    return (_TEMPLATE.replace("@@PAPER@@", paper).replace("@@BODY@@", f"{BODY_PT:g}")
            .replace("@@FIGMAX@@", str(FIGURE_MAX_MM)).replace("@@LINE@@", f"{WRITE_LINE_EM:g}"))


_HIGHLIGHT_PRE = re.compile(r'(<div class="highlight[^"]*"><pre>)(.*?)(</pre>)', re.S)
_PRE_TOKEN = re.compile(r"(<span\b[^>]*>)|(</span>)|([^<]+)|(<[^>]*>)")


def _wrap_code_lines(html: str) -> str:
    """Put each line of every highlighted code block in a ``<span class="snnlab-line">`` whose
    ``--snnlab-indent`` is the line's indentation, so that a long line wraps with a hanging indent.
    Pygments' spans that run over a line end are closed and reopened around it."""

    def one(match: re.Match) -> str:
        body = match.group(2)
        lines: list[list[str]] = [[]]
        open_spans: list[str] = []
        for opening, closing, text, other in _PRE_TOKEN.findall(body):
            if opening:
                open_spans.append(opening)
                lines[-1].append(opening)
            elif closing:
                open_spans.pop() if open_spans else None
                lines[-1].append(closing)
            elif other:
                lines[-1].append(other)
            else:
                parts = text.split("\n")
                lines[-1].append(parts[0])
                for part in parts[1:]:
                    lines[-1].append("</span>" * len(open_spans))
                    lines.append(list(open_spans) + [part])
        if lines and not re.sub(r"<[^>]*>", "", "".join(lines[-1])).strip("\n"):
            lines.pop()  # the newline that ends the block
        out = []
        for parts in lines:
            inner = "".join(parts)
            plain = html_lib.unescape(re.sub(r"<[^>]*>", "", inner))
            indent = len(plain) - len(plain.lstrip(" "))
            # the line feed stays inside (copied code keeps its lines); at the end of a block it adds no line
            out.append(f'<span class="snnlab-line" style="--snnlab-indent:{indent}ch">{inner}\n</span>')
        return match.group(1) + "".join(out) + match.group(3)

    return _HIGHLIGHT_PRE.sub(one, html)


_TABLE_CELL = re.compile(r"(<t[hd]\b[^>]*>)(.*?)(</t[hd]>)", re.S)


def _break_table_names(html: str) -> str:
    """Let table cells wrap after ``_`` and ``/`` (``<wbr>``), so that a column headed
    ``dssa_proj/post_unit_sd`` can be narrow without breaking inside a word; tags are left alone."""

    def cell(match: re.Match) -> str:
        parts = re.split(r"(<[^>]*>)", match.group(2))
        body = "".join(part if part.startswith("<") else re.sub(r"([_/])(?=\w)", r"\1<wbr>", part) for part in parts)
        return match.group(1) + body + match.group(3)

    return _TABLE_CELL.sub(cell, html)


_BANNER = {
    "student": "Student handout: the exercises are left for you. A box marks each one, with room to "
               "write; cells that need an unfinished exercise say so instead of showing their output.",
    "instructor": "Instructor handout: with solutions and instructor notes.",
}
# A fetch, not a link: src/href of the tags that load things, CSS url() and @import, JS import().
_NETWORK = re.compile(
    r"""<(?:script|link|img|iframe|source|video|audio|embed|object)\b[^>]*?\b(?:src|href|data)\s*=\s*["']?\s*(?:https?:)?//[^\s"'>]+"""
    r"""|url\(\s*["']?\s*(?:https?:)?//[^)\s"']+"""
    r"""|@import\s+(?:url\()?\s*["']?\s*(?:https?:)?//[^\s"';)]+"""
    r"""|\bimport\s*\(\s*["'](?:https?:)?//[^"']+""",
    re.I,
)


def network_references(html: str) -> list[str]:
    """Everything in ``html`` that would make a browser fetch from the network (empty: offline)."""
    return [m.group(0)[:160] for m in _NETWORK.finditer(html)]


# plotly's "notebook" renderer asks for MathJax from a CDN with every figure (for TeX in labels).
_CDN_MATHJAX = re.compile(r"""<script\b[^>]*\bsrc\s*=\s*["']?(?:https?:)?//[^"'>\s]*mathjax[^>]*>\s*</script>""", re.I)


def drop_cdn_mathjax(output) -> None:
    """Remove, in place, the CDN MathJax ``<script>`` from a notebook output's HTML (the handout and the
    site bundle their own; a student offline would otherwise wait on the request)."""
    data = output.get("data", {}) if output.get("output_type") in ("display_data", "execute_result") else {}
    html = data.get("text/html")
    if html is not None:
        text = "".join(html) if isinstance(html, list) else html
        data["text/html"] = _CDN_MATHJAX.sub("", text)


def export_html(nb, *, title: str, version: str, resources_path: Path, paper: str = "A4") -> str:
    """One self-contained HTML page of an executed notebook (nbconvert ``lab`` template).

    The MyST hide tags are applied (:func:`apply_hide_tags`); equations in markdown become inline
    SVG (:func:`render_math`); the MathJax that plotly figures request from a CDN is dropped (TeX in
    plotly labels then shows as source); code lines wrap with their indentation; the print style
    sheet sets the ``paper`` size (``A4`` or ``Letter``).
    """
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    if paper not in PAPER_SIZES:
        raise ValueError(f"paper must be one of {PAPER_SIZES}, not {paper!r}")
    nb = apply_hide_tags(nb)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = render_math(cell.source)
        for output in cell.get("outputs", []):
            drop_cdn_mathjax(output)
    banner = nbformat.v4.new_markdown_cell(f'<p class="snnlab-handout-banner">{_BANNER[version]}</p>')
    nb.cells.insert(1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0, banner)
    nb.metadata["title"] = title
    exporter = HTMLExporter(
        template_name="lab", template_file="snnlab_handout.html.j2", embed_images=True,
        extra_loaders=[jinja2.DictLoader({"snnlab_handout.html.j2": _template(paper)})],
    )
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title, "path": str(resources_path)}})
    return _size_figures(_break_table_names(_wrap_code_lines(body)), paper)


# --------------------------------------------------------------------------- PDF
def find_chromium() -> str | None:
    """The Chromium/Chrome binary: ``$SNNLAB_CHROMIUM``, else the first of the usual names on PATH."""
    override = os.environ.get("SNNLAB_CHROMIUM", "").strip()
    if override:
        return shutil.which(override) or (override if Path(override).is_file() else None)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(html_path: Path, *, chromium: str | None = None, timeout: float = PDF_TIMEOUT_S) -> bytes:
    """Print ``html_path`` to PDF with headless Chromium, offline; return the PDF bytes."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise HandoutError(CHROMIUM_HINT)
    with tempfile.TemporaryDirectory(prefix="snnlab-pdf-") as tmp:
        target = Path(tmp) / "handout.pdf"
        command = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # nothing may come from the network
            "--no-pdf-header-footer", "--run-all-compositor-stages-before-draw",
            "--virtual-time-budget=20000",  # lets scripts (plotly) draw before printing
            f"--print-to-pdf={target}", Path(html_path).resolve().as_uri(),
        ]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            log, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)  # its own session: the browser and its helper processes
            process.communicate()
            raise HandoutError(f"Chromium did not print {html_path.name} within {timeout:.0f} s", code=1)
        data = target.read_bytes() if target.is_file() else b""
        if not data.startswith(b"%PDF"):
            tail = log.decode("utf-8", "replace")[-1500:]
            raise HandoutError(f"Chromium printed no PDF for {html_path.name} (exit {process.returncode}):\n{tail}",
                               code=1)
        return data


# --------------------------------------------------------------------------- print checks
POPPLER_HINT = ("the print checks need poppler-utils (pdftoppm, pdftotext): install them with "
                "`sudo apt-get install poppler-utils` (Debian/Ubuntu) or `brew install poppler` (macOS)")
PAGE_BOUNDS = (2, 45)     # fewer: an export lost the notebook; more: something no longer fits a page
MIN_FILL = 0.5            # a page filled less than this, not the last of the document or of a section
HEADING_RATIO = 1.3       # a page that opens with text this much larger than the body opens a section
MIN_FONT_PT = 7.0         # smaller: unreadable, or Chromium shrank the whole page to fit something too wide
BODY_TOLERANCE = 0.10     # the median word under BODY_PT by more than this: Chromium shrank the pages
                          # (code prints at 0.93 of the body, the median of a code-heavy handout)
BOX_EM = 1.164            # DejaVu's ascender-to-descender height in em (font_sizes)
INK_DPI = 30              # enough to see where the ink ends; 30 dpi keeps 40 pages under a second
EDGE_PT = 12 / 25.4 * 72 / 2  # text ending closer to the paper's edge than half the 12 mm margin ran off the text area
# What a student PDF must not show: a traceback, or the error an unfinished exercise raises (the
# stub's own `raise NotImplementedError()` line is code the student reads, not an error).
_TRACEBACK = re.compile(r"Traceback|NotImplementedError(?!\(\))|NameError|\w*Error:")
_SECTION_START = re.compile(r"^\s*(?:Section \d+|Coding Exercise \d+|Bonus|Summary|Further reading)\b")
# PDF actions that make a reader fetch or run something: links (/URI) are only followed on a click.
# Matched as an action's type (/S /Launch): a bare name could occur by chance in compressed streams.
_PDF_FETCH = re.compile(rb"/S\s*/(?:JavaScript|Launch|GoToR|GoToE|SubmitForm|ImportData)\b|/FS\s*/URL\b")


class PopplerMissing(HandoutError):
    """pdftoppm or pdftotext is not installed."""


def _poppler(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise PopplerMissing(POPPLER_HINT)
    return found


def page_fills(pdf_path: Path, *, dpi: int = INK_DPI) -> list[float]:
    """How far down its text area each page of ``pdf_path`` is inked, from 0 (blank) to 1 (full).

    Each page is rendered in grey by ``pdftoppm -r dpi``; a row is inked when it has a pixel darker
    than 200/255. The text area runs from the highest first-inked row to the lowest last-inked row
    over all pages (the margins the document really has), and a page's fill is how far down that
    area its last inked row lies. This measures what wastes paper, the blank tail after a break,
    and not the white inside figures and between lines that an inked-row fraction would count.
    """
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="snnlab-ink-") as tmp:
        subprocess.run([_poppler("pdftoppm"), "-r", str(dpi), "-gray", str(pdf_path), str(Path(tmp) / "p")],
                       check=True, capture_output=True, timeout=300)
        spans = []
        for page in sorted(Path(tmp).glob("p-*.pgm"), key=lambda f: int(f.stem.rsplit("-", 1)[1])):
            with Image.open(page) as image:
                width, height = image.size
                data = image.tobytes()
            rows = [y for y in range(height) if min(data[y * width:(y + 1) * width]) < 200]
            spans.append((rows[0], rows[-1]) if rows else None)
    inked = [s for s in spans if s]
    if not inked:
        return [0.0] * len(spans)
    top, bottom = min(s[0] for s in inked), max(s[1] for s in inked)
    return [0.0 if s is None else (s[1] - top + 1) / max(bottom - top + 1, 1) for s in spans]


def page_texts(pdf_path: Path) -> list[str]:
    """The text of each page (``pdftotext -layout``)."""
    result = subprocess.run([_poppler("pdftotext"), "-layout", str(pdf_path), "-"], check=True,
                            capture_output=True, timeout=120)
    pages = result.stdout.decode("utf-8", "replace").split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages


def _bbox_words(pdf_path: Path) -> list[tuple[int, float, float, float, float, str]]:
    """(page, page width, top, right, bottom, word) in pt of every word, from ``pdftotext -bbox-layout``."""
    result = subprocess.run([_poppler("pdftotext"), "-bbox-layout", str(pdf_path), "-"], check=True,
                            capture_output=True, timeout=120)
    words, page, width = [], 0, 0.0
    for match in re.finditer(r'<page width="([\d.]+)"|<word xMin="[\d.]+" yMin="([\d.]+)" xMax="([\d.]+)" '
                             r'yMax="([\d.]+)">([^<]*)</word>', result.stdout.decode("utf-8", "replace")):
        if match.group(1):
            page, width = page + 1, float(match.group(1))
        elif match.group(5).strip():
            words.append((page, width, float(match.group(2)), float(match.group(3)), float(match.group(4)),
                          html_lib.unescape(match.group(5))))
    return words


def font_sizes(pdf_path: Path) -> list[tuple[float, int, str, float]]:
    """(font size in pt, page, word, top in pt) of every word, from ``pdftotext -bbox-layout``.

    A word's box runs from the font's ascender to its descender: 1.164 em for DejaVu, the fonts
    Debian's Chromium prints with (1.1 to 1.2 em for other common fonts), so the size is the box
    height over :data:`BOX_EM`, within a few per cent.
    """
    return [((bottom - top) / BOX_EM, page, word, top) for page, _, top, _, bottom, word in _bbox_words(pdf_path)]


def words_past_margin(pdf_path: Path, *, edge_pt: float = EDGE_PT) -> list[tuple[int, str, float]]:
    """(page, word, how far past ``page width - edge_pt`` in pt) of each word that runs towards or off the
    paper's right edge: a table or line too wide for the page that Chromium neither wrapped nor shrank."""
    return [(page, word, right - (width - edge_pt)) for page, width, _, right, _, word in _bbox_words(pdf_path)
            if right > width - edge_pt]


def print_problems(pdf_path: Path, version: str, *, pages: tuple[int, int] = PAGE_BOUNDS,
                   min_fill: float = MIN_FILL, min_font_pt: float = MIN_FONT_PT,
                   html: str | None = None) -> list[str]:
    """What a machine can see is wrong with a printed handout: one line per problem (empty: none).

    * the page count outside ``pages``;
    * a page filled less than ``min_fill`` (:func:`page_fills`), except the document's last page
      and a section's last page: one followed by a page that opens with a heading (``Section N``,
      ``Coding Exercise N``, ``Bonus``, ``Summary``, ``Further reading``, or any first word
      :data:`HEADING_RATIO` times the body size);
    * text smaller than ``min_font_pt`` (:func:`font_sizes`; text inside figures is pixels and is
      not seen here: figure widths are kept in check by the figure sizes in the notebooks);
    * text that runs off the text area towards the paper's edge (:func:`words_past_margin`);
    * the median word printed smaller than the body size (``BODY_PT``): the pages were shrunk to fit;
    * traceback or error text (``Traceback``, ``NotImplementedError``, ``NameError``, ``...Error:``)
      in a student handout;
    * network references: PDF actions that fetch or run something, and, given ``html``, what
      :func:`network_references` finds in the page it was printed from.

    Raises :class:`PopplerMissing` (one line saying how to install them) without poppler-utils.
    """
    name = Path(pdf_path).name
    fills, texts = page_fills(pdf_path), page_texts(pdf_path)
    problems = []
    if not pages[0] <= len(fills) <= pages[1]:
        problems.append(f"{name}: {len(fills)} pages, outside {pages[0]}..{pages[1]}")
    words = font_sizes(pdf_path)
    tops: dict[int, tuple[float, float]] = {}  # each page's highest word: (top, size)
    for size, page, _, top in words:
        tops[page] = min(tops.get(page, (top, size)), (top, size))
    text_top = min((t for t, _ in tops.values()), default=0.0)
    # a page opens with a heading when its highest word is at the top of the text area and large
    opening = {page: size for page, (top, size) in tops.items() if top <= text_top + 2 * BODY_PT}
    for n, fill in enumerate(fills[:-1]):
        following = texts[n + 1] if n + 1 < len(texts) else ""
        first_line = next((line for line in following.splitlines() if line.strip()), "")
        # the next page opens a section: a named one, or any heading (text 1.3 times the body's or more)
        section_next = _SECTION_START.match(first_line) or opening.get(n + 2, 0.0) >= HEADING_RATIO * BODY_PT
        if fill < min_fill and not section_next:
            problems.append(f"{name}: page {n + 1} is {fill:.0%} filled (under {min_fill:.0%})")
    if words:
        body = statistics.median(w[0] for w in words)
        if body < (1 - BODY_TOLERANCE) * BODY_PT:
            problems.append(f"{name}: the text prints at {body:.1f} pt, not {BODY_PT} pt: Chromium shrank the "
                            f"pages to fit something too wide")
        size, page, word, _ = min(words)
        if size < min_font_pt:
            problems.append(f"{name}: text of {size:.1f} pt on page {page} ({word!r}), under {min_font_pt} pt")
    past = words_past_margin(pdf_path)
    if past:
        page, word, _ = past[0]
        problems.append(f"{name}: text runs off the right margin on page {page} ({word!r}"
                        + (f" and {len(past) - 1} more word(s))" if len(past) > 1 else ")"))
    if version == "student":
        for n, text in enumerate(texts):
            found = sorted(set(m.group(0) for m in _TRACEBACK.finditer(text)))
            if found:
                problems.append(f"{name}: page {n + 1} shows error text: {', '.join(found)}")
    actions = sorted(set(m.group(0).decode() for m in _PDF_FETCH.finditer(Path(pdf_path).read_bytes())))
    if actions:
        problems.append(f"{name}: PDF actions that reach out: {', '.join(actions)}")
    if html is not None:
        for reference in network_references(html)[:3]:
            problems.append(f"{name}: the HTML fetches {reference}")
    return problems


# --------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snnlab handout",
        description="Execute notebooks and export student/instructor handouts (self-contained HTML, "
                    "PDF printed by headless Chromium, or the exercise notebook).",
    )
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                        help="notebook paths or names in notebooks/ (default: all of them)")
    parser.add_argument("--to", nargs="+", default=["html"], choices=[*FORMATS, "all"], metavar="FORMAT",
                        help="html, pdf, ipynb (the version's notebook without outputs) or all (default: html)")
    parser.add_argument("--version", nargs="+", default=["all"], choices=[*VERSIONS, "all"], metavar="VERSION",
                        help="student, instructor or all (default: all)")
    parser.add_argument("--out", default="build/handouts", help="output folder (default: %(default)s)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="set a notebook parameter, as in `snnlab run`")
    parser.add_argument("-f", "--parameters-file", metavar="YAML", help="parameters from a YAML mapping (-p wins)")
    parser.add_argument("--quick", action="store_true",
                        help="use each notebook's small metadata.snnlab.test_parameters (a fast check of the pipeline)")
    parser.add_argument("--executed", metavar="DIR",
                        help="export the executed copies DIR/<notebook>.ipynb (as `snnlab run --out DIR` writes "
                             "them) instead of executing; their code must be the notebook's")
    parser.add_argument("--run-stale", action="store_true",
                        help="with --executed: first run (`snnlab run --out DIR`) the notebooks whose copy in DIR "
                             "is missing or whose code differs; the others are reused as they are")
    parser.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                        help="with --run-stale: run N notebooks at once (default: %(default)s)")
    parser.add_argument("--paper", default="A4", choices=PAPER_SIZES, help="PDF page size (default: %(default)s)")
    parser.add_argument("--print-check", default="fail", choices=("fail", "warn", "off"),
                        help="check each PDF (page fill, font size, error text, network; needs poppler-utils): "
                             "fail (exit 1 on a problem; the PDF is still written), warn, or off (default: %(default)s)")
    parser.add_argument("--keep-going", action="store_true", help="continue with the other notebooks after a failure")
    parser.add_argument("--no-progress", action="store_true", help="no per-cell progress bars")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of input errors too (as SNNLAB_DEBUG=1 does)")
    return parser


def _expand(values: list[str], allowed: tuple[str, ...]) -> list[str]:
    return list(allowed) if "all" in values else [v for v in allowed if v in values]


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def make_handouts(notebook: Path, *, versions: list[str], formats: list[str], out: Path,
                  parameters: dict[str, Any], workdir: Path, chromium: str | None = None,
                  progress: bool = False, executed=None, paper: str = "A4") -> list[Path]:
    """Write the handouts of one notebook into ``out``; return the paths written.

    ``executed``: an executed copy of the notebook to export (``snnlab run``'s); without it the
    notebook is executed here once.

    The kernels run headless (panels show their default figure), draw matplotlib figures inline
    whatever ``MPLBACKEND`` the caller has, and save figures under ``workdir``, not ``figures/``.
    """
    with execution.kernel_environment(dict(SNNLAB_HEADLESS="1", SNNLAB_FIGURES=str(workdir / "figures"),
                                      MPLBACKEND="module://matplotlib_inline.backend_inline")):
        return _make_handouts(notebook, versions=versions, formats=formats, out=out, parameters=parameters,
                              workdir=workdir, chromium=chromium, progress=progress, executed=executed,
                              paper=paper)


def _make_handouts(notebook, *, versions, formats, out, parameters, workdir, chromium, progress, executed,
                   paper):
    if executed is None and {"html", "pdf"} & set(formats):  # one run serves both versions
        executed = execute_version(notebook, "instructor", workdir, parameters, progress=progress)
    written = []
    for version in versions:
        written += write_handout(notebook, executed, version=version, formats=formats, out=out,
                                 workdir=workdir, chromium=chromium, paper=paper)
    return written


def load_executed(notebook: Path, folder: Path):
    """The executed copy ``folder/<notebook name>`` (as ``snnlab run --out folder`` writes it).

    Raises :class:`HandoutError` (one line) when it is missing or its code is not the notebook's.
    """
    import nbformat

    path = Path(folder) / notebook.name
    if not path.is_file():
        raise HandoutError(f"--executed: no executed copy {path} (make it with `snnlab run {notebook.stem} "
                           f"--out {folder}`)")
    try:
        executed = nbformat.read(path, as_version=4)
    except Exception as exc:  # a truncated or foreign file: say which, in one line
        raise HandoutError(f"--executed: {path} is not a readable notebook ({exc.__class__.__name__})") from exc
    source = nbformat.read(notebook, as_version=4)
    src_code = [c.source for c in source.cells if c.cell_type == "code"]
    run_code = [c.source for c in run_code_cells(executed)]
    if src_code != run_code:
        differ = next((k for k, (a, b) in enumerate(zip(src_code, run_code)) if a != b), min(len(src_code), len(run_code)))
        raise HandoutError(f"--executed: the code of {path} differs from {notebook} (from code cell {differ + 1} on): "
                           f"run it again with `snnlab run {notebook.stem} --out {folder}`")
    if any(o.get("output_type") == "error" for c in executed.cells for o in c.get("outputs", [])):
        raise HandoutError(f"--executed: {path} stopped with an error: run it again")
    return executed


def write_handout(notebook: Path, executed, *, version: str, formats: list[str], out: Path, workdir: Path,
                  chromium: str | None = None, paper: str = "A4") -> list[Path]:
    """Write the ``version`` handout of ``notebook`` in ``formats`` into ``out``; return the paths.

    ``executed`` is the notebook run as it is (``snnlab run``'s copy or :func:`execute_version`); it
    may be ``None`` when only ``ipynb`` is asked for. The student version is derived from it
    (:func:`student_from_executed`), so nothing runs twice. ``workdir`` takes the HTML that Chromium
    prints; ``paper`` is ``A4`` or ``Letter``.
    """
    import nbformat

    source = nbformat.read(notebook, as_version=4)
    stem = f"{notebook.stem}.{version}"
    written = []
    if "ipynb" in formats:
        try:
            nb = student_notebook(source) if version == "student" else clean_notebook(source)
        except ValueError as exc:
            raise HandoutError(f"{notebook.name}: {exc}") from exc
        written.append(atomic_write_bytes(out / f"{stem}.ipynb", nbformat.writes(nb).encode("utf-8")))
    if not {"html", "pdf"} & set(formats):
        return written
    try:
        shown = version_notebook(source, executed, version)
    except ValueError as exc:
        raise HandoutError(f"{notebook.name}: {exc}") from exc
    meta = run.notebook_metadata(notebook)
    title = f"{meta.get('title') or notebook.stem} ({version} handout)"
    page = export_html(shown, title=title, version=version, resources_path=notebook.parent, paper=paper)
    fetches = network_references(page)
    if fetches:  # a template or output change would break "opens offline": refuse to ship it
        raise HandoutError(f"{notebook.name}: the {version} HTML would fetch from the network: {fetches[:5]}",
                           code=1)
    data = page.encode("utf-8")
    if "html" in formats:
        written.append(atomic_write_bytes(out / f"{stem}.html", data))
    if "pdf" in formats:
        html_path = workdir / f"{stem}.html"
        html_path.write_bytes(data)
        written.append(atomic_write_bytes(out / f"{stem}.pdf", print_pdf(html_path, chromium=chromium)))
    return written


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # HandoutError is a RunError, so a SnnlabError: the boundary prints it in one line.
    return command_boundary("snnlab handout", lambda: _main(args), debug=args.debug)


def _check_pdfs(paths: list[Path], mode: str, state: dict) -> int:
    """Run :func:`print_problems` on the PDFs among ``paths``, print one line per problem; return
    how many. Without poppler-utils it says so once and checks nothing."""
    count = 0
    for path in paths:
        if mode == "off" or path.suffix != ".pdf" or state.get("no_poppler"):
            continue
        version = "student" if path.name.endswith(".student.pdf") else "instructor"
        try:
            problems = print_problems(path, version)
        except PopplerMissing as exc:
            print(f"snnlab handout: print checks skipped: {exc}", file=sys.stderr, flush=True)
            state["no_poppler"] = True
            continue
        for problem in problems:
            print(f"    print check: {problem}", file=sys.stderr if mode == "fail" else sys.stdout, flush=True)
        count += len(problems)
    return count


def _main(args) -> int:
    notebooks = run.resolve_notebooks(args.notebooks)
    out = run.check_output_folder("--out", args.out)  # not after minutes of execution
    formats, versions = _expand(args.to, FORMATS), _expand(args.version, VERSIONS)
    chromium = None
    if "pdf" in formats:
        chromium = find_chromium()
        if chromium is None:  # before minutes of execution, not after
            raise HandoutError(CHROMIUM_HINT)
    params: dict[str, Any] = run.load_param_file(args.parameters_file) if args.parameters_file else {}
    params.update({name: run.parse_value(value) for name, value in args.parameter})
    if args.executed and (params or args.quick):
        raise HandoutError("--executed exports copies already run: give their parameters to `snnlab run`, "
                           "not -p/-f/--quick here", code=2)
    if args.run_stale and not args.executed:
        raise HandoutError("--run-stale needs --executed DIR (the folder whose copies it brings up to date)", code=2)
    if args.jobs < 1:
        raise HandoutError(f"-j/--jobs must be >= 1, got {args.jobs}", code=2)
    if args.run_stale:
        from .book import ensure_executed  # the site reuses copies the same way

        ensure_executed(notebooks, Path(args.executed), progress=not args.no_progress, jobs=args.jobs)
    executed_copies = {}
    if args.executed:  # every copy is checked before anything is written
        for notebook in notebooks:
            executed_copies[notebook] = load_executed(notebook, Path(args.executed))
    plan = run.plan_parameters(notebooks, params)
    failures, print_problem_count, check_state = [], 0, {}
    with tempfile.TemporaryDirectory(prefix="snnlab-handout-") as tmp:
        for i, notebook in enumerate(notebooks, 1):
            parameters = dict(plan[notebook])
            if args.quick:
                parameters = {**run.notebook_metadata(notebook).get("test_parameters", {}), **parameters}
            origin = f" from {Path(args.executed) / notebook.name}" if args.executed else (
                f" {parameters}" if parameters else "")
            print(f"[{i}/{len(notebooks)}] {notebook.name} {', '.join(versions)} -> {', '.join(formats)}{origin}",
                  flush=True)
            workdir = Path(tmp) / notebook.stem
            workdir.mkdir()
            try:
                paths = make_handouts(notebook, versions=versions, formats=formats, out=out,
                                      parameters=parameters, workdir=workdir, chromium=chromium,
                                      progress=not args.no_progress, executed=executed_copies.get(notebook),
                                      paper=args.paper)
            except run.RunError as exc:
                print(f"snnlab handout: {exc}", file=sys.stderr, flush=True)
                failures.append(notebook.name)
                if not args.keep_going:
                    break
                continue
            for path in paths:
                print(f"    {path}  ({_size(path.stat().st_size)})", flush=True)
            print_problem_count += _check_pdfs(paths, args.print_check, check_state)
    if failures:
        print(f"snnlab handout: failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    print(f"handouts of {len(notebooks)} notebook(s) in {out}/")
    if print_problem_count and args.print_check == "fail":
        print(f"snnlab handout: {print_problem_count} print problem(s) (listed above; --print-check warn "
              f"accepts them)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
