"""``snnlab book``: the whole course as one static website (``make book``).

    snnlab book [--executed DIR] [--out DIR] [-j N] [--no-pdf] [--no-progress] [--debug]

Builds every ``notebooks/NN_*.ipynb``, executed, into one site in ``<out>/html`` (default
``build/book/html``): the course map of ``notebooks/README.md`` as the front page, one page per
notebook with navigation (sidebar, next/previous) and Sphinx's own search, and at the top of each
page a download box with the student notebook (``.ipynb``) and the student handout (PDF), both made
by :func:`snnlab.handout.write_handout` from the same executed copy. Open ``index.html`` from a
folder or copy ``<out>/html`` to any static host: nothing is fetched from the network (MathJax,
fonts and scripts are bundled; :func:`check_offline` enforces it after every build).

**No second execution.** The pages show the executed copies that ``snnlab run`` leaves in
``--executed`` (default ``build/notebooks``). A copy is used when its code cells equal the notebook's
(:func:`copy_problem`); only the missing or stale ones are executed, by ``snnlab run`` itself, into
that folder. Cell tags and markdown come from the *source* notebook (a copy may predate a tag
change); only outputs come from the copy.

**What a page shows.** Students read the site, so markdown cells tagged ``instructor`` are dropped.
Solution cells keep their code, collapsed behind a "show" toggle (``hide-input``): the site is where
a stuck student checks a solution, as in the course books this kit follows (Neuromatch's "Click for
solution"), while the figure each solution produces stays visible for the lecture that follows it;
the notebook to work in is the student download, which has nbgrader's stubs instead. The MyST tags
``remove-input``, ``remove-output``, ``remove-cell`` and ``hide-input`` on the notebooks are honoured
by myst-nb as they are.

**Why Sphinx + myst-nb + sphinx-book-theme.** They are the Python half of the Jupyter Book ecosystem,
all plain wheels on PyPI (pinned in constraints.txt): the theme's CSS, JavaScript and fonts ship
inside the wheel, so a build needs neither Node.js nor the network. Jupyter Book 2 / mystmd download
their site theme (a Node.js application) at build time, which fails offline and on locked-down
hosts. The Sphinx configuration is committed in ``docs/book/conf.py`` (the one place to change the
site's look); this module only stages the pages into ``<out>/src`` and calls Sphinx with
``-c docs/book``. A Sphinx warning (a broken link, a page outside the table of contents) fails the
build. A rebuild is incremental: unchanged pages and downloads are kept (about 15 s on 2 cores).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
import time
from pathlib import Path

from . import handout, run
from .errors import command_boundary
from .utils import atomic_write_bytes, atomic_write_text, repo_root

INSTRUCTOR, SOLUTION = "instructor", "solution"
# Tags that already say how a cell's input is shown: hide-input is not added on top of them.
SHOWING_TAGS = {"remove-input", "remove-cell", "hide-input", "hide-cell"}
CHECKED_SUFFIXES = (".html", ".js", ".css")
_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]\n]+)\]\((?P<target>[^)\s]+)\)")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class BookError(run.RunError):
    """A user-facing ``snnlab book`` failure (printed in one line)."""


# --------------------------------------------------------------------------- executed copies
def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def code_sources(nb) -> list[str]:
    """The code cells' sources, without the cells a papermill run adds (injected parameters, error banner)."""
    return [c.source for c in handout.run_code_cells(nb)]


def copy_problem(notebook: Path, executed: Path) -> str | None:
    """Why the executed copy ``executed`` cannot serve ``notebook`` (``None``: it can).

    A copy serves when it exists, is readable and its code cells equal the notebook's, in order.
    Markdown and tags may differ: the site takes them from the notebook.
    """
    import nbformat

    if not executed.is_file():
        return "no executed copy"
    try:
        ran = nbformat.read(executed, as_version=4)
    except Exception as exc:  # nbformat raises several types for a damaged file
        return f"unreadable copy ({type(exc).__name__})"
    mine, theirs = code_sources(nbformat.read(notebook, as_version=4)), code_sources(ran)
    if len(mine) != len(theirs):
        return f"the copy has {len(theirs)} code cells, the notebook {len(mine)}"
    for k, (a, b) in enumerate(zip(mine, theirs), 1):
        if a != b:
            return f"code cell {k} differs from the notebook's"
    if any(c.get("execution_count") is None and c.source.strip()
           for c in handout.run_code_cells(ran)):
        return "the copy has cells that did not run"
    return None


