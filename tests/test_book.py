"""`snnlab book`'s pieces that can be wrong without a browser: links, stale copies, pages, the offline check.

The site itself is built and opened in Chromium by tests/browser/test_book_browser.py (slow).
"""
import json
from pathlib import Path

import nbformat
import pytest

from snnlab import book, cli

PAGES = {"00_welcome.ipynb": "Welcome", "01_florian_stdp.ipynb": "Florian 2007"}


# --------------------------------------------------------------------------- links and the front page
def test_rewrite_links_points_notebook_links_at_their_pages_with_titles():
    text = "| 1 | [00_welcome.ipynb](00_welcome.ipynb) | the LIF neuron |"
    assert book.rewrite_links(text, PAGES) == "| 1 | {doc}`Welcome <00_welcome>` | the LIF neuron |"


def test_rewrite_links_keeps_chosen_text_and_anchors_and_maps_readme_to_the_front_page():
    text = ("[next: 01 Florian](01_florian_stdp.ipynb) and [course map](README.md) "
            "and [XOR](01_florian_stdp.ipynb#section-4-florian-s-xor-task)")
    assert book.rewrite_links(text, PAGES) == (
        "{doc}`next: 01 Florian <01_florian_stdp>` and {doc}`course map <index>` "
        "and [XOR](01_florian_stdp.ipynb#section-4-florian-s-xor-task)")


def test_rewrite_links_leaves_urls_anchors_and_images_but_unlinks_files_outside_the_site():
    text = ("[paper](https://doi.org/10.1162/neco.2007.19.6.1468) [up](#learning-goals) "
            "![fig](figure.png) [config](../configs/cifar.yaml) [data](data/README.md) "
            "[02_mozafari_rstdp.ipynb](02_mozafari_rstdp.ipynb)")
    out = book.rewrite_links(text, PAGES)
    assert out.startswith("[paper](https://doi.org/10.1162/neco.2007.19.6.1468) [up](#learning-goals) "
                          "![fig](figure.png) ")
    assert "config (`../configs/cifar.yaml`)" in out and "data (`data/README.md`)" in out
    # a notebook that is not a page of this site is a file outside it too
    assert "`02_mozafari_rstdp.ipynb`" in out and "](02_mozafari" not in out


def test_course_map_section_stops_at_the_next_heading_and_is_required():
    readme = "# Notebooks\n\n## Course map\nThe map.\n\n| a |\n|---|\n\n## Cell order\n1. x\n"
    assert book.course_map_section(readme) == "The map.\n\n| a |\n|---|"
    with pytest.raises(book.BookError, match="Course map"):
        book.course_map_section("# Notebooks\n\n## Cell order\n")


def test_front_page_is_the_real_course_map_with_every_notebook_linked_to_its_page():
    root = Path(__file__).resolve().parents[1]
    pages = {p.name: p.stem for p in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
    index = book.front_page((root / "notebooks" / "README.md").read_text(encoding="utf-8"), pages, title="T")
    assert ".ipynb)" not in index  # no link still points at a notebook file
    for stem in (Path(n).stem for n in pages):
        assert f"<{stem}>`" in index, stem  # the map links it ...
        assert f"\n{stem}\n" in index.split("{toctree}")[1], stem  # ... and the toctree has it, in order


# --------------------------------------------------------------------------- executed copies
def _source(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title\nGoals.", metadata={}),
        nbformat.v4.new_code_cell("seed = 0", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("x = seed + 1", metadata={"tags": ["remove-input"]}),
        nbformat.v4.new_markdown_cell("**Instructor notes** secret", metadata={"tags": ["instructor"]}),
        nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION",
                                  metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell("assert f() == 1", metadata={"tags": ["check"]}),
        nbformat.v4.new_markdown_cell("[next](01_florian_stdp.ipynb)"),
    ]
    nbformat.write(nb, path)
    return path


def _executed(source: Path, path: Path, *, seed: int = 3) -> Path:
    """What papermill leaves: the injected parameters after the parameters cell, outputs, counts."""
    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("tags", None)  # an old copy: tags added to the notebook since
    for n, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = n + 1
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"out {n}\n")]
    injected = nbformat.v4.new_code_cell(f"seed = {seed}", metadata={"tags": ["injected-parameters"]})
    injected.execution_count = 9
    nb.cells.insert(2, injected)
    nb.metadata["papermill"] = {"parameters": {"seed": seed}}
    nbformat.write(nb, path)
    return path


