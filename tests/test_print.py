"""Print quality of the handouts: MyST hide tags, code wrapping, figure sizes, and the machine
checks of a printed PDF (`handout.print_problems`, poppler-utils) on PDFs made here.

The unit tests draw their PDFs with matplotlib (no browser); the slow test prints 00 and 01 with
their small test parameters through headless Chromium and asserts that the checks find nothing.
"""
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from snnlab import book, handout, run

ROOT = Path(__file__).resolve().parents[1]
needs_poppler = pytest.mark.skipif(shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
                                   reason="poppler-utils (pdftoppm, pdftotext) is not installed: apt-get install poppler-utils")


def make_pdf(path: Path, pages: list[list[tuple[float, str, float]]]) -> Path:
    """A4 pages of text lines: each page a list of (height from the bottom 0..1, text, size in pt)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"pdf.fonttype": 42, "font.family": "DejaVu Sans"}), PdfPages(path) as pdf:
        for lines in pages:
            fig = Figure(figsize=(8.27, 11.69))
            for y, text, size in lines:
                fig.text(0.08, y, text, fontsize=size, va="bottom")
            pdf.savefig(fig)
    return path


def full_page(text="body text of a page that is full"):
    return [(0.93 - k * 0.04, f"{text} {k}", 10.5) for k in range(23)]


# --------------------------------------------------------------------------- the checks, on tiny PDFs
@needs_poppler
def test_page_fill_measures_how_far_down_the_ink_reaches(tmp_path):
    pdf = make_pdf(tmp_path / "fill.pdf", [full_page(), full_page()[:5], full_page()[:12], full_page()[:3]])
    fills = handout.page_fills(pdf)
    assert len(fills) == 4
    assert fills[0] > 0.97 and fills[1] < 0.25 and 0.45 < fills[2] < 0.6, fills


@needs_poppler
def test_a_page_80_percent_empty_is_flagged_but_not_the_last(tmp_path):
    pdf = make_pdf(tmp_path / "empty.pdf", [full_page(), full_page()[:4], full_page(), full_page()[:2]])
    problems = handout.print_problems(pdf, "instructor")
    assert len(problems) == 1 and "page 2 is" in problems[0] and "filled" in problems[0], problems


@needs_poppler
def test_a_short_page_before_a_new_section_is_accepted(tmp_path):
    next_section = [(0.93, "Section 3: A refractory period", 10.5)] + full_page()[1:]
    pdf = make_pdf(tmp_path / "section.pdf", [full_page(), full_page()[:4], next_section])
    assert handout.print_problems(pdf, "instructor") == []
    heading = [(0.93, "A study report", 16)] + full_page()[1:]  # any heading: larger than the body
    pdf = make_pdf(tmp_path / "heading.pdf", [full_page(), full_page()[:4], heading])
    assert handout.print_problems(pdf, "instructor") == []


@needs_poppler
def test_small_text_is_flagged_with_its_size(tmp_path):
    pdf = make_pdf(tmp_path / "small.pdf", [full_page() + [(0.02, "tiny legend", 5.0)], full_page()])
    assert [w for w in handout.font_sizes(pdf) if w[2] == "tiny"][0][0] == pytest.approx(5.0, rel=0.05)
    problems = handout.print_problems(pdf, "instructor")
    assert len(problems) == 1 and "5.0 pt on page 1" in problems[0], problems


@needs_poppler
def test_text_running_off_the_right_margin_is_flagged(tmp_path):
    wide = full_page()[:-1] + [(0.02, "a table row much too wide for the paper " * 3 + "edge", 10.5)]
    pdf = make_pdf(tmp_path / "wide.pdf", [full_page(), wide])
    assert handout.words_past_margin(make_pdf(tmp_path / "ok.pdf", [full_page()])) == []
    past = handout.words_past_margin(pdf)
    assert past and {page for page, _, _ in past} == {2} and all(over > 0 for _, _, over in past)
    problems = handout.print_problems(pdf, "instructor")
    assert len(problems) == 1 and "off the right margin on page 2" in problems[0], problems


@needs_poppler
def test_pages_shrunk_to_fit_are_flagged_by_their_body_size(tmp_path):
    shrunk = [[(y, text, 8.3) for y, text, _ in full_page()] for _ in range(2)]  # what 06 and 07 printed at once
    problems = handout.print_problems(make_pdf(tmp_path / "shrunk.pdf", shrunk), "instructor")
    assert len(problems) == 1 and "prints at 8.3 pt, not 10.5 pt" in problems[0], problems


@needs_poppler
def test_error_text_is_flagged_in_student_pdfs_but_not_the_stub(tmp_path):
    stub = [(0.5, "    raise NotImplementedError()", 10)]
    clean = make_pdf(tmp_path / "stub.pdf", [full_page()[:10] + stub + full_page()[11:], full_page()])
    assert handout.print_problems(clean, "student") == []
    broken = make_pdf(tmp_path / "tb.pdf", [full_page(), full_page()[:20] + [(0.05, "Traceback (most recent call last)", 10),
                                                                          (0.02, "NameError: name 'f' is not defined", 10)]])
    problems = handout.print_problems(broken, "student")
    assert problems == ["tb.pdf: page 2 shows error text: NameError, Traceback"], problems
    assert handout.print_problems(broken, "instructor") == []


@needs_poppler
def test_page_count_bounds(tmp_path):
    pdf = make_pdf(tmp_path / "one.pdf", [full_page()])
    assert handout.print_problems(pdf, "instructor") == ["one.pdf: 1 pages, outside 2..45"]
    assert handout.print_problems(pdf, "instructor", pages=(1, 3)) == []


@needs_poppler
def test_network_references_are_flagged(tmp_path):
    pdf = make_pdf(tmp_path / "net.pdf", [full_page(), full_page()])
    assert handout.print_problems(pdf, "instructor", html='<img src="https://example.org/x.png">') == [
        'net.pdf: the HTML fetches <img src="https://example.org/x.png']
    data = pdf.read_bytes().replace(b"%%EOF", b"1 0 obj << /S /Launch /F (x) >> endobj\n%%EOF")
    (tmp_path / "launch.pdf").write_bytes(data)
    assert any("/Launch" in p for p in handout.print_problems(tmp_path / "launch.pdf", "instructor"))


def test_missing_poppler_is_one_line_saying_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(handout.shutil, "which", lambda name: None)
    with pytest.raises(handout.PopplerMissing, match="apt-get install poppler-utils"):
        handout.page_fills(tmp_path / "x.pdf")
    (tmp_path / "a.student.pdf").write_bytes(b"%PDF-1.4")
    state = {}
    assert handout._check_pdfs([tmp_path / "a.student.pdf", tmp_path / "b.pdf"], "fail", state) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "poppler-utils" in err and "Traceback" not in err


# --------------------------------------------------------------------------- tags, code, figures
def code_cell(source, tags=(), text="out"):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = list(tags)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    return cell


def test_hide_tags_in_the_html():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# T"),
        code_cell("gone_cell = 1", ["remove-cell"], "gone-cell-output"),
        code_cell("gone_input = 2", ["remove-input"], "kept-output-2"),
        code_cell("kept_input = 3", ["remove-output", "parameters"], "gone-output-3"),
        code_cell("folded_input = 4", ["hide-input"], "kept-output-4"),
        code_cell("plain_input = 5", [], "kept-output-5"),
    ])
    page = handout.export_html(nb, title="t", version="instructor", resources_path=ROOT)
    text = re.sub(r"<[^>]+>", "", page)
    for gone in ("gone_cell", "gone-cell-output", "gone_input", "gone-output-3"):
        assert gone not in text, gone
    for kept in ("kept-output-2", "kept_input", "folded_input", "kept-output-4", "plain_input", "kept-output-5"):
        assert kept in text, kept
    folded = page[page.index('<details class="snnlab-hide-input">'):]
    assert folded.index("folded_input") < folded.index("</details>") < folded.index("kept-output-4")
    assert page.count("<details") == 1
    assert re.search(r"@media print \{[^@]*details\.snnlab-hide-input \{ display: none", page)


def test_code_lines_wrap_with_their_indentation():
    html = ('<div class="highlight hl-ipython3"><pre><span></span><span class="k">def</span> <span class="nf">f</span>():\n'
            '    <span class="s2">"""two</span>\n<span class="s2">        lines"""</span>\n'
            '        <span class="k">return</span> 1\n</pre></div>')
    out = handout._wrap_code_lines(html)
    lines = re.findall(r'<span class="snnlab-line" style="--snnlab-indent:(\d+)ch">(.*?)</span>(?=<span class="snnlab-line"|</pre>)',
                       out, re.S)
    assert [int(i) for i, _ in lines] == [0, 4, 8, 8]
    assert all(body.count("<span") == body.count("</span>") for _, body in lines)  # spans closed per line
    assert re.sub(r"<[^>]+>", "", out) == re.sub(r"<[^>]+>", "", html)  # copied code keeps its line feeds


def test_table_cells_wrap_after_underscores_and_slashes_but_not_inside_words():
    html = '<table><thead><tr><th class="x_y">dssa_proj/post_unit_sd</th></tr></thead><tr><td><a href="a/b_c">0.0318</a></td></tr></table>'
    out = handout._break_table_names(html)
    assert re.findall(r"<th\b[^>]*>(.*?)</th>", out) == ["dssa_<wbr>proj/<wbr>post_<wbr>unit_<wbr>sd"]
    assert 'class="x_y"' in out and 'href="a/b_c">0.0318</a>' in out  # tags and numbers as they were
    css = handout._template("A4")
    assert re.search(r"td, \.jp-RenderedHTMLCommon th \{ overflow-wrap: break-word;", css)
    assert "anywhere" not in css.split("td, .jp-RenderedHTMLCommon th")[1].split("}")[0]


def test_figures_print_legible_and_under_half_a_page_when_they_can():
    assert handout.figure_print_scale(600, 300) == 1.0                      # small: natural size
    assert handout.figure_print_scale(900, 300) == pytest.approx(703 / 900, rel=0.01)  # page width
    tall = handout.figure_print_scale(700, 600)                              # half the page height
    assert 600 * tall == pytest.approx(118 / 25.4 * 96, rel=0.01)
    very_tall = handout.figure_print_scale(790, 985)                         # not below 6 pt legends
    assert very_tall == handout.MIN_FIGURE_SCALE


def test_display_equations_are_sized_like_inline_ones():
    inline, display = handout.math_svg(r"x^2", False), handout.math_svg(r"x^2", True)
    height = lambda tag: float(re.search(r"height:([\d.]+)pt", tag).group(1))  # noqa: E731
    assert height(inline) == pytest.approx(height(display))
    assert 0.9 * handout.BODY_PT < height(inline) < 1.6 * handout.BODY_PT


def test_display_fractions_are_full_size_but_not_in_exponents():
    assert handout._display_fractions(r"w = \frac{a}{b} e^{-\frac{x}{2}}") == r"w = \dfrac{a}{b} e^{-\frac{x}{2}}"
    height = lambda tag: float(re.search(r"height:([\d.]+)pt", tag).group(1))  # noqa: E731
    assert height(handout.math_svg(r"x = \frac{a}{b}", True)) > 1.5 * height(handout.math_svg(r"x = \frac{a}{b}", False))
    exponent = r"e^{-\frac{x}{2}}"  # a fraction in an exponent stays small in a display, as in TeX
    assert height(handout.math_svg(exponent, True)) == height(handout.math_svg(exponent, False))


# --------------------------------------------------------------------------- --executed
def test_executed_refuses_a_missing_or_different_copy(tmp_path, capsys):
    notebook = ROOT / "notebooks" / "00_welcome.ipynb"
    assert handout.main([str(notebook), "--executed", str(tmp_path), "--to", "html", "--out", str(tmp_path / "o")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no executed copy" in err
    nb = nbformat.read(notebook, as_version=4)
    next(c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])).source += "\nx = 1"
    nbformat.write(nb, tmp_path / notebook.name)
    assert handout.main([str(notebook), "--executed", str(tmp_path), "--to", "html", "--out", str(tmp_path / "o")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "differs from" in err


def test_run_stale_brings_the_copies_up_to_date_before_exporting(tmp_path, monkeypatch, capsys):
    notebook = ROOT / "notebooks" / "00_welcome.ipynb"
    out = ["--to", "html", "--out", str(tmp_path / "o")]
    assert handout.main([str(notebook), "--run-stale", *out]) == 2  # nothing to bring up to date
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--run-stale needs --executed" in err
    calls = []

    def ensure(notebooks, folder, *, progress, jobs):  # what `make handouts` asks snnlab run to do
        calls.append(([p.name for p in notebooks], folder, jobs))
        raise book.BookError("snnlab run failed for 00_welcome.ipynb (its error is above)", code=1)

    monkeypatch.setattr(book, "ensure_executed", ensure)
    assert handout.main([str(notebook), "--executed", str(tmp_path), "--run-stale", "-j", "2", *out]) == 1
    assert calls == [(["00_welcome.ipynb"], tmp_path, 2)]
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())  # nothing exported after a failed run


def test_executed_copy_gets_the_notebooks_tags():
    source = nbformat.v4.new_notebook(cells=[code_cell("a = 1", ["hide-input"]), nbformat.v4.new_markdown_cell("new text")])
    executed = nbformat.v4.new_notebook(cells=[code_cell("a = 1", [], "ran"), nbformat.v4.new_markdown_cell("old text")])
    shown = handout.version_notebook(source, executed, "instructor")
    assert shown.cells[0].metadata["tags"] == ["hide-input"] and shown.cells[0].outputs[0]["text"] == "ran"
    assert shown.cells[1].source == "new text"


# --------------------------------------------------------------------------- the real handouts
@pytest.mark.slow
@pytest.mark.notebook
@needs_poppler
@pytest.mark.parametrize("name", ["00_welcome", "01_florian_stdp"])
def test_printed_handouts_pass_the_print_checks(name, tmp_path):
    if handout.find_chromium() is None:
        pytest.skip("no Chromium to print with (apt-get install chromium)")
    notebook = ROOT / "notebooks" / f"{name}.ipynb"
    parameters = run.notebook_metadata(notebook).get("test_parameters", {})
    (tmp_path / "work").mkdir()
    paths = handout.make_handouts(notebook, versions=list(handout.VERSIONS), formats=["pdf"], out=tmp_path,
                                  parameters=parameters, workdir=tmp_path / "work")
    assert [p.name for p in paths] == [f"{name}.student.pdf", f"{name}.instructor.pdf"]
    for path in paths:
        version = path.name.split(".")[1]
        assert handout.print_problems(path, version) == []
        if version == "student":
            assert handout.page_texts(path)[0].count("Student handout") == 1


@pytest.mark.parametrize("tex", [r"\int_{-R}^{R} g' = \frac2\pi\arctan(\frac\pi2\alpha_s R)",
                                 r"y_i = q_i + \sum_{j>i} m_{ij} \pmod R", r"\sum_i y_i \pmod{2^b}"])
def test_tex_the_notebooks_use_renders(tex):
    assert handout.math_svg(tex) is not None  # else the handout would print the TeX source


def test_inline_math_over_a_line_end_and_mathcal_without_braces_render():
    out = handout.render_math("decay by $\\text{lr}\\cdot\n  2\\cdot10^{-3}$ per step; $$\\mathcal L(\\theta) = 1$$")
    assert "$" not in out and out.count('class="snnlab-math"') == 2
    assert handout.render_math("costs $5 and\n\n$6") == "costs $5 and\n\n$6"  # not over a blank line


def test_paper_size_is_a4_or_letter():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T")])
    assert "size: A4;" in handout.export_html(nb, title="t", version="student", resources_path=ROOT)
    assert "size: Letter;" in handout.export_html(nb, title="t", version="student", resources_path=ROOT, paper="Letter")
    with pytest.raises(ValueError, match="paper"):
        handout.export_html(nb, title="t", version="student", resources_path=ROOT, paper="A3")
    assert handout.figure_print_scale(1000, 300, "Letter") > handout.figure_print_scale(1000, 300, "A4")
