"""The course website (`snnlab book`) in a real browser: Debian's chromium, driven by Playwright.

The module runs every course notebook once with its small `metadata.snnlab.test_parameters`
(`snnlab run NOTEBOOK -p ... --out <tmp>`), builds the site from those copies with `snnlab book
--executed <tmp>` (which must reuse them, not execute again), serves `<out>/html` from a static
server on 127.0.0.1 (a random port), and opens it: every notebook page loads with its figures as
images of non-zero natural size, its equations typeset by the bundled MathJax (no raw `$$`), its
download box linking a student notebook and a student PDF that the server really has; the front page
links every notebook page; Sphinx's search finds "eligibility". No JavaScript error, and no request
may leave 127.0.0.1 (every other request is aborted and reported).

Screenshots and each page's console go to $SNNLAB_ARTIFACTS/book/ (CI keeps them) or a temporary
folder. Skipped, with the reason, when chromium or Playwright's Python package is missing. Run
locally: `.venv/bin/python -m pytest tests/browser/test_book_browser.py -p no:xdist -v`.
"""
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright's Python package is missing: .venv/bin/pip install -c constraints.txt playwright",
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.notebook,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None,
                       reason="Debian's chromium is not installed (apt-get install chromium); CI installs it"),
]

ROOT = Path(__file__).resolve().parents[2]
COURSE = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BOOK_TIMEOUT_S = 900   # staging, 8 PDFs and Sphinx
PAGE_READY_MS = 60_000
JS_ERROR = re.compile(r"\b(TypeError|ReferenceError|SyntaxError|RangeError|EvalError|URIError|Uncaught|Error: )")


def snnlab(*args: str, timeout: float) -> subprocess.CompletedProcess:
    """`python -m snnlab.cli ARGS` from the checkout (this worktree's snnlab, not an installed one)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-m", "snnlab.cli", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"snnlab {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n" \
                                   f"{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("SNNLAB_ARTIFACTS") or tmp_path_factory.mktemp("artifacts")) / "book"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def executed(tmp_path_factory, quick_copy) -> Path:
    """Every course notebook executed once on its test parameters, as `snnlab run` leaves them.

    $SNNLAB_BOOK_EXECUTED names a folder of executed copies to use instead (e.g. build/notebooks,
    the defaults that `make book` uses): the same checks then cover the published site.
    """
    given = os.environ.get("SNNLAB_BOOK_EXECUTED")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("executed")
    # the copies tests/test_notebooks.py checks (conftest.quick_copy); from the end of the course, so
    # that a worker running that module from the start meets this one halfway instead of waiting
    for name in reversed(COURSE):
        folder, code = quick_copy(ROOT / "notebooks" / name)
        assert code == 0, f"snnlab run {name} with its test parameters failed (see tests/test_notebooks.py)"
        shutil.copy(folder / name, out / name)
    return out


@pytest.fixture(scope="module")
def site(executed, tmp_path_factory, artifacts) -> Path:
    out = tmp_path_factory.mktemp("book")
    before = {p: p.stat().st_mtime_ns for p in executed.glob("*.ipynb")}
    result = snnlab("book", "--executed", str(executed), "--out", str(out), "--no-progress", timeout=BOOK_TIMEOUT_S)
    (artifacts / "snnlab_book.log").write_text(result.stdout + result.stderr)
    assert {p: p.stat().st_mtime_ns for p in executed.glob("*.ipynb")} == before, "snnlab book executed again"
    assert "executing it" not in result.stdout
    return out / "html"


@pytest.fixture(scope="module")
def server(site):
    """A static file server for the site on 127.0.0.1, on a port the OS picks."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield chromium
        finally:
            chromium.close()


class Visit:
    """One page in its own context, with the network guard and the error log."""

    def __init__(self, browser, base: str, artifacts: Path, label: str):
        self.base, self.artifacts, self.label = base, artifacts, label
        self.console, self.errors, self.blocked, self.failed = [], [], [], []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self._guard)
        self.page = self.context.new_page()
        self.page.set_default_timeout(PAGE_READY_MS)
        self.page.on("console", lambda m: self.console.append({"type": m.type, "text": m.text}))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.failed.append(r.url))

    def _guard(self, route):
        url = route.request.url
        if url.startswith((self.base + "/", "data:", "blob:")) or url == self.base:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def close(self):
        (self.artifacts / f"{self.label}.console.json").write_text(json.dumps(
            {"console": self.console, "page_errors": self.errors, "blocked": self.blocked, "failed": self.failed},
            indent=1))
        self.context.close()

    def assert_clean(self):
        assert self.blocked == [], f"{self.label}: requests left 127.0.0.1: {self.blocked[:5]}"
        assert self.errors == [], f"{self.label}: JavaScript errors: {self.errors[:5]}"
        js = [m for m in self.console if m["type"] == "error" and JS_ERROR.search(m["text"])]
        assert js == [], f"{self.label}: console errors: {js[:5]}"
        assert self.failed == [], f"{self.label}: requests failed: {self.failed[:5]}"