def test_copy_problem_accepts_a_copy_whose_code_equals_the_notebook_despite_other_tags(tmp_path):
    source = _source(tmp_path / "00_welcome.ipynb")
    copy = _executed(source, tmp_path / "copy.ipynb")
    assert book.copy_problem(source, copy) is None
    nb = nbformat.read(source, as_version=4)
    nb.cells[0].source = "# Title\nOther goals."  # markdown changed: the copy still serves
    nbformat.write(nb, source)
    assert book.copy_problem(source, copy) is None


def test_copy_problem_names_what_makes_a_copy_stale(tmp_path):
    source = _source(tmp_path / "00_welcome.ipynb")
    copy = _executed(source, tmp_path / "copy.ipynb")
    assert book.copy_problem(source, tmp_path / "missing.ipynb") == "no executed copy"
    nb = nbformat.read(source, as_version=4)
    nb.cells[2].source = "x = seed + 2"
    nbformat.write(nb, source)
    assert book.copy_problem(source, copy) == "code cell 2 differs from the notebook's"
    nb.cells.append(nbformat.v4.new_code_cell("y = 1"))
    nbformat.write(nb, source)
    assert book.copy_problem(source, copy) == "the copy has 4 code cells, the notebook 5"
    (tmp_path / "broken.ipynb").write_text("{not json")
    assert book.copy_problem(source, tmp_path / "broken.ipynb").startswith("unreadable copy")


def test_copy_problem_refuses_a_copy_with_cells_that_did_not_run(tmp_path):
    source = _source(tmp_path / "00_welcome.ipynb")
    copy = _executed(source, tmp_path / "copy.ipynb")
    nb = nbformat.read(copy, as_version=4)
    nb.cells[-2].execution_count = None
    nbformat.write(nb, copy)
    assert book.copy_problem(source, copy) == "the copy has cells that did not run"


def test_ensure_executed_runs_snnlab_run_for_the_stale_and_missing_copies_only(tmp_path, monkeypatch, capsys):
    folder, executed = tmp_path / "notebooks", tmp_path / "executed"
    folder.mkdir(), executed.mkdir()
    fresh, stale, missing = (_source(folder / n) for n in ("00_a.ipynb", "01_b.ipynb", "02_c.ipynb"))
    _executed(fresh, executed / fresh.name)
    _executed(stale, executed / stale.name)
    nb = nbformat.read(stale, as_version=4)
    nb.cells[1].source = "seed = 1"
    nbformat.write(nb, stale)
    calls = []

    def fake_run(argv):
        calls.append(argv)
        for name in argv[:2]:  # "snnlab run" writes the fresh copies
            _executed(Path(name), executed / Path(name).name)
        return 0

    monkeypatch.setattr(book.run, "main", fake_run)
    book.ensure_executed([fresh, stale, missing], executed, progress=False)
    assert calls == [[str(stale), str(missing), "--out", str(executed), "-j", "1", "--no-progress"]]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[1/3] 00_a.ipynb: using") and "(parameters {'seed': 3})" in lines[0]
    assert lines[1] == "[2/3] 01_b.ipynb: code cell 1 differs from the notebook's; executing it"
    assert lines[2] == "[3/3] 02_c.ipynb: no executed copy; executing it"

    monkeypatch.setattr(book.run, "main", lambda argv: 1)
    (executed / missing.name).unlink()
    with pytest.raises(book.BookError, match="snnlab run failed for 02_c.ipynb"):
        book.ensure_executed([fresh, missing], executed, progress=False)


# --------------------------------------------------------------------------- pages
def test_page_notebook_takes_tags_from_the_source_and_outputs_from_the_copy(tmp_path):
    source = _source(tmp_path / "00_welcome.ipynb")
    copy = _executed(source, tmp_path / "copy.ipynb", seed=7)
    page = book.page_notebook(nbformat.read(source, as_version=4), nbformat.read(copy, as_version=4),
                              pages=PAGES, box="BOX")
    sources = [c.source for c in page.cells]
    assert sources[:3] == ["# Title", "BOX", "Goals."]  # the box right under the title
    assert not any("Instructor notes" in s for s in sources)
    code = [c for c in page.cells if c.cell_type == "code"]
    assert [c.source for c in code] == ["seed = 0", "seed = 7", "x = seed + 1", code[3].source, "assert f() == 1"]
    assert "injected-parameters" in code[1].metadata["tags"]  # shown after the parameters cell
    assert code[2].metadata["tags"] == ["remove-input"]  # the notebook's tag, which the copy lacked
    assert code[3].metadata["tags"] == ["solution", "hide-input"]  # solution collapsed
    assert [[o["text"] for o in c.outputs] for c in code] == [["out 0\n"], [], ["out 1\n"], ["out 2\n"], ["out 3\n"]]
    assert sources[-1] == "{doc}`next <01_florian_stdp>`"
    assert "widgets" not in page.metadata
    nbformat.validate(page)  # ids unique, a notebook Sphinx can read


