"""The built book in a real browser: every page loads offline, without console errors, with its figures and formulas.

The session fixture builds the book with ``tools/build_book.sh`` when ``_build/html`` is missing or older than the
book's sources (the script stamps ``_build/.book-built`` after a successful build; ``PADA_LITE_BOOK_BUILT=1`` uses
the existing build as it is), serves it from 127.0.0.1 and drives headless Chromium through Selenium. Chromium and
chromedriver come from Debian (``apt-get install chromium chromium-driver``); without them the tests fail under CI
(``$CI`` set) and are skipped elsewhere.

Set ``PADA_LITE_SCREENSHOTS=<folder>`` to save a full-page PNG of every chapter there.

The tests marked ``browser`` need the built book; the others check ``pada_lite.plotting`` (how figures reach the page).
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
HTML = REPO / "_build" / "html"
STAMP = REPO / "_build" / ".book-built"
BOOK_SOURCES = ("_config.yml", "_toc.yml", "references.bib", "book", "tools/build_book.sh", "pada_lite/plotting.py",
                "pada_lite/widgets.py", "pada_lite/project.py")
CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--no-default-browser-check", "--window-size=1280,1000")
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# browser-internal schemes
LOCAL_SCHEMES = {"data", "blob", "about", "chrome", "chrome-extension", "chrome-untrusted", "devtools"}
INSTALL_HINT = "apt-get install chromium chromium-driver (Debian), or set CHROMIUM and CHROMEDRIVER to their paths"
WAIT_S = 60
# Text (outside code) that still looks like Markdown table rows or MyST roles: a Markdown output rendered as
# CommonMark, or a glue/cite role that did not resolve.
UNRENDERED_MARKUP_JS = r"""
var found = [], walker = document.createTreeWalker(document.querySelector('article') || document.body,
                                                   NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  var node = walker.currentNode, text = node.nodeValue;
  if (node.parentElement.closest('code, pre, script, style, .highlight')) { continue; }
  if (text.indexOf('|---|') >= 0 || /\{(glue|cite)[:}]/.test(text)) { found.push(text.trim().slice(0, 200)); }
}
return found;
"""


def toc_pages() -> list[str]:
    """Document names of every page in _toc.yml, in book order (e.g. 'book/intro')."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [str(Path(p).with_suffix("")) for p in pages]


PAGES = toc_pages()


# ----------------------------------------------------------------------------------------------- fixtures
def _browser_paths() -> tuple[str, str]:
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not (chromium and driver and Path(chromium).exists() and Path(driver).exists()):
        message = f"headless Chromium and chromedriver are needed for the browser tests: {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return chromium, driver


def _build_is_stale(index: Path) -> bool:
    """No complete build yet, or a book source changed after the last one (tools/build_book.sh writes STAMP)."""
    if not index.exists() or not STAMP.exists():
        return True
    built = STAMP.stat().st_mtime
    for name in BOOK_SOURCES:
        path = REPO / name
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()
                                                 and "vendor" not in p.parts and p.suffix != ".ipynb"]
        if any(f.stat().st_mtime > built for f in files):
            return True
    return False


@pytest.fixture(scope="session")
def browser_paths() -> tuple[str, str]:
    return _browser_paths()


