"""Exercise checks for every notebook in notebooks/ (globbed, so new notebooks are covered).

Static for all: every `solution` cell has well-formed markers and a `check` cell after it (before
the next solution), and the student version is valid Python without the solution. Executed for
00_welcome only (full student runs of every notebook would be slow): the stub notebook runs top to
bottom and the check cell raises the stub's NotImplementedError. That each *solution* passes its
check cell is what nbval's run of the notebooks on their defaults asserts (tests/test_notebooks.py).
"""
import ast
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from snnlab import handout, run

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
IDS = [p.name for p in NOTEBOOKS]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def tags(cell):
    return cell.metadata.get("tags", [])


def parse(source):
    return ast.parse(TransformerManager().transform_cell(source))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_solution_has_markers_and_a_check_cell(path):
    cells = nbformat.read(path, as_version=4).cells
    solutions = [i for i, c in enumerate(cells) if "solution" in tags(c)]
    for n, i in enumerate(solutions):
        cell = cells[i]
        assert cell.cell_type == "code", f"{path.name} cell {i}: a solution must be a code cell"
        lines = [l.strip() for l in cell.source.splitlines()]
        assert lines.count(BEGIN) >= 1 and lines.count(BEGIN) == lines.count(END), \
            f"{path.name} cell {i}: needs matching {BEGIN!r} / {END!r} lines"
        begins, ends = [k for k, l in enumerate(lines) if l == BEGIN], [k for k, l in enumerate(lines) if l == END]
        assert all(b < e for b, e in zip(begins, ends)), f"{path.name} cell {i}: END before BEGIN"
        following = cells[i + 1:solutions[n + 1] if n + 1 < len(solutions) else len(cells)]
        assert any(c.cell_type == "code" and "check" in tags(c) for c in following), \
            f"{path.name} cell {i}: no cell tagged 'check' after this solution"
    for i, cell in enumerate(cells):  # markers anywhere else would leak a solution to students
        if cell.cell_type == "code" and "solution" not in tags(cell):
            assert BEGIN not in cell.source and END not in cell.source, f"{path.name} cell {i}: untagged markers"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_student_version_is_valid_and_has_no_solution(path):
    nb = nbformat.read(path, as_version=4)
    student = handout.student_notebook(nb)
    nbformat.validate(student)
    hidden = []
    for cell in nb.cells:
        if "solution" in tags(cell):
            inside = False
            for line in cell.source.splitlines():
                inside = {BEGIN: True, END: False}.get(line.strip(), inside)
                if inside and line.strip() and line.strip() != BEGIN:
                    hidden.append(line.strip())
    kept = [c for c in nb.cells if not (c.cell_type == "markdown" and "instructor" in tags(c))]
    assert len(student.cells) == len(kept)
    for original, cell in zip(kept, student.cells):
        assert cell.cell_type == original.cell_type
        if cell.cell_type != "code":
            assert cell.source == original.source  # prompts and explanations stay
            continue
        parse(cell.source)  # still Python
        assert cell.outputs == [] and cell.execution_count is None
        if "solution" in tags(original):
            assert "# YOUR CODE HERE\n" in cell.source and "raise NotImplementedError()" in cell.source
            assert not [line for line in cell.source.splitlines() if line.strip() in hidden]
            assert "raises-exception" in tags(cell)
        elif "check" in tags(original):
            assert "raises-exception" in tags(cell) and cell.source == original.source
        else:
            assert cell.source == original.source
    assert not any("instructor" in tags(c) for c in student.cells if c.cell_type == "markdown")


@pytest.mark.notebook
def test_welcome_student_version_runs_top_to_bottom(tmp_path, monkeypatch):
    path = ROOT / "notebooks" / "00_welcome.ipynb"
    monkeypatch.setenv("SNNLAB_FIGURES", str(tmp_path / "figures"))
    params = run.notebook_metadata(path)["test_parameters"]
    executed = handout.execute_version(path, "student", tmp_path, params)
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)  # every cell ran
    errors = {i: o for i, c in enumerate(executed.cells) for o in c.get("outputs", []) if o.output_type == "error"}
    checks = [i for i, c in enumerate(executed.cells) if "check" in tags(c)]
    assert checks and all(i in errors for i in checks)
    for i in checks:
        assert errors[i].ename == "NotImplementedError" and errors[i].evalue == ""
    first_solution = min(i for i, c in enumerate(executed.cells) if "solution" in tags(c))
    assert not [i for i in errors if i < first_solution]  # nothing before the exercise fails
    # the last code cell (the replication check) does not use the exercise and still passed
    assert not [o for o in code[-1].outputs if o.output_type == "error"] and code[-1].outputs


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_student_handout_notes_stand_exactly_where_the_student_run_fails(path, tmp_path, monkeypatch):
    """The student handout is derived from the instructor run (handout.student_from_executed): a cell
    gets a note instead of its output when exercise_dependencies says an unfinished exercise stops
    it. Running the student notebook itself must agree: no other cell fails (execute_version raises
    otherwise), and every listed cell except the solution cells (a stub inside a function body only
    fails when called) does fail."""
    monkeypatch.setenv("SNNLAB_FIGURES", str(tmp_path / "figures"))
    params = run.notebook_metadata(path)["test_parameters"]
    executed = handout.execute_version(path, "student", tmp_path, params)
    source = nbformat.read(path, as_version=4)
    listed = {source.cells[i].id: n for i, n in handout.exercise_dependencies(source).items()
              if "solution" not in tags(source.cells[i])}
    failed = {c.id for c in executed.cells if any(o.output_type == "error" for o in c.get("outputs", []))}
    assert listed, f"{path.name}: no check cell depends on an exercise"
    missing = [source.cells[[c.id for c in source.cells].index(i)].source[:100] for i in listed if i not in failed]
    assert not missing, f"{path.name}: the handout hides outputs of cells that run without the exercise: {missing}"