def ensure_executed(notebooks: list[Path], executed_dir: Path, *, progress: bool = True, jobs: int = 1) -> None:
    """Run ``snnlab run`` for the notebooks whose copy in ``executed_dir`` is missing or stale; one line each.

    ``jobs`` > 1 runs that many notebooks at once (``snnlab run -j``), each kernel with its share of the cores.
    """
    stale = []
    for i, notebook in enumerate(notebooks, 1):
        problem = copy_problem(notebook, executed_dir / notebook.name)
        where = executed_dir / notebook.name
        if problem is None:
            params = _injected(where)
            print(f"[{i}/{len(notebooks)}] {notebook.name}: using {where}"
                  + (f" (parameters {params})" if params else " (defaults)"), flush=True)
        else:
            print(f"[{i}/{len(notebooks)}] {notebook.name}: {problem}; executing it", flush=True)
            stale.append(notebook)
    if not stale:
        return
    argv = [*(str(p) for p in stale), "--out", str(executed_dir), "-j", str(jobs)]
    argv += [] if progress else ["--no-progress"]
    if run.main(argv) != 0:
        raise BookError(f"snnlab run failed for {', '.join(p.name for p in stale)} (its error is above)", code=1)
    for notebook in stale:  # snnlab run commits only complete runs, but say so if that ever changes
        problem = copy_problem(notebook, executed_dir / notebook.name)
        if problem is not None:
            raise BookError(f"{notebook.name}: after snnlab run: {problem}", code=1)