@pytest.fixture(scope="session")
def built_book(browser_paths) -> Path:
    """_build/html, built by tools/build_book.sh unless it is up to date (or PADA_LITE_BOOK_BUILT=1)."""
    index = HTML / "index.html"
    if os.environ.get("PADA_LITE_BOOK_BUILT") == "1":
        if not index.exists():
            pytest.fail(f"PADA_LITE_BOOK_BUILT=1 but {index} does not exist: build the book first (make book)")
    elif _build_is_stale(index):
        env = {**os.environ, "BIN": os.environ.get("BIN", str(Path(sys.executable).parent))}
        result = subprocess.run(["bash", str(REPO / "tools" / "build_book.sh")], cwd=REPO, env=env,
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail("tools/build_book.sh failed:\n" + (result.stdout + result.stderr)[-8000:])
    missing = [p for p in PAGES if not (HTML / f"{p}.html").exists()]
    assert not missing, f"pages of _toc.yml missing from {HTML}: {missing}"
    return HTML


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="session")
def server(built_book):
    """http://127.0.0.1:<random port>/ serving _build/html."""
    handler = functools.partial(_QuietHandler, directory=str(built_book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def driver(browser_paths, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = browser_paths
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    browser = webdriver.Chrome(service=Service(chromedriver), options=options)
    browser.set_page_load_timeout(WAIT_S)
    yield browser
    browser.quit()


# ----------------------------------------------------------------------------------------------- helpers
def wait_for(driver, script: str, what: str, timeout: float = WAIT_S, *args):
    """Poll a JavaScript expression (``return ...``) until it is truthy; fail with ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script, *args)
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def open_page(driver, server: str, page: str) -> None:
    """Load a page, clearing the logs first, and wait until it and its MathJax typesetting are done."""
    driver.get_log("browser")
    driver.get_log("performance")
    driver.get(f"{server}/{page}.html")
    wait_for(driver, "return document.readyState === 'complete';", f"{page} to load")
    if driver.execute_script("return document.querySelector('.math') !== null;"):
        wait_for(driver, "return !!(window.MathJax && MathJax.startup && MathJax.startup.promise);",
                 f"MathJax to start on {page}")
        driver.set_script_timeout(WAIT_S)
        driver.execute_async_script("var done = arguments[arguments.length - 1];"
                                    "MathJax.startup.promise.then(function () { done(true); },"
                                    " function () { done(false); });")


def external_requests(driver) -> list[str]:
    """URLs the browser requested from anything but 127.0.0.1 since the last call (from the performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            parsed = urlparse(url)
            if parsed.scheme not in LOCAL_SCHEMES and parsed.hostname not in LOCAL_HOSTS:
                urls.append(url)
    return urls


def figure_ids(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.plotly-graph-div')).map(function (d) { return d.id; });")


def plotly_trace_data(driver, div_id: str) -> str:
    """JSON of the x/y data of every trace of a drawn plotly figure."""
    return driver.execute_script(
        "var gd = document.getElementById(arguments[0]);"
        "return JSON.stringify(gd.data.map(function (t) { return [t.x, t.y]; }));", div_id)


def move_plotly_slider(driver, div_id: str, fraction: float, slider: int = 0) -> tuple[str, str]:
    """Click a plotly slider's rail at ``fraction`` (0 = first step, 1 = last) like a user would.

    Returns the figure's trace data before and after; fails unless the slider's active step changed.
    """
    from selenium.webdriver.common.action_chains import ActionChains

    before = plotly_trace_data(driver, div_id)
    active_js = "return document.getElementById(arguments[0]).layout.sliders[arguments[1]].active || 0;"
    active_before = driver.execute_script(active_js, div_id, slider)
    rail = driver.execute_script(
        "return document.getElementById(arguments[0]).querySelectorAll('.slider-group')[arguments[1]]"
        ".querySelector('.slider-rail-touch-rect');", div_id, slider)
    assert rail is not None, f"figure {div_id} has no slider number {slider}"
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", rail)
    box = driver.execute_script("var r = arguments[0].getBoundingClientRect();"
                                "return {width: r.width, height: r.height};", rail)
    inset = 8 + 10  # plotly's railInset + stepInset: where the first and last steps sit on the rail
    x = -box["width"] / 2 + inset + fraction * (box["width"] - 2 * inset)
    ActionChains(driver).move_to_element_with_offset(rail, int(x), 0).click().perform()
    wait_for(driver, "return (document.getElementById(arguments[0]).layout.sliders[arguments[1]].active || 0)"
                     " !== arguments[2];", f"slider {slider} of {div_id} to move", 10, div_id, slider, active_before)
    after = wait_for(driver, "var gd = document.getElementById(arguments[0]);"
                             "var now = JSON.stringify(gd.data.map(function (t) { return [t.x, t.y]; }));"
                             "return now !== arguments[1] ? now : null;",
                     f"the data of {div_id} to change after moving its slider", 10, div_id, before)
    return before, after


# ----------------------------------------------------------------------------------------------- tests
@pytest.mark.browser
@pytest.mark.parametrize("page", PAGES)
def test_page_renders_offline(driver, server, page):
    open_page(driver, server, page)

    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, f"console errors on {page}: " + "\n".join(e["message"] for e in severe)

    assets = driver.execute_script(
        "return Array.from(document.querySelectorAll('script[src]')).map(function (s) { return s.src; })"
        ".concat(Array.from(document.querySelectorAll('link[rel~=\"stylesheet\"], link[rel=\"preload\"]'))"
        ".map(function (l) { return l.href; }));")
    remote = [u for u in assets if urlparse(u).hostname not in LOCAL_HOSTS]
    assert not remote, f"{page} loads scripts/stylesheets from other hosts (the book must work offline): {remote}"
    fetched = external_requests(driver)
    assert not fetched, f"{page} made requests to other hosts: {fetched}"

    raw = driver.execute_script(UNRENDERED_MARKUP_JS)
    assert not raw, f"{page} shows unrendered Markdown (a table or a role) as text: {raw[:3]}"

    for div_id in figure_ids(driver):
        wait_for(driver, "var gd = document.getElementById(arguments[0]);"
                         "return gd.querySelector('.main-svg') !== null && !!gd._fullData;",
                 f"plotly figure #{div_id} on {page} to draw", WAIT_S, div_id)
        traces = driver.execute_script("return document.getElementById(arguments[0])._fullData.length;", div_id)
        assert traces > 0, f"plotly figure #{div_id} on {page} has no traces"

    if driver.execute_script("return document.querySelector('.math') !== null;"):
        typeset = driver.execute_script("return document.querySelectorAll('mjx-container').length;")
        errors = driver.execute_script("return document.querySelectorAll('mjx-merror').length;")
        assert typeset > 0, f"{page} has math but MathJax rendered none of it"
        assert errors == 0, f"MathJax reported {errors} TeX error(s) on {page}"

    shots = os.environ.get("PADA_LITE_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        height = driver.execute_script("return document.documentElement.scrollHeight;")
        driver.set_window_size(1280, min(int(height), 16000))
        driver.save_screenshot(str(Path(shots) / f"{page.replace('/', '_')}.png"))
        driver.set_window_size(1280, 1000)


@pytest.mark.browser
def test_book_has_figures_and_math(driver, server):
    """The checks above are not vacuous: the book draws plotly figures and typesets formulas somewhere."""
    figures = math = 0
    for page in PAGES:
        open_page(driver, server, page)
        figures += len(figure_ids(driver))
        math += driver.execute_script("return document.querySelectorAll('mjx-container').length;")
    assert figures > 0, "no plotly figure in the whole book"
    assert math > 0, "no typeset formula in the whole book"


@pytest.mark.browser
def test_plotly_sliders_change_the_data(driver, server):
    """Every plotly slider of the book redraws its figure when a user moves it."""
    moved = 0
    for page in PAGES:
        open_page(driver, server, page)
        for div_id in figure_ids(driver):
            wait_for(driver, "return !!document.getElementById(arguments[0])._fullLayout;",
                     f"#{div_id} to draw", WAIT_S, div_id)
            sliders = driver.execute_script(
                "return (document.getElementById(arguments[0]).layout.sliders || []).length;", div_id)
            for slider in range(sliders):
                before, after = move_plotly_slider(driver, div_id, 0.75, slider)
                assert before != after
                moved += 1
    assert moved > 0, "no plotly slider found in the book"


@pytest.mark.browser
def test_tau_schedule_slider_works_without_a_kernel(driver, server):
    """The τ-schedule chapter's slider moves τ, the PA op distribution and the DA curve to the chosen epoch."""
    page, div_id = "book/tau_schedule", "pada-fig-tau-schedule"
    assert page in PAGES, f"{page} is not in _toc.yml"
    open_page(driver, server, page)
    wait_for(driver, "var gd = document.getElementById(arguments[0]); return !!(gd && gd._fullLayout);",
             f"#{div_id} to draw", WAIT_S, div_id)
    epochs = driver.execute_script("return document.getElementById(arguments[0]).layout.sliders[0].steps.length;",
                                   div_id)
    before, after = (json.loads(data) for data in move_plotly_slider(driver, div_id, 1.0))
    assert before[1][0] == [1] and after[1][0] == [epochs]  # the τ marker of the first schedule moved to the end
    assert before[2][1] != after[2][1], "the PA op distribution did not change"
    assert before[3][1] != after[3][1], "the DA sample curve did not change"
    title = driver.execute_script("return document.getElementById(arguments[0]).layout.title.text;", div_id)
    assert f"end of epoch {epochs} of {epochs}" in title
    assert "running Python kernel" in driver.find_element("css selector", "article").text  # the live-control note


@pytest.mark.browser
@pytest.mark.parametrize("page", PAGES)
def test_page_has_colab_and_binder_links_from_the_one_address(driver, server, page):
    """Every page, intro and reference included, launches its notebook on Colab and Binder from project.py's address."""
    from pada_lite import project

    open_page(driver, server, page)
    hrefs = driver.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(function (a) {"
                                  " return a.getAttribute('href'); });")
    colab = f"https://colab.research.google.com/github/{project.REPOSITORY}/blob/{project.BRANCH}/{page}.ipynb"
    binder = f"https://mybinder.org/v2/gh/{project.REPOSITORY}/{project.BRANCH}?urlpath=lab/tree/{page}.ipynb"
    assert colab in hrefs, f"{page} has no Colab link {colab}; launch links: {[h for h in hrefs if 'colab' in h]}"
    assert binder in hrefs, f"{page} has no Binder link {binder}; launch links: {[h for h in hrefs if 'binder' in h]}"
    assert (REPO / f"{page}.ipynb").exists(), f"the buttons of {page} open {page}.ipynb, which is not committed"


@pytest.mark.browser
def test_tau_value_slider_changes_the_plotted_distribution(driver, server):
    """The slider over τ itself redraws p and N·q by the mixing rule: uniform at τ = 0, scores alone at τ = 1."""
    page, div_id = "book/tau_schedule", "pada-fig-tau-value"
    open_page(driver, server, page)
    wait_for(driver, "var gd = document.getElementById(arguments[0]); return !!(gd && gd._fullLayout);",
             f"#{div_id} to draw", WAIT_S, div_id)
    before, after = (json.loads(data) for data in move_plotly_slider(driver, div_id, 1.0))
    (ops, p0), (_, nq0) = before
    (_, p1), (_, nq1) = after
    assert p0 == pytest.approx([1 / len(ops)] * len(ops), abs=1e-6) and nq0 == pytest.approx([1.0] * len(nq0))
    assert p1 != p0 and nq1 != nq0, "moving the τ slider did not change the plotted distributions"
    assert min(p1) == 0 and sum(p1) == pytest.approx(1, abs=1e-4)  # τ = 1: the parameter-free ops get nothing
    title = driver.execute_script("return document.getElementById(arguments[0]).layout.title.text;", div_id)
    assert "τ = 1.00" in title


@pytest.mark.browser
@pytest.mark.parametrize("page", [p for p in PAGES if (REPO / f"{p}.md").exists()
                                  and "format_name: myst" in (REPO / f"{p}.md").read_text().split("\n---", 1)[0]])
def test_colab_notebook_installs_the_library(built_book, page):
    """Each executable chapter has a generated Colab notebook whose first cell installs pada_lite if missing."""
    import nbformat

    notebook = REPO / f"{page}.ipynb"
    assert notebook.exists(), f"{notebook} is missing: run python tools/colab_notebooks.py and commit it"
    nb = nbformat.read(notebook, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "code" and "import pada_lite" in first.source and "%pip install" in first.source
    from pada_lite import project

    assert f"git+{project.repository_url()}@{project.BRANCH}" in first.source


# ----------------------------------------------------------------------------------------------- pada_lite.plotting
@pytest.fixture
def captured(monkeypatch):
    """The raw bundles that pada_lite.plotting.show passes to IPython's display()."""
    import IPython.display

    bundles = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: bundles.append((obj, raw)))
    return bundles


def _figure(title: str = "</script><b>x</b>"):
    import numpy as np
    import plotly.graph_objects as go

    return go.Figure(go.Scatter(x=np.arange(3), y=np.array([3.0, 1.0, 2.0])), layout=dict(title=title, height=321))


def test_show_outputs_html_without_plotlyjs_and_the_plotly_mime(captured, monkeypatch):
    from pada_lite import plotting

    monkeypatch.delenv(plotting.FIGURES_ENV, raising=False)
    monkeypatch.setattr(plotting, "_used_ids", {})
    plotting.show(_figure(), name="My Figure")
    (bundle, raw), = captured
    assert raw and set(bundle) == {"text/html", "text/plain", plotting.PLOTLY_MIME}
    html = bundle["text/html"]
    assert 'id="pada-fig-my-figure" class="plotly-graph-div"' in html and "height:321px" in html
    assert "Plotly.newPlot" in html and "plotly.js v" not in html and len(html) < 10_000  # no bundled plotly.js
    assert html.count("</script>") == 1  # the title's "</script>" is escaped inside the JSON
    mime = json.loads(json.dumps(bundle[plotting.PLOTLY_MIME]))  # plain JSON: numpy arrays are encoded by plotly
    assert mime["data"][0]["type"] == "scatter" and mime["config"]["responsive"] is True


def test_show_in_the_book_build_outputs_html_only(captured, monkeypatch):
    from pada_lite import plotting

    monkeypatch.setenv(plotting.FIGURES_ENV, "html")
    plotting.show(_figure())
    (bundle, _), = captured
    assert set(bundle) == {"text/html", "text/plain"}  # myst-nb would warn about the plotly mime type


def test_figure_ids_are_stable_and_unique(monkeypatch):
    from pada_lite import plotting

    monkeypatch.setattr(plotting, "_used_ids", {})
    first, second = plotting.figure_id(_figure()), plotting.figure_id(_figure())
    monkeypatch.setattr(plotting, "_used_ids", {})
    assert plotting.figure_id(_figure()) == first  # same figure, fresh kernel: same id (reproducible HTML)
    assert second == f"{first}-2" and plotting.figure_id(_figure("other")) != first


def test_glue_records_python_numbers(monkeypatch):
    import myst_nb
    import numpy as np

    from pada_lite import plotting

    recorded = []
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: recorded.append((name, value, display)))
    plotting.glue("tau", np.float64(0.5))
    assert recorded == [("tau", 0.5, False)] and type(recorded[0][1]) is float


def test_run_time_note_states_the_load_and_how_much_slower_than_idle():
    from pada_lite.plotting import run_time_note

    assert run_time_note(12, 10, 0.5, 2) == "under a 1-minute load average of 0.5 on 2 cores"
    assert run_time_note(40, 10, 6.0, 2) == ("under a 1-minute load average of 6.0 on 2 cores; "
                                            "4.0× the idle-machine estimate of 10 s")
    assert run_time_note(5, 10, None, 1) == "on 1 core"


def test_glue_run_time_glues_the_seconds_the_device_and_the_load(monkeypatch):
    import time

    import myst_nb

    from pada_lite import plotting

    recorded = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: recorded.__setitem__(name, value))
    seconds = plotting.glue_run_time(time.perf_counter() - 3.0, expected_s=1)
    assert set(recorded) == {"chapter_runtime_s", "chapter_device", "chapter_load"}
    assert recorded["chapter_runtime_s"] == seconds >= 3.0 and recorded["chapter_device"]
    assert "× the idle-machine estimate of 1 s" in recorded["chapter_load"]