@pytest.fixture
def visit(browser, server, artifacts, request):
    visits = []

    def open_(label: str) -> Visit:
        v = Visit(browser, server, artifacts, label)
        visits.append(v)
        return v

    yield open_
    for v in visits:
        v.close()


@pytest.mark.parametrize("name", COURSE)
def test_notebook_page_renders_figures_equations_and_downloads(name, visit, server, site, artifacts):
    v = visit(Path(name).stem)
    page = v.page
    response = page.goto(f"{server}/{Path(name).stem}.html", wait_until="load")
    assert response is not None and response.ok, f"{name}: {response and response.status}"
    # MathJax 3 typesets after load; its startup promise settles when the page is done
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
    page.evaluate("() => MathJax.startup.promise")
    title = page.locator("main h1").first.inner_text()
    figures = page.locator("main .cell_output img").evaluate_all(
        "imgs => imgs.map(i => ({src: i.getAttribute('src'), w: i.naturalWidth, h: i.naturalHeight, ok: i.complete}))")
    equations = page.locator("main mjx-container").count()
    math_errors = page.locator("main mjx-merror").all_inner_texts()
    text = page.locator("main").inner_text()
    box = page.locator("main .snnlab-downloads")
    box.scroll_into_view_if_needed()
    box_top = box.bounding_box()["y"] + page.evaluate("() => window.scrollY")
    links = box.locator("a.download").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    hidden_solutions = page.locator("main .cell.tag_solution.tag_hide-input").count()
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / f"{Path(name).stem}.png"))
    page.screenshot(path=str(artifacts / f"{Path(name).stem}.full.png"), full_page=True)
    downloads = {href: page.request.get(f"{server}/{href}") for href in links}
    v.assert_clean()

    assert figures, f"{name}: no figure on the page"
    bad = [f["src"] for f in figures if not (f["ok"] and f["w"] > 0 and f["h"] > 0)]
    assert bad == [], f"{name}: figures that did not load: {bad[:3]}"
    assert equations > 0, f"{name}: no equation typeset by MathJax"
    assert math_errors == [], f"{name}: MathJax could not typeset: {math_errors[:3]}"
    assert "$$" not in text and "\\frac" not in text, f"{name}: raw TeX left on the page"
    assert "Instructor notes" not in text, f"{name}: instructor notes on the students' page"
    assert hidden_solutions >= 1, f"{name}: solution cells are not collapsed (hide-input)"
    assert box_top < 600, f"{name}: the download box is not at the top of the page ({box_top:.0f} px)"
    assert title.strip(), name
    kinds = sorted(Path(h).suffix for h in links)
    assert kinds == [".ipynb", ".pdf"], f"{name}: downloads {links}"
    for href, reply in downloads.items():
        assert reply.ok, f"{name}: {href} -> {reply.status}"
        body = reply.body()
        if href.endswith(".pdf"):
            assert body.startswith(b"%PDF") and len(body) > 10_000, f"{name}: {href} is not a PDF"
        else:
            student = nbformat.reads(body.decode("utf-8"), as_version=4)
            code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
            assert "raise NotImplementedError()" in code, f"{name}: {href} is not the student notebook"
            assert "### BEGIN SOLUTION" not in code, f"{name}: {href} holds the solutions"


def test_front_page_is_the_course_map_linking_every_page(visit, server):
    v = visit("index")
    page = v.page
    page.goto(f"{server}/index.html", wait_until="load")
    page.screenshot(path=str(v.artifacts / "index.png"), full_page=True)
    table_links = page.locator("main table a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    nav = page.locator(".bd-sidenav a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    # follow the map's first link, then the theme's "next" button to the second notebook
    page.locator("main table a").first.click()
    page.wait_for_load_state("load")
    first = page.url
    page.locator("a.right-next").first.click()
    page.wait_for_load_state("load")
    second = page.url
    v.assert_clean()
    pages = [f"{Path(n).stem}.html" for n in COURSE]
    assert [h for h in table_links if h in pages] and set(pages) <= set(table_links), table_links
    assert set(pages) <= set(nav), nav
    assert first.endswith(pages[0]) and second.endswith(pages[1]), (first, second)


def test_search_finds_eligibility(visit, server):
    v = visit("search")
    page = v.page
    page.goto(f"{server}/search.html?q=eligibility", wait_until="load")
    page.wait_for_selector("#search-results ul.search li", timeout=PAGE_READY_MS)
    hits = page.locator("#search-results ul.search li a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    page.screenshot(path=str(v.artifacts / "search.png"), full_page=True)
    v.assert_clean()
    assert any("01_florian_stdp" in h for h in hits), hits
    assert any("06_three_factor" in h for h in hits), hits