def _injected(path: Path) -> dict:
    """The parameters papermill injected into an executed copy (empty: the defaults)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return dict(data.get("metadata", {}).get("papermill", {}).get("parameters", {}) or {})


# --------------------------------------------------------------------------- links and the front page
def rewrite_links(markdown: str, pages: dict[str, str], *, index: str = "index") -> str:
    """Point the relative links of ``markdown`` (written for ``notebooks/``) at the site's pages.

    ``pages`` maps a notebook file name (``01_florian_stdp.ipynb``) to its page title. A link to a
    notebook becomes a ``{doc}`` reference to its page (link text that is the file name becomes the
    title); ``README.md`` (the course map) becomes the front page ``index``; a link with an anchor
    stays a MyST link to the page's heading. A relative link to anything else (a file outside the
    site) keeps its text as code, since the site cannot serve it. Absolute URLs and ``#anchors`` stay.
    """
    def replace(match: re.Match) -> str:
        text, target = match.group("text"), match.group("target")
        if _SCHEME.match(target) or target.startswith(("#", "/")):
            return match.group(0)
        path, _, anchor = target.partition("#")
        name = path.rsplit("/", 1)[-1]
        if path.startswith("../") or "/" in path.lstrip("./"):
            name = None  # only files of notebooks/ itself are pages
        if name == "README.md":
            doc, title = index, "course map"
        elif name in pages:
            doc, title = Path(name).stem, pages[name]
        else:
            return f"{text} (`{target}`)" if text != target else f"`{target}`"
        shown = title if text.strip("` ") in (name, path) else text
        if anchor:
            return f"[{shown}]({doc}{'.ipynb' if doc != index else '.md'}#{anchor})"
        if any(ch in shown for ch in "<>`"):  # a {doc} role cannot carry these in its text
            return f"[{shown}]({doc}{'.ipynb' if doc != index else '.md'})"
        return f"{{doc}}`{shown} <{doc}>`"

    return _LINK.sub(replace, markdown)


def course_map_section(readme: str) -> str:
    """The ``## Course map`` section of ``notebooks/README.md`` (up to the next ``##`` heading)."""
    match = re.search(r"^## Course map[ \t]*\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    if match is None:
        raise BookError("notebooks/README.md has no '## Course map' section for the front page")
    return match.group(1).strip()


def front_page(readme: str, pages: dict[str, str], *, title: str) -> str:
    """``index.md``: the course map with links to the pages, and the table of contents (hidden)."""
    toc = "\n".join(Path(name).stem for name in pages)
    return (f"# {title}\n\n## Course map\n\n{rewrite_links(course_map_section(readme), pages)}\n\n"
            "Each page has, at its top, the student notebook to work in and its printable handout.\n\n"
            f"```{{toctree}}\n:hidden:\n:maxdepth: 1\n\n{toc}\n```\n")


# --------------------------------------------------------------------------- pages
def download_box(stem: str, files: list[tuple[str, str]]) -> str:
    """A MyST admonition linking the page's downloads: ``files`` is ``[(label, path under src), ...]``."""
    items = "\n".join(f"- {{download}}`{label} <{path}>`" for label, path in files)
    return f"```{{admonition}} Downloads for this session\n:class: tip snnlab-downloads\n{items}\n```"


def page_notebook(source, executed, *, pages: dict[str, str], box: str | None = None):
    """The notebook a page shows: ``source``'s cells and tags with ``executed``'s outputs.

    The page starts from the handouts' instructor version (:func:`snnlab.handout.version_notebook`).
    Instructor markdown is dropped, the CDN MathJax that plotly figures request is removed (the site
    bundles MathJax; plotly.js itself is inline, see ``snnlab.plots.show_plotly``), solution code is
    collapsed (``hide-input``), links point at the site's pages, the parameters a run injected are
    shown after the ``parameters`` cell, and ``box`` (markdown) goes right under the page's title.
    Raises ``BookError`` if the code differs.
    """
    import nbformat

    try:  # one place puts a run's outputs on the source cells: the handouts' instructor version
        nb = handout.version_notebook(source, executed, "instructor")
    except ValueError as exc:
        raise BookError(f"{exc}", code=1) from exc
    cells = []
    for cell in nb.cells:
        tags = _tags(cell)
        if cell.cell_type == "markdown":
            if INSTRUCTOR in tags:
                continue
            cell.source = rewrite_links(cell.source, pages)
        elif cell.cell_type == "code":
            for output in cell.outputs:
                # plotly's notebook renderer asks a CDN for MathJax with every figure; the site has its own
                handout.drop_cdn_mathjax(output)
            if SOLUTION in tags and not tags & SHOWING_TAGS:
                cell.metadata["tags"] = [*cell.metadata.get("tags", []), "hide-input"]
        cells.append(cell)
    if box is not None:
        first = next((k for k, c in enumerate(cells) if c.cell_type == "markdown"), None)
        heading = re.match(r"\s*#[^\n]*\n?", cells[first].source) if first is not None else None
        if heading:  # title | box | the rest of the first cell
            rest = cells[first].source[heading.end():]
            cells[first].source = heading.group(0).rstrip("\n")
            extra = [nbformat.v4.new_markdown_cell(box)]
            if rest.strip():
                extra.append(nbformat.v4.new_markdown_cell(rest))
            cells[first + 1:first + 1] = extra
        else:
            cells.insert(0, nbformat.v4.new_markdown_cell(box))
    nb.cells = cells
    nb.metadata.pop("widgets", None)  # nothing to restore: panels show their static default figure
    if "language_info" in executed.metadata:
        nb.metadata["language_info"] = executed.metadata["language_info"]
    return nb


def _write_if_changed(path: Path, text: str) -> None:
    """Keep the file (and its time stamp, so Sphinx skips the page) when its text is the same."""
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        atomic_write_text(path, text)


def write_downloads(notebook: Path, executed_path: Path, folder: Path, *, pdf: bool,
                    chromium: str | None) -> list[tuple[str, str]]:
    """The student notebook and PDF of ``notebook`` in ``folder``, from its executed copy.

    Reused when the notebook, the copy and snnlab's handout code are the same as last time (a
    ``.<stem>.key`` file holds their hash): printing a PDF takes Chromium several seconds.
    """
    import nbformat

    formats = ["ipynb", "pdf"] if pdf else ["ipynb"]
    names = [f"{notebook.stem}.student.{fmt}" for fmt in formats]
    digest = hashlib.sha256()
    for part in (notebook, executed_path, Path(handout.__file__)):
        digest.update(part.read_bytes())
    digest.update(repr(formats).encode())
    key_file = folder / f".{notebook.stem}.key"
    key = digest.hexdigest()
    fresh = key_file.is_file() and key_file.read_text() == key and all((folder / n).is_file() for n in names)
    if not fresh:
        executed = nbformat.read(executed_path, as_version=4)
        with tempfile.TemporaryDirectory(prefix="snnlab-book-") as tmp:
            handout.write_handout(notebook, executed, version="student", formats=formats, out=folder,
                                  workdir=Path(tmp), chromium=chromium)
        atomic_write_text(key_file, key)
    labels = {"ipynb": "Student notebook (.ipynb): the exercises, to work in Jupyter",
              "pdf": "Student handout (PDF): the same session, to print"}
    return [(labels[fmt], f"{folder.name}/{name}") for fmt, name in zip(formats, names)]


def stage(notebooks: list[Path], executed_dir: Path, src: Path, *, readme: Path, pdf: bool,
          chromium: str | None, title: str) -> None:
    """Write the site's sources into ``src``: ``index.md``, one ``.ipynb`` page per notebook, downloads."""
    import nbformat

    src.mkdir(parents=True, exist_ok=True)
    for old in src.glob("*.ipynb"):  # a notebook renamed or removed since the last build: no orphan page
        if old.name not in {nb.name for nb in notebooks}:
            old.unlink()
    pages = {nb.name: run.notebook_metadata(nb).get("title") or nb.stem for nb in notebooks}
    for i, notebook in enumerate(notebooks, 1):
        start = time.perf_counter()
        executed_path = executed_dir / notebook.name
        files = write_downloads(notebook, executed_path, src / "downloads", pdf=pdf, chromium=chromium)
        source = nbformat.read(notebook, as_version=4)
        page = page_notebook(source, nbformat.read(executed_path, as_version=4), pages=pages,
                             box=download_box(notebook.stem, files))
        _write_if_changed(src / notebook.name, nbformat.writes(page))
        print(f"[{i}/{len(notebooks)}] {notebook.name}: page and downloads ({time.perf_counter() - start:.1f} s)",
              flush=True)
    try:
        readme_text = readme.read_text(encoding="utf-8")
    except OSError as exc:
        raise BookError(f"cannot read the course map {readme}: {exc.strerror}", code=1) from exc
    _write_if_changed(src / "index.md", front_page(readme_text, pages, title=title))


# --------------------------------------------------------------------------- build and check
def sphinx_build(src: Path, conf_dir: Path, html: Path, doctrees: Path) -> None:
    """Sphinx's html builder, in this process. A warning fails the build (``-W``): a broken link or
    reference in a page is a bug of the course, not something to publish."""
    from sphinx.cmd.build import build_main

    code = build_main(["-b", "html", "-q", "-W", "--keep-going", "-c", str(conf_dir), "-d", str(doctrees), str(src), str(html)])
    if code != 0:
        raise BookError(f"Sphinx failed (exit {code}): see its warnings above", code=1)


def check_offline(html: Path) -> list[str]:
    """``file: reference`` for every network fetch in the site's .html, .js and .css files."""
    problems = []
    for path in sorted(html.rglob("*")):
        if path.suffix in CHECKED_SUFFIXES and path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            problems += [f"{path.relative_to(html)}: {ref}" for ref in handout.network_references(text)]
    return problems


def _size(folder: Path) -> str:
    return f"{sum(p.stat().st_size for p in folder.rglob('*') if p.is_file()) / 1e6:.1f} MB"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snnlab book",
        description="Build the course website: every notebook, executed, as one static site with navigation, "
                    "search, the course map as front page and the student downloads on each page. Works "
                    "offline from a folder; copy <out>/html to any static host to publish it.",
    )
    parser.add_argument("--executed", default="build/notebooks", metavar="DIR",
                        help="executed copies from `snnlab run` to reuse; missing or stale ones are executed "
                             "into this folder (default: %(default)s)")
    parser.add_argument("--out", default="build/book", metavar="DIR",
                        help="output folder; the site is <out>/html (default: %(default)s)")
    parser.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                        help="execute up to N missing or stale notebooks at once, as `snnlab run -j N` (default: 1)")
    parser.add_argument("--no-pdf", action="store_true",
                        help="no student PDFs (they need Chromium); the student notebooks are still offered")
    parser.add_argument("--no-progress", action="store_true", help="no per-cell progress bars when executing")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of input errors too (as SNNLAB_DEBUG=1 does)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return command_boundary("snnlab book", lambda: _main(args), debug=args.debug)


