"""The widgets in a real browser: JupyterLab on loopback, driven by headless Chromium (Playwright).

No headless test sees a slider: nbval, papermill and the handouts run with SNNLAB_HEADLESS=1 and
get the static default figure. Here JupyterLab runs *without* it, Debian's chromium (Playwright
cannot download browsers here) opens a panel notebook, runs it, moves a slider with the keyboard,
and the figure must change in place (other PNG bytes, other pixels) with no JavaScript error.

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
            "    return fig\n"
            "\n"
            "panel = widgets.interactive(plot_bars, n=(1, 5, 1, 2))"
        ),
        nbformat.v4.new_code_cell("print('front end:', widgets.has_frontend())"),
    ]
    nbformat.write(nb, path)


def welcome_notebook(path: Path) -> None:
    """00_welcome with its small test parameters written into the parameters cell (as papermill would)."""
    source = Path(__file__).resolve().parents[2] / "notebooks" / "00_welcome.ipynb"
    nb = nbformat.read(source, as_version=4)
    params = nb.metadata["snnlab"]["test_parameters"]
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "\n" + "\n".join(f"{name} = {value!r}" for name, value in params.items())
    nbformat.write(nb, path)


NOTEBOOKS = {"panel_demo.ipynb": panel_notebook, "00_welcome.ipynb": welcome_notebook}


def panel_cell_index(path: Path) -> int:
    cells = nbformat.read(path, as_version=4).cells
    found = [i for i, c in enumerate(cells) if c.cell_type == "code" and "widgets.interactive(" in c.source]
    assert len(found) == 1, f"{path.name}: expected one panel cell, found {found}"
    return found[0]


@pytest.fixture
def artifacts(tmp_path, request) -> Path:
    folder = Path(os.environ.get("SNNLAB_ARTIFACTS") or tmp_path / "artifacts") / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(params=list(NOTEBOOKS))
def lab(tmp_path, artifacts, request):
    """JupyterLab on 127.0.0.1:<free port> with a token, serving one notebook with a panel."""
    root = tmp_path / "root"
    root.mkdir()
    notebook = root / request.param
    NOTEBOOKS[request.param](notebook)
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
    ]  # (no calls to PyPI from the extension manager or the update check: tests stay offline)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root
    log = open(artifacts / "jupyterlab.log", "wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}; see {artifacts / 'jupyterlab.log'}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer within {SERVER_START_S} s; see {artifacts / 'jupyterlab.log'}")
            time.sleep(0.5)
        yield url, token, notebook
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


def png_of(src: str) -> bytes:
    assert src.startswith("data:image/png;base64,"), src[:60]
    return base64.b64decode(src.split(",", 1)[1])


def test_slider_replots_the_panel_figure_in_jupyterlab(lab, artifacts):
    from PIL import Image, ImageChops

    url, token, notebook = lab
    index = panel_cell_index(notebook)
    console, page_errors = [], []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(60_000)
            page.on("console", lambda m: console.append({"type": m.type, "text": m.text, "url": m.location.get("url")}))
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            try:
                page.goto(f"{url}/lab/tree/{notebook.name}?token={token}&reset", wait_until="domcontentloaded")
                page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=KERNEL_READY_S * 1000)
                page.wait_for_function(
                    """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                               const k = w && w.sessionContext && w.sessionContext.session
                                         && w.sessionContext.session.kernel;
                               return k && k.status === 'idle'; }""",
                    timeout=KERNEL_READY_S * 1000)
                page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
                panel_cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
                image = panel_cell.locator(".jp-OutputArea-output img").first
                handle = panel_cell.locator(".widget-slider .noUi-handle, .widget-hslider .noUi-handle").first
                handle.wait_for(state="attached", timeout=KERNEL_READY_S * 1000)
                handle.scroll_into_view_if_needed()
                # the panel's controls observe changes only once show() has returned: wait for the
                # kernel to finish the run before touching the slider
                page.wait_for_function(
                    """() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'""",
                    timeout=KERNEL_READY_S * 1000, polling=500)
                before = image.get_attribute("src")
                readout_before = panel_cell.locator(".widget-readout").first.inner_text()
                page.screenshot(path=str(artifacts / "1_before.png"))
                panel_cell.screenshot(path=str(artifacts / "1_before_panel.png"))

                handle.focus()
                page.keyboard.press("ArrowRight")  # one step along the slider
                page.wait_for_function(
                    """([i, old]) => { const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[i];
                                       const img = cell && cell.querySelector('.jp-OutputArea-output img');
                                       return img && img.src !== old; }""",
                    arg=[index, before], timeout=FIGURE_CHANGE_S * 1000)
                after = image.get_attribute("src")
                readout_after = panel_cell.locator(".widget-readout").first.inner_text()
                images = panel_cell.locator(".jp-OutputArea-output img").count()
                page.screenshot(path=str(artifacts / "2_after_slider.png"))
                panel_cell.screenshot(path=str(artifacts / "2_after_slider_panel.png"))
            except Exception:
                page.screenshot(path=str(artifacts / "failure.png"))
                raise
        finally:
            browser.close()
            (artifacts / "console.json").write_text(json.dumps({"console": console, "page_errors": page_errors},
                                                               indent=1))

    assert readout_before.strip() != readout_after.strip(), (readout_before, readout_after)
    if notebook.name == "panel_demo.ipynb":
        assert (readout_before.strip(), readout_after.strip()) == ("2", "3")
    old_png, new_png = png_of(before), png_of(after)
    assert old_png != new_png
    old_img = Image.open(io.BytesIO(old_png)).convert("RGB")
    new_img = Image.open(io.BytesIO(new_png)).convert("RGB")
    assert ImageChops.difference(old_img.resize(new_img.size), new_img).getbbox() is not None  # pixels differ
    assert images == 1  # the slider replaced the figure in place instead of appending another
    assert page_errors == [], page_errors
    js_errors = [m for m in console if m["type"] == "error" and JS_ERROR.search(m["text"])]
    assert js_errors == [], js_errors
