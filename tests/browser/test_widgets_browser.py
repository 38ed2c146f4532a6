"""The widgets in a real browser: JupyterLab on loopback, driven by headless Chromium (Playwright).

No headless test sees a slider: nbval, papermill and the handouts run with SNNLAB_HEADLESS=1 and
get the static default figure. Here JupyterLab runs *without* it, Debian's chromium (Playwright
cannot download browsers here) opens a panel notebook, runs it, moves a slider with the keyboard,
and the figure must change in place (other PNG bytes, other pixels) with no JavaScript error.
One JupyterLab server and one browser serve the whole module: a toy panel, then every course
notebook with its `test_parameters`, run up to its first panel, whose first control is moved.

Screenshots and the browser console go to $SNNLAB_ARTIFACTS (CI keeps them) or the test's
tmp_path. Skipped, with the reason, when chromium or Playwright's Python package is missing. Run
locally: `apt-get install chromium && .venv/bin/pip install -c constraints.txt playwright` then
`.venv/bin/python -m pytest tests/browser -p no:xdist -v`.
"""
import base64
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
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

SERVER_START_S = 90   # JupyterLab start on a busy 2-core machine
KERNEL_READY_S = 120  # kernel start and run of all cells (imports torch via snnlab)
FIGURE_CHANGE_S = 30  # slider moved -> new image
# JavaScript failures, as opposed to e.g. a favicon 404 that Chromium also logs as a console error.
JS_ERROR = re.compile(r"\b(TypeError|ReferenceError|SyntaxError|RangeError|EvalError|URIError|Uncaught|"
                      r"Error: |Could not (?:create|instantiate|render)|Failed to (?:create|load) (?:model|view|widget))")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def panel_notebook(path: Path) -> None:
    """A notebook with one snnlab panel: an integer slider picking how many bars are drawn."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nfrom snnlab import widgets"),
        nbformat.v4.new_code_cell(
            "def plot_bars(n):\n"
            "    fig, ax = plt.subplots(figsize=(4, 2.5))\n"
            "    ax.bar(range(n), range(1, n + 1), color='C0')\n"
            "    ax.set_xlim(-0.5, 5.5); ax.set_ylim(0, 6); ax.set_title(f'n = {n}')\n"
            "    ax.set(xlabel='bar', ylabel='height')\n"
            "    return fig\n"
            "\n"
            "panel = widgets.interactive(plot_bars, n=(1, 5, 1, 2))"
        ),
        nbformat.v4.new_code_cell("print('front end:', widgets.has_frontend())"),
    ]
    nbformat.write(nb, path)


def course_notebook(name: str):
    """A writer for notebooks/<name> with its small test parameters set (as papermill would set them)."""
    def write(path: Path) -> None:
        nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        params = nb.metadata["snnlab"]["test_parameters"]
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        cell.source += "\n" + "\n".join(f"{key} = {value!r}" for key, value in params.items())
        nbformat.write(nb, path)
    return write


ROOT = Path(__file__).resolve().parents[2]
COURSE = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NOTEBOOKS = {"panel_demo.ipynb": panel_notebook, **{name: course_notebook(name) for name in COURSE}}
PANEL = re.compile(r"\bwidgets\.interactive\(")
UNIT_SUFFIX = re.compile(r"_(ms|s|hz|mv|pct|deg)$", re.I)


def panel_cell_index(path: Path) -> int:
    """The first cell that shows a panel (a notebook may have several; one per notebook is tested)."""
    cells = nbformat.read(path, as_version=4).cells
    found = [i for i, c in enumerate(cells) if c.cell_type == "code" and PANEL.search(c.source)]
    assert found, f"{path.name}: no cell calls widgets.interactive("
    return found[0]


@pytest.fixture(scope="module")
def artifacts_root(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("SNNLAB_ARTIFACTS") or tmp_path_factory.mktemp("artifacts")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def artifacts(artifacts_root, request) -> Path:
    folder = artifacts_root / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def lab(tmp_path_factory, artifacts_root):
    """One JupyterLab on 127.0.0.1:<free port> with a token, serving every course notebook and a toy panel."""
    tmp_path = tmp_path_factory.mktemp("lab")
    root = tmp_path / "root"
    root.mkdir()
    for name, write in NOTEBOOKS.items():
        write(root / name)
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k not in ("SNNLAB_HEADLESS", "MPLBACKEND")}
    for name, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                      ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
                      ("IPYTHONDIR", "ipython"), ("SNNLAB_FIGURES", "figures")):
        env[name] = str(tmp_path / sub)  # nothing of the user's Jupyter set-up leaks in or out
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.open_browser=False",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run cells through its commands
        "--LabApp.extension_manager=readonly", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.news_url=None",
    ]  # (no calls to PyPI or the news feed from the extension manager, the update check or the
    #    announcements: tests stay offline, and no pop-up covers the page)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root
    log = open(artifacts_root / "jupyterlab.log", "wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}; see {artifacts_root / 'jupyterlab.log'}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer within {SERVER_START_S} s; see {artifacts_root / 'jupyterlab.log'}")
            time.sleep(0.5)
        yield url, token, root
    finally:
        # The server runs in its own session with its kernels: stop it, then anything left of it.
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.wait(timeout=10)
        log.close()


def shut_down_kernels(url: str, token: str) -> None:
    """Stop every kernel of the server, so eight notebooks do not hold eight torch processes at once."""
    with urllib.request.urlopen(f"{url}/api/sessions?token={token}", timeout=10) as reply:
        sessions = json.load(reply)
    for session in sessions:
        request = urllib.request.Request(f"{url}/api/sessions/{session['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()


@pytest.fixture(scope="module")
def chromium():
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            browser.close()


def png_of(src: str) -> bytes:
    assert src.startswith("data:image/png;base64,"), src[:60]
    return base64.b64decode(src.split(",", 1)[1])


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_a_control_replots_the_panel_figure_in_jupyterlab(name, lab, chromium, artifacts):
    """Open the notebook, run it up to its first panel, move the panel's first control one step."""
    from PIL import Image, ImageChops

    url, token, root = lab
    index = panel_cell_index(root / name)
    console, page_errors, requests = [], [], []
    page = chromium.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(60_000)
    page.on("console", lambda m: console.append({"type": m.type, "text": m.text, "url": m.location.get("url")}))
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(f"{url}/lab/tree/{name}?token={token}&reset", wait_until="domcontentloaded")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=KERNEL_READY_S * 1000)
        page.wait_for_function(
            """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                       const k = w && w.sessionContext && w.sessionContext.session
                                 && w.sessionContext.session.kernel;
                       return k && k.status === 'idle'; }""",
            timeout=KERNEL_READY_S * 1000)
        # run every cell above the panel and the panel itself; what comes after it is not needed
        page.evaluate("""async (i) => { const app = window.jupyterapp;
                                       app.shell.currentWidget.content.activeCellIndex = i;
                                       await app.commands.execute('notebook:run-all-above');
                                       await app.commands.execute('notebook:run-cell'); }""", index)
        panel_cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
        image = panel_cell.locator(".jp-OutputArea-output img").first
        controls = (".widget-slider .noUi-handle, .widget-hslider .noUi-handle, .widget-dropdown select, "
                    ".widget-checkbox input")
        control = panel_cell.locator(controls).first
        # the panel's controls, or an error anywhere above them (then there is no point waiting)
        page.wait_for_function(
            """([i, sel]) => { const cells = document.querySelectorAll('.jp-Notebook .jp-Cell');
                               if (cells[i] && cells[i].querySelector(sel)) return true;
                               return Array.from(cells).slice(0, i + 1).some(
                                   c => c.querySelector("[data-mime-type='application/vnd.jupyter.stderr']")
                                        && c.innerText.includes('Traceback')); }""",
            arg=[index, controls], timeout=KERNEL_READY_S * 1000, polling=500)
        failed = page.locator(".jp-Notebook .jp-Cell").evaluate_all(
            """(cells, i) => cells.slice(0, i + 1).filter(c => c.innerText.includes('Traceback (most recent call last)'))
                                   .map(c => c.querySelector('.jp-OutputArea').innerText.slice(-600))""", index)
        assert not failed, f"{name}: a cell up to the panel failed:\n{failed[0]}"
        control.scroll_into_view_if_needed()
        # the panel's controls observe changes only once show() has returned: wait for the
        # kernel to finish before touching a control
        page.wait_for_function(
            """() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'""",
            timeout=KERNEL_READY_S * 1000, polling=500)
        labels = [t.strip() for t in panel_cell.locator(".widget-label").all_inner_texts()]
        before = image.get_attribute("src")
        tag = control.evaluate("e => e.tagName.toLowerCase() + ':' + (e.type || '')")
        readout_before = value_of(panel_cell, tag)
        panel_cell.screenshot(path=str(artifacts / "1_before_panel.png"))

        if tag.startswith("select"):
            options = control.evaluate("e => Array.from(e.options).map(o => o.value)")
            current = control.evaluate("e => e.value")
            control.select_option(next(o for o in options if o != current))
        elif tag == "input:checkbox":
            control.click()
        else:
            control.focus()
            # one step along the slider: back from its end when it opens there (02's spike-wave demo does)
            at_end = control.evaluate("""e => e.hasAttribute('aria-valuenow') && e.hasAttribute('aria-valuemax')
                                          && Number(e.getAttribute('aria-valuenow')) >= Number(e.getAttribute('aria-valuemax'))""")
            page.keyboard.press("ArrowLeft" if at_end else "ArrowRight")
        page.wait_for_function(
            """([i, old]) => { const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[i];
                               const img = cell && cell.querySelector('.jp-OutputArea-output img');
                               return img && img.src !== old; }""",
            arg=[index, before], timeout=FIGURE_CHANGE_S * 1000)
        after = image.get_attribute("src")
        readout_after = value_of(panel_cell, tag)
        images = panel_cell.locator(".jp-OutputArea-output img").count()
        page.screenshot(path=str(artifacts / "2_after_change.png"))
        panel_cell.screenshot(path=str(artifacts / "2_after_change_panel.png"))
    except Exception:
        page.screenshot(path=str(artifacts / "failure.png"))
        raise
    finally:
        page.close()
        (artifacts / "console.json").write_text(json.dumps({"console": console, "page_errors": page_errors,
                                                            "requests": requests}, indent=1))
        shut_down_kernels(url, token)

    assert readout_before != readout_after, (readout_before, readout_after)
    if name == "panel_demo.ipynb":
        assert (readout_before, readout_after) == ("2", "3")
    assert labels and not [l for l in labels if UNIT_SUFFIX.search(l)], \
        f"{name}: control labels {labels} should spell units, 'tau (ms)' (widgets.control_label)"
    old_png, new_png = png_of(before), png_of(after)
    assert old_png != new_png
    old_img = Image.open(io.BytesIO(old_png)).convert("RGB")
    new_img = Image.open(io.BytesIO(new_png)).convert("RGB")
    assert ImageChops.difference(old_img.resize(new_img.size), new_img).getbbox() is not None  # pixels differ
    assert images == 1  # the control replaced the figure in place instead of appending another
    assert page_errors == [], page_errors
    js_errors = [m for m in console if m["type"] == "error" and JS_ERROR.search(m["text"])]
    assert js_errors == [], js_errors
    outside = [r for r in requests if not r.startswith(("http://127.0.0.1", "data:", "blob:"))]
    assert outside == [], f"{name}: requests left 127.0.0.1: {outside[:5]}"


def value_of(cell, tag: str) -> str:
    """The moved control's value as shown: a dropdown's selection, a checkbox state, a slider's readout."""
    return cell.evaluate("""(c, tag) => {
        if (tag.startsWith('select')) return c.querySelector('.widget-dropdown select').value;
        if (tag === 'input:checkbox') return String(c.querySelector('.widget-checkbox input').checked);
        const r = c.querySelector('.widget-slider .widget-readout, .widget-hslider .widget-readout');
        return r ? r.innerText.trim() : ''; }""", tag)