def _main(args) -> int:
    start = time.perf_counter()
    if args.jobs < 1:
        raise BookError(f"-j/--jobs must be >= 1, got {args.jobs}")
    root = repo_root()
    if root is None or not (root / "docs" / "book" / "conf.py").is_file():
        raise BookError("snnlab book needs the snnlab checkout (docs/book/conf.py, notebooks/): run it from there")
    notebooks = run.resolve_notebooks([])
    out = run.check_output_folder("--out", args.out)
    executed_dir = run.check_output_folder("--executed", args.executed)
    chromium = None
    if not args.no_pdf:
        chromium = handout.find_chromium()
        if chromium is None:  # before minutes of execution, not after
            raise BookError(handout.CHROMIUM_HINT.replace("HTML handouts (--to html) need no browser.",
                                                          "Or build without PDFs: snnlab book --no-pdf."))
    ensure_executed(notebooks, executed_dir, progress=not args.no_progress, jobs=args.jobs)
    staged = time.perf_counter()
    src, html = out / "src", out / "html"
    stage(notebooks, executed_dir, src, readme=root / "notebooks" / "README.md", pdf=not args.no_pdf,
          chromium=chromium, title="Plasticity in spiking neural networks")
    sphinx_build(src, root / "docs" / "book", html, out / ".doctrees")
    problems = check_offline(html)
    if problems:
        raise BookError(f"the site would fetch from the network ({len(problems)} references): "
                        + "; ".join(problems[:5]), code=1)
    end = time.perf_counter()
    print(f"site of {len(notebooks)} notebooks in {html}/ ({_size(html)}); open {html / 'index.html'} "
          f"or copy the folder to any static host. {end - staged:.0f} s for the site, {end - start:.0f} s in all.",
          flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
