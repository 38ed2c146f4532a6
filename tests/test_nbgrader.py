"""The notebooks grade the way courses already grade: nbgrader releases and autogrades them as they are.

Every solution cell carries nbgrader's solution metadata and every check cell its test-cell metadata
(one point each). nbgrader's own ``generate_assignment`` (the release an instructor makes) must give the
same code cells as ``snnlab handout --version student``, and ``autograde`` must give the solutions
full marks and the untouched student version none.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from snnlab import handout

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BIN = Path(sys.executable).parent


def tags(cell):
    return cell.metadata.get("tags", [])


def nbgrader_available() -> str | None:
    """Why nbgrader cannot run here (None when it can)."""
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        return "nbgrader is not installed (it is in the test extra: pip install -c constraints.txt -e '.[test]')"
    if not (BIN / "nbgrader").is_file() or not (BIN / "alembic").is_file():
        return f"the nbgrader and alembic commands are not next to {sys.executable}"
    return None


def nbgrader(*args, root: Path, timeout: float = 600):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # nbgrader runs alembic
    done = subprocess.run([str(BIN / "nbgrader"), *args, "--force", f"--CourseDirectory.root={root}",
                           f"--CourseDirectory.db_url=sqlite:///{root / 'gradebook.db'}"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_cells_carry_nbgrader_metadata(path):
    nb = nbformat.read(path, as_version=4)
    ids = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader")
        if "solution" in tags(cell):
            assert meta and meta["solution"] is True and meta["grade"] is False and meta["locked"] is False, cell.source[:80]
        elif "check" in tags(cell):
            assert meta and meta["grade"] is True and meta["solution"] is False and meta["locked"] is True
            assert meta["points"] > 0
        else:
            assert meta is None, f"{path.name}: only solution and check cells are graded: {cell.source[:80]}"
            continue
        assert meta["schema_version"] == 3
        ids.append(meta["grade_id"])
    assert len(ids) == len(set(ids)) >= 6, f"{path.name}: grade ids must be unique: {ids}"
    # a check cell grades the exercise of the solution cell just before it
    pairs = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    for solution, check in zip(pairs[::2], pairs[1::2]):
        assert check == f"{solution}_check"


@pytest.mark.slow
def test_nbgrader_release_gives_the_student_handout_code(tmp_path):
    reason = nbgrader_available()
    if reason:
        pytest.skip(reason)
    source = tmp_path / "source" / "course"
    source.mkdir(parents=True)
    for path in NOTEBOOKS:
        shutil.copy(path, source / path.name)
    nbgrader("generate_assignment", "course", root=tmp_path)
    for path in NOTEBOOKS:
        released = nbformat.read(tmp_path / "release" / "course" / path.name, as_version=4)
        ours = handout.student_notebook(nbformat.read(path, as_version=4))
        theirs = [c.source for c in released.cells if c.cell_type == "code"]
        mine = [c.source for c in ours.cells if c.cell_type == "code"]
        assert len(theirs) == len(mine), path.name
        for n, (a, b) in enumerate(zip(theirs, mine)):
            assert a == b, f"{path.name}, code cell {n}: nbgrader released\n{a}\n--- snnlab handout wrote\n{b}"
        assert any("raise NotImplementedError()" in s for s in mine)


@pytest.mark.slow
@pytest.mark.notebook
def test_nbgrader_autograde_gives_solutions_full_marks_and_stubs_none(tmp_path):
    reason = nbgrader_available()
    if reason:
        pytest.skip(reason)
    from nbgrader.api import Gradebook

    path = ROOT / "notebooks" / "00_welcome.ipynb"   # its defaults run in seconds
    (tmp_path / "source" / "week").mkdir(parents=True)
    shutil.copy(path, tmp_path / "source" / "week" / path.name)
    nbgrader("generate_assignment", "week", root=tmp_path)
    for student, notebook in (("solved", path), ("untouched", tmp_path / "release" / "week" / path.name)):
        (tmp_path / "submitted" / student / "week").mkdir(parents=True)
        shutil.copy(notebook, tmp_path / "submitted" / student / "week" / path.name)
    nbgrader("autograde", "week", root=tmp_path)
    checks = sum("check" in tags(c) for c in nbformat.read(path, as_version=4).cells)
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as book:
        solved, untouched = book.find_submission("week", "solved"), book.find_submission("week", "untouched")
        assert solved.max_score == checks == 4
        assert solved.score == checks
        assert untouched.score == 0
