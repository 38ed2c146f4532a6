"""The notebooks as course material: the shape notebooks/README.md ("Course conventions") describes.

Static checks of the source notebooks (no execution), one parametrised test per rule so a failure
names the notebook and the rule:

* the first cell gives the motivation, prerequisites, the total time and a section table whose
  minutes add up to it, and every section it lists is a heading of the notebook;
* three to five coding exercises, each a ``Coding Exercise N`` heading, a ``solution`` cell with the
  markers and a ``check`` cell whose every ``assert`` carries a message (or which uses
  ``snnlab.exercises``); at least one exercise asks the student to predict first; a Bonus section;
* every Think! is followed by an ``instructor`` cell that answers each of its numbered questions;
* a Summary that links to the next notebook (the last one links to the course map) and a Further
  reading list.
"""
import ast
import re
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
IDS = [p.name[:2] for p in NOTEBOOKS]
HEADING = re.compile(r"^(#{1,4})\s+(.*?)\s*$", re.M)
QUESTION = re.compile(r"^\s*(\d+)\.\s+\S", re.M)
ANSWER = re.compile(r"\*\*Answer (\d+)\.?\*\*")


def cells(path):
    return nbformat.read(path, as_version=4).cells


def tags(cell):
    return cell.metadata.get("tags", [])


def headings(cell):
    return [m.group(2) for m in HEADING.finditer(cell.source)] if cell.cell_type == "markdown" else []


def all_headings(path):
    return [h for c in cells(path) for h in headings(c)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_top_cell_gives_motivation_prerequisites_and_a_timetable_that_adds_up(path):
    top = cells(path)[0].source
    for field in ("**Motivation**", "**Prerequisites**", "**Time**"):
        assert field in top, f"{path.name}: the first cell needs a {field} line"
    total = re.search(r"\*\*Time\*\*[^\n]*?(\d+)\s*min", top)
    assert total, f"{path.name}: '**Time**' must say the total, e.g. '**Time**: about 90 min'"
    rows = re.findall(r"^\|\s*([^|]+?)\s*\|\s*(\d+)\s*\|\s*$", top, re.M)
    assert len(rows) >= 3, f"{path.name}: the first cell needs a '| section | minutes |' table with a row per section"
    assert sum(int(m) for _, m in rows) == int(total.group(1)), \
        f"{path.name}: the section minutes {[int(m) for _, m in rows]} do not add up to the total {total.group(1)} min"
    found = all_headings(path)[1:]
    for section, _ in rows:
        assert any(section in h for h in found), \
            f"{path.name}: the timetable lists {section!r} but no heading contains it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_three_to_five_exercises_each_with_a_heading_a_solution_and_an_explaining_check(path):
    nb = cells(path)
    solutions = [i for i, c in enumerate(nb) if "solution" in tags(c)]
    assert 3 <= len(solutions) <= 5, f"{path.name}: {len(solutions)} solution-tagged exercises (need 3 to 5)"
    numbers = []
    for i in solutions:
        before = [h for c in nb[:i] for h in headings(c)]
        last = next((h for h in reversed(before) if re.search(r"Coding Exercise \d+", h)), None)
        assert last, f"{path.name} cell {i}: a solution cell needs a 'Coding Exercise N' heading above it"
        numbers.append(int(re.search(r"Coding Exercise (\d+)", last).group(1)))
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers) == numbers[-1], \
        f"{path.name}: exercises should be numbered 1, 2, 3, ... in order; found {numbers}"
    checks = [c for c in nb if "check" in tags(c)]
    for c in checks:
        tree = ast.parse(TransformerManager().transform_cell(c.source))
        bare = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Assert) and n.msg is None]
        assert not bare, (f"{path.name}: check cell {c.source.splitlines()[0]!r} has a bare assert on line(s) "
                          f"{bare}: say what is wrong (snnlab.exercises.check_* or assert ..., 'message')")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_an_exercise_asks_for_a_prediction_and_there_is_a_bonus(path):
    nb = cells(path)
    exercise_text = [c.source for c in nb if c.cell_type == "markdown" and re.search(r"Coding Exercise \d+", c.source)]
    assert any(re.search(r"\bpredict", t, re.I) for t in exercise_text), \
        f"{path.name}: at least one Coding Exercise should ask the student to predict the figure first"
    assert any(h.startswith("Bonus") or "Bonus" in h for h in all_headings(path)), f"{path.name}: no Bonus section"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_think_is_followed_by_instructor_notes_answering_each_question(path):
    nb = cells(path)
    thinks = [i for i, c in enumerate(nb) if any("Think!" in h for h in headings(c))]
    assert thinks, f"{path.name}: no Think! section"
    for i in thinks:
        assert i + 1 < len(nb) and nb[i + 1].cell_type == "markdown" and "instructor" in tags(nb[i + 1]), \
            f"{path.name} cell {i}: the cell after a Think! must be a markdown cell tagged 'instructor'"
        think = nb[i].source[nb[i].source.index("Think!"):]
        think = re.split(r"^#{1,4} ", think, maxsplit=1, flags=re.M)[0]  # up to the next heading
        asked = {int(n) for n in QUESTION.findall(think)}
        answered = {int(n) for n in ANSWER.findall(nb[i + 1].source)}
        assert asked, f"{path.name} cell {i}: number the Think! questions (1., 2., ...)"
        assert asked <= answered, (f"{path.name} cell {i + 1}: instructor notes answer {sorted(answered)} "
                                   f"but the Think! asks {sorted(asked)} (write '**Answer N.**')")
    instructor = [c for c in nb if "instructor" in tags(c)]
    assert all(c.cell_type == "markdown" for c in instructor), f"{path.name}: instructor cells must be markdown"
    notes = "\n".join(c.source for c in instructor)
    for needed in ("Expected output", "Common mistakes", "min"):
        assert needed in notes, f"{path.name}: the instructor notes never mention {needed!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_summary_links_onwards_and_further_reading_is_listed(path):
    nb = cells(path)
    heads = all_headings(path)
    assert any(h.startswith("Summary") for h in heads), f"{path.name}: no Summary heading"
    summary = next(c.source for c in nb if any(h.startswith("Summary") for h in headings(c)))
    later = [p for p in NOTEBOOKS if p.name > path.name]
    target = later[0].name if later else "README.md"
    assert f"]({target})" in summary, f"{path.name}: the Summary should link to the next notebook, ({target})"
    reading = [c.source for c in nb if any(h.startswith("Further reading") for h in headings(c))]
    assert reading, f"{path.name}: no Further reading heading"
    text = reading[0].split("Further reading", 1)[1]
    assert len(re.findall(r"^\s*[-*] ", text, re.M)) >= 2, f"{path.name}: Further reading needs at least two items"


def test_course_map_lists_every_notebook_with_what_it_needs_first():
    text = (ROOT / "notebooks" / "README.md").read_text()
    assert "## Course map" in text, "notebooks/README.md needs a '## Course map' section"
    course = text.split("## Course map", 1)[1].split("\n## ", 1)[0]
    for path in NOTEBOOKS:
        assert path.name in course, f"the course map does not list {path.name}"
    assert re.search(r"[Ww]eek", course), "the course map should suggest an order over weeks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_cell_has_a_unique_id(path):
    """nbformat 4.5 ids: nbgrader, JupyterLab's collaboration and MyST refer to cells by them."""
    ids = [c.get("id") for c in nbformat.reads(path.read_text(), as_version=nbformat.NO_CONVERT).cells]
    assert all(ids) and len(set(ids)) == len(ids), f"{path.name}: cells without an id or with a repeated id"
