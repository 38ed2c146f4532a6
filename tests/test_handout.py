"""`snnlab handout`: student/instructor versions, self-contained HTML, PDF by headless Chromium.

Kernels run here: a tiny notebook written in tmp_path (both versions through the command line) and
00_welcome with its small test parameters (both versions). PDF printing is skipped when Chromium is
absent (CI installs it).
"""
import html
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from snnlab import handout, run

ROOT = Path(__file__).resolve().parents[1]
WELCOME = ROOT / "notebooks" / "00_welcome.ipynb"


def page_text(page: str) -> str:
    """What a reader sees: the HTML without scripts, styles and tags, entities decoded."""
    page = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def solution_body(nb) -> list[str]:
    """The stripped lines between the markers in every solution cell (read here, not by handout)."""
    lines = []
    for cell in nb.cells:
        if "solution" in cell.metadata.get("tags", []):
            source = cell.source
            body = source[source.index("### BEGIN SOLUTION"):source.index("### END SOLUTION")]
            lines += [l.strip() for l in body.splitlines()[1:] if l.strip()]
    return lines


def code(source, *tags):
    cell = nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def markdown(source, *tags):
    cell = nbformat.v4.new_markdown_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def tiny_notebook(path: Path, *, figures: bool = True) -> Path:
    """Two exercises (one inside a function, one at module level), an instructor note and (with
    ``figures``) a matplotlib figure, a snnlab panel and a plotly figure; it runs in seconds."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["snnlab"] = {"title": "Tiny exercises"}
    nb.cells = [
        markdown("# Tiny\n\n**Learning goals**: doubling, $y = 2x$."),
        code("seed = 0\ndevice = 'cpu'\nscale = 2", "parameters"),
        markdown("Instructor note: INSTRUCTOR_ONLY_NOTE_7 (students never see this).", "instructor"),
        markdown("## Coding Exercise\n\nWrite `double(x)`, which returns $\\mathrm{scale} \\cdot x$. PROMPT_MARK"),
        code("def double(x):\n    ### BEGIN SOLUTION\n    result = x * scale  # SOLUTION_ONE\n"
             "    return result\n    ### END SOLUTION", "solution"),
        code("assert double(3) == 6\nprint('CHECK_ONE_PASSED')", "check"),
        code("### BEGIN SOLUTION\ntotal = double(10) + 1  # SOLUTION_TWO\n### END SOLUTION", "solution"),
        code("assert total == 21\nprint('CHECK_TWO_PASSED')", "check"),
    ]
    figure_cells = [
        code("import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(2, 1.5))\n"
             "ax.plot([0, 1], [0, 1])\nplt.show()"),
        code("from snnlab import plots, widgets\n"
             "panel = widgets.interactive(lambda a: plt.subplots(figsize=(2, 1.5))[0], a=(0, 4, 1, 2))",
             "nbval-ignore-output"),
        code("import plotly.graph_objects as go\nplots.show_plotly(go.Figure(go.Scatter(x=[0, 1], y=[1, 0])))",
             "nbval-ignore-output"),
    ]
    nb.cells += (figure_cells if figures else []) + [code("print('LAST_CELL_RAN')")]
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def tiny_handouts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    source = tiny_notebook(folder / "01_tiny.ipynb")
    out = folder / "handouts"
    code_ = handout.main([str(source), "--to", "html", "ipynb", "--version", "all", "--out", str(out),
                          "--no-progress"])
    assert code_ == 0
    return source, out


@pytest.fixture(scope="module")
def welcome_handouts(tmp_path_factory):
    out = tmp_path_factory.mktemp("welcome")
    params = run.notebook_metadata(WELCOME)["test_parameters"]
    paths = handout.make_handouts(WELCOME, versions=["student", "instructor"], formats=["html"], out=out,
                                  parameters=params, workdir=out)
    return {p.name: p.read_text(encoding="utf-8") for p in paths}


# --------------------------------------------------------------------------- the transform
def test_stub_source_keeps_the_indentation_and_names_the_function():
    source = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n"
    assert handout.stub_source(source) == (
        "def f(x):\n    y = 1\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    )


def test_stub_source_at_module_level_and_several_blocks():
    source = "a = 1\n### BEGIN SOLUTION\nb = 2\n### END SOLUTION\nc = 3\n  ### BEGIN SOLUTION\n  d = 4\n  ### END SOLUTION"
    lines = handout.stub_source(source).splitlines()
    assert lines == ["a = 1", "# YOUR CODE HERE", "raise NotImplementedError()", "c = 3",
                     "  # YOUR CODE HERE", "  raise NotImplementedError()"]
    assert "b = 2" not in lines and "  d = 4" not in lines


@pytest.mark.parametrize("source,message", [
    ("x = 1", "no '### BEGIN SOLUTION'"),
    ("### BEGIN SOLUTION\nx = 1", "never closed"),
    ("x = 1\n### END SOLUTION", "without a"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\nx\n### END SOLUTION\n### END SOLUTION", "inside another"),
    ("### BEGIN SOLUTION\n\n### END SOLUTION", "empty"),
])
def test_stub_source_refuses_malformed_markers(source, message):
    with pytest.raises(ValueError, match=message):
        handout.stub_source(source)


def test_student_notebook_drops_instructor_markdown_and_tags_exercises(tmp_path):
    nb = nbformat.read(tiny_notebook(tmp_path / "t.ipynb"), as_version=4)
    student = handout.student_notebook(nb)
    assert len(student.cells) == len(nb.cells) - 1
    assert not any("INSTRUCTOR_ONLY_NOTE_7" in c.source for c in student.cells)
    for cell in student.cells:
        tags = cell.metadata.get("tags", [])
        if "solution" in tags or "check" in tags:
            assert "raises-exception" in tags
        else:
            assert "raises-exception" not in tags
    joined = "\n".join(c.source for c in student.cells)
    assert "SOLUTION_ONE" not in joined and "SOLUTION_TWO" not in joined
    assert joined.count("# YOUR CODE HERE\nraise NotImplementedError()") == 1  # at module level
    assert joined.count("    # YOUR CODE HERE\n    raise NotImplementedError()") == 1  # in double()
    assert "INSTRUCTOR_ONLY_NOTE_7" in nb.cells[2].source  # the source notebook is left alone


def test_exercise_problems_names_each_broken_convention():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        code("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "solution"),   # 0: no check before next solution
        code("### BEGIN SOLUTION\ny = 1\n### END SOLUTION", "solution"),   # 1: never checked
        code("### BEGIN SOLUTION\nz = 1\n### END SOLUTION"),               # 2: markers, no tag
        code("print(1)", "instructor"),                                    # 3: code cannot be instructor
        markdown("text", "check"),                                         # 4: markdown check
    ]
    problems = "\n".join(handout.exercise_problems(nb))
    assert "cell 0: solution cell has no 'check' cell before the next solution (cell 1)" in problems
    assert "cell 1: solution cell is not followed by a 'check' cell" in problems
    assert "cell 2: has solution markers but is not tagged 'solution'" in problems
    assert "cell 3: a code cell is tagged 'instructor'" in problems
    assert "cell 4: a markdown cell is tagged 'check'" in problems
    with pytest.raises(ValueError, match="break the conventions"):
        handout.student_notebook(nb)


def test_module_level_names_ignores_function_locals():
    source = "import numpy as np\ndef f():\n    inner = 1\nfor i in range(3):\n    total = i\nx, (y, z) = 1, (2, 3)"
    assert handout.module_level_names(source) == {"np", "f", "i", "total", "x", "y", "z"}


# --------------------------------------------------------------------------- HTML helpers
def test_render_math_makes_svg_but_leaves_code_alone():
    text = "rate $r = 1/\\tau$ and `$HOME` costs $5 and $6\n```bash\necho $x$\n```\n$$\\frac{a}{b}$$"
    out = handout.render_math(text)
    assert out.count('class="snnlab-math"') == 2
    assert "`$HOME`" in out and "echo $x$" in out and "$5 and $6" in out
    assert "data:image/svg+xml;base64," in out


def test_render_math_keeps_tex_it_cannot_draw():
    text = "$\\begin{cases} a \\\\ b \\end{cases}$"
    assert handout.render_math(text) == text


def test_network_references_finds_fetches_not_links():
    page = ('<script src="https://cdn.example/require.js"></script><a href="https://example.org">doc</a>'
            '<link rel="stylesheet" href="//fonts.example/css"><style>@import url("https://x/y.css");'
            'body{background:url(https://x/bg.png)}</style><script>import("https://x/m.js")</script>'
            '<img src="data:image/png;base64,AAAA">')
    found = handout.network_references(page)
    assert len(found) == 5 and not any("example.org" in f for f in found)


# --------------------------------------------------------------------------- tiny notebook end to end
@pytest.mark.notebook
def test_student_html_has_prompt_and_stub_but_no_solution(tiny_handouts):
    source, out = tiny_handouts
    text = page_text((out / "01_tiny.student.html").read_text(encoding="utf-8"))
    assert "PROMPT_MARK" in text and "# YOUR CODE HERE" in text and "raise NotImplementedError()" in text
    for line in solution_body(nbformat.read(source, as_version=4)):
        assert line not in text
    assert "INSTRUCTOR_ONLY_NOTE_7" not in text
    # an unfinished exercise shows a boxed note, not a traceback
    assert "Exercise 1: complete double() in the cell above." in text
    assert "Exercise 2: write the missing code in the cell above." in text
    assert text.count("Runs once Exercise") == 2  # the two check cells
    assert "Traceback" not in text and "NotImplementedError:" not in text
    assert "LAST_CELL_RAN" in text  # what does not need an exercise keeps its output


@pytest.mark.notebook
def test_instructor_html_keeps_solutions_and_they_pass_the_checks(tiny_handouts):
    source, out = tiny_handouts
    text = page_text((out / "01_tiny.instructor.html").read_text(encoding="utf-8"))
    for line in solution_body(nbformat.read(source, as_version=4)):
        assert line in text  # also proves the absence test above can see code through highlighting
    assert "CHECK_ONE_PASSED" in text and "CHECK_TWO_PASSED" in text and "INSTRUCTOR_ONLY_NOTE_7" in text
    assert "Error" not in re.sub(r"NotImplementedError\(", "", text.split("CHECK_ONE_PASSED")[0])


@pytest.mark.notebook
@pytest.mark.parametrize("version", ["student", "instructor"])
def test_html_is_self_contained(tiny_handouts, version):
    _, out = tiny_handouts
    page = (out / f"01_tiny.{version}.html").read_text(encoding="utf-8")
    assert handout.network_references(page) == []
    assert not re.search(r"<script[^>]+src=", page) and not re.search(r"mathjax[^\s\"']*\.js", page, re.I)
    assert page.count("data:image/png;base64,") >= 2  # the matplotlib figure and the panel's image
    assert 'class="snnlab-math"' in page  # equations drawn, not left to a CDN
    assert "plotly-graph-div" in page and page.count("Plotly.newPlot") >= 1
    assert len(re.findall(r"https?://cdn\.plot\.ly/plotly", page)) == 0


@pytest.mark.notebook
def test_ipynb_versions_have_no_outputs(tiny_handouts):
    _, out = tiny_handouts
    student = nbformat.read(out / "01_tiny.student.ipynb", as_version=4)
    instructor = nbformat.read(out / "01_tiny.instructor.ipynb", as_version=4)
    nbformat.validate(student)
    assert all(c.outputs == [] for c in student.cells + instructor.cells if c.cell_type == "code")
    assert any("SOLUTION_ONE" in c.source for c in instructor.cells)
    assert not any("SOLUTION_ONE" in c.source for c in student.cells)


@pytest.mark.notebook
def test_student_run_refuses_errors_an_exercise_does_not_explain(tmp_path):
    nb = nbformat.read(tiny_notebook(tmp_path / "02_bad.ipynb", figures=False), as_version=4)
    nb.cells[-1].source = "1 / 0"
    nbformat.write(nb, tmp_path / "02_bad.ipynb")
    with pytest.raises(handout.HandoutError, match="ZeroDivisionError"):
        handout.execute_version(tmp_path / "02_bad.ipynb", "student", tmp_path, {})


# --------------------------------------------------------------------------- 00_welcome
@pytest.mark.notebook
def test_welcome_student_html_has_no_solution_code(welcome_handouts):
    text = page_text(welcome_handouts["00_welcome.student.html"])
    body = solution_body(nbformat.read(WELCOME, as_version=4))
    assert body and not [line for line in body if line in text]
    assert "Coding Exercise 2: the f-I curve" in text and "Write firing_rate_hz(current)" in text
    assert "Exercise 2: complete firing_rate_hz() in the cell above." in text
    assert "Traceback" not in text and "NotImplementedError:" not in text


@pytest.mark.notebook
def test_welcome_solution_passes_the_check_cell(welcome_handouts):
    text = page_text(welcome_handouts["00_welcome.instructor.html"])
    assert all(line in text for line in solution_body(nbformat.read(WELCOME, as_version=4)))
    assert "Exercise 2 passed: firing_rate_hz agrees with a 2-second simulation for all 40 currents" in text
    assert "Traceback" not in text and "NotImplementedError" not in text


@pytest.mark.notebook
def test_welcome_html_is_self_contained(welcome_handouts):
    for page in welcome_handouts.values():
        assert handout.network_references(page) == []
        assert page.count("data:image/png;base64,") >= 4  # three figures and the panel


# --------------------------------------------------------------------------- PDF and the command line
@pytest.mark.slow
@pytest.mark.notebook
def test_pdf_is_printed_by_headless_chromium(tiny_handouts, tmp_path):
    if handout.find_chromium() is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); CI installs it")
    _, out = tiny_handouts
    pdf = handout.print_pdf(out / "01_tiny.student.html")
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    if shutil.which("pdftotext"):
        (tmp_path / "h.pdf").write_bytes(pdf)
        text = subprocess.run(["pdftotext", str(tmp_path / "h.pdf"), "-"], capture_output=True, text=True,
                              timeout=60).stdout
        assert "PROMPT_MARK" in text and "SOLUTION_ONE" not in text


def test_pdf_without_chromium_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SNNLAB_CHROMIUM", str(tmp_path / "no-such-browser"))
    code_ = handout.main([str(WELCOME), "--to", "pdf", "--out", str(tmp_path / "out")])
    assert code_ == 2
    assert "apt-get install chromium" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before executing anything


def test_handout_refuses_unknown_parameters(tmp_path, capsys):
    assert handout.main([str(WELCOME), "-p", "no_such_parameter", "1", "--out", str(tmp_path)]) == 2
    assert "unknown parameter 'no_such_parameter'" in capsys.readouterr().err


def test_cli_dispatches_to_handout(capsys):
    from snnlab import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["handout", "--help"])
    assert exc.value.code == 0 and "--version" in capsys.readouterr().out