def test_page_notebook_drops_the_cdn_mathjax_that_plotly_figures_ask_for(tmp_path):
    source = _source(tmp_path / "00_welcome.ipynb")
    copy = nbformat.read(_executed(source, tmp_path / "copy.ipynb"), as_version=4)
    figure = ('<div>plotly</div><script src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/3.2.2/es5/tex-svg.min.js">'
              '</script><script type="text/javascript">window.PLOTLYENV={};</script>')
    copy.cells[3].outputs = [nbformat.v4.new_output("display_data", data={"text/html": figure})]
    page = book.page_notebook(nbformat.read(source, as_version=4), copy, pages=PAGES)
    html = next(c for c in page.cells if c.source == "x = seed + 1").outputs[0]["data"]["text/html"]
    assert html == '<div>plotly</div><script type="text/javascript">window.PLOTLYENV={};</script>'


def test_page_notebook_refuses_a_copy_with_other_code(tmp_path):
    source = _source(tmp_path / "00_welcome.ipynb")
    copy = nbformat.read(_executed(source, tmp_path / "copy.ipynb"), as_version=4)
    copy.cells[3].source = "x = 42"
    with pytest.raises(book.BookError, match="differ"):
        book.page_notebook(nbformat.read(source, as_version=4), copy, pages=PAGES)


def test_download_box_links_each_file_with_the_download_role():
    box = book.download_box("01_x", [("Student notebook", "downloads/01_x.student.ipynb")])
    assert box.splitlines() == ["```{admonition} Downloads for this session", ":class: tip snnlab-downloads",
                                "- {download}`Student notebook <downloads/01_x.student.ipynb>`", "```"]


# --------------------------------------------------------------------------- the offline check
def test_check_offline_finds_fetches_in_html_css_and_js_but_not_links(tmp_path):
    (tmp_path / "_static").mkdir()
    (tmp_path / "page.html").write_text(
        '<a href="https://doi.org/10.1/x">paper</a><script src="_static/local.js"></script>'
        '<img src="_images/fig.png">')
    (tmp_path / "cdn.html").write_text('<script src="https://cdn.example.org/require.min.js"></script>')
    (tmp_path / "_static" / "theme.css").write_text(
        "@font-face { src: url(fonts/a.woff2); }\n@import url('https://fonts.googleapis.com/css?family=Lato');")
    (tmp_path / "_static" / "app.js").write_text('const m = import("https://esm.sh/plotly");')
    (tmp_path / "_static" / "notes.txt").write_text('<script src="https://ignored.example"></script>')
    problems = book.check_offline(tmp_path)
    assert [p.split(":")[0] for p in problems] == ["_static/app.js", "_static/theme.css", "cdn.html"]
    assert "fonts.googleapis.com" in problems[1] and "cdn.example.org" in problems[2]


# --------------------------------------------------------------------------- command line
def test_book_command_has_help_and_refuses_a_file_as_out_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["book", "--help"])
    assert done.value.code == 0 and "--executed" in capsys.readouterr().out
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli.main(["book", "--out", str(blocker)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("snnlab book: --out") and "is a file" in err
    assert cli.main(["book", "-j", "0"]) == 2
    assert capsys.readouterr().err.strip() == "snnlab book: -j/--jobs must be >= 1, got 0"


def test_book_without_chromium_fails_at_once_naming_the_way_out(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SNNLAB_CHROMIUM", str(tmp_path / "no-such-browser"))
    assert cli.main(["book", "--out", str(tmp_path / "site"), "--executed", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Chromium" in err and "--no-pdf" in err
    assert not (tmp_path / "none").exists() and not (tmp_path / "site").exists()  # nothing ran or was written
