"""`resdsl serve` in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright.

The server is the real command (`python -m resdsl serve DIR --port 0`) in a subprocess; the tests
type into the page, watch the diagram and table change, make a mistake and find it at its line
with `check`'s own message, click a block for its focus view, save and read the file on disk, and
hold back an old answer to see it dropped. Skipped, saying why, where no browser is installed
(scripts/setup.sh installs it). RESDSL_SCREENSHOT=PATH keeps the page's screenshot
(docs/img/serve.png is one).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="resdsl serve needs the `serve` extra (starlette, uvicorn)")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need the `playwright` package")

from conftest import ROOT  # noqa: E402
from serving import SPEC, serve_process  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium; "
                                                         "scripts/setup.sh does it where it can)")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
T = 30_000           # ms a step may wait (a loaded CI machine); a step usually takes well under a second


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    (root / "tiny.res").write_text(SPEC)
    with serve_process(root) as (proc, url):      # printed once the socket listens: the page loads at once
        yield url, root


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with sync_api.sync_playwright() as p:
        profile = tmp_path_factory.mktemp("chromium-profile")
        context = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, args=ARGS,
                                                       headless=True, viewport={"width": 1400, "height": 860})
        yield context
        context.close()


@pytest.fixture
def page(browser, server):
    url, root = server
    (root / "tiny.res").write_text(SPEC)
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#table tbody tr", timeout=T)
    yield page
    page.close()
    assert not errors, errors


def rows(page) -> list[str]:
    return page.eval_on_selector_all("#table tbody tr", "rs => rs.map(r => r.dataset.name)")


def cli_check(root: Path, name: str, text: str, *flags: str) -> subprocess.CompletedProcess:
    """`resdsl check` on the same text saved as `name` in a folder of its own (the reference)."""
    folder = root / "cli"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return subprocess.run([sys.executable, "-m", "resdsl", "check", name, *flags], cwd=folder, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_type_see_error_fix_focus_save(page, server):
    url, root = server
    assert rows(page) == ["stem", "stages.0", "stages.1", "head"]
    assert page.locator("#canvas svg g.node").count() > 3
    assert page.locator("#highlight span.k").first.text_content() == "network"    # the language's word list

    # type a third stage at the end of line 5: the diagram and the table follow
    ta = page.locator("#text")
    ta.click()
    page.keyboard.press("Control+Home")
    for _ in range(4):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("End")
    ta.press_sequentially("\n  stage x 3 basic(width * 4) stride 2", delay=5)
    page.wait_for_function("() => [...document.querySelectorAll('#table tbody tr')].some(r => r.dataset.name === 'stages.2')",
                           timeout=T)
    assert rows(page) == ["stem", "stages.0", "stages.1", "stages.2", "head"]
    text = ta.input_value()
    ref = json.loads(cli_check(root, "tiny.res", text, "--json").stdout)
    shown = page.eval_on_selector_all("#table tbody tr", "rs => rs.map(r => [r.cells[0].textContent, r.cells[3].textContent])")
    assert shown == [[s["name"], f"{s['params']:,}"] for s in ref["sections"]]
    assert page.text_content("#totals td:nth-child(4)") == f"{ref['total_params']:,}"
    assert "stages.2" in page.inner_html("#canvas")
    if os.environ.get("RESDSL_SCREENSHOT"):
        page.screenshot(path=os.environ["RESDSL_SCREENSHOT"])

    # a mistake on line 6: check's message, at its line; the last good drawing stays
    bad = text.replace("basic(width * 4)", "basic(widht * 4)")
    ta.fill(bad)
    page.wait_for_selector("#error:not([hidden])", timeout=T)
    assert page.text_content("#gutter span.err") == "6"
    assert page.text_content("#highlight mark.err") == "widht"
    cli = cli_check(root, "tiny.res", bad)
    assert cli.returncode == 1 and page.text_content("#error").strip() == cli.stderr.strip()
    assert "stages.2" in page.inner_html("#canvas") and "stale" in page.get_attribute("#diagram", "class")

    # fixed: the error goes, the drawing is current again
    ta.fill(text)
    page.wait_for_selector("#error", state="hidden", timeout=T)
    assert page.locator("#gutter span.err").count() == 0
    page.wait_for_function("() => !document.querySelector('#diagram').classList.contains('stale')", timeout=T)

    # click the first unit of stage 1: its focus view (every layer of it)
    page.locator("#canvas g.node", has=page.locator("title", has_text=re.compile(r"^stages\.1\.blocks\.0$"))).click()
    page.wait_for_function("() => document.querySelector('#focus').textContent === 'stages.1.blocks.0'", timeout=T)
    titles = page.eval_on_selector_all("#canvas g.node title", "ts => ts.map(t => t.textContent)")
    assert any(t.startswith("stages.1.blocks.0.") for t in titles)
    assert not any(t.startswith("stages.2") for t in titles)
    assert "layer level" in page.inner_html("#canvas")

    # save (Ctrl-S): the file on disk is the editor's text
    page.keyboard.press("Control+s")
    page.wait_for_function("() => document.querySelector('#status').textContent.startsWith('saved tiny.res')",
                           timeout=T)
    assert (root / "tiny.res").read_text() == text


def test_a_late_answer_never_overwrites_a_newer_one(page, server):
    """The answer to an older edit is held back until the newer one is drawn, then delivered:
    the page keeps the newer one."""
    held = []

    def hold_old(route):
        if "OLD_EDIT" in (route.request.post_data or ""):
            held.append((route, route.fetch()))      # answered by the server, not yet by the page
        else:
            route.continue_()

    page.route("**/api/check", hold_old)
    ta = page.locator("#text")
    ta.fill("# OLD_EDIT\n" + SPEC)
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the old edit's check was never sent"
    ta.fill(SPEC.replace("classes = 10", "classes = 77"))
    page.wait_for_function("() => document.querySelector('#totals td:nth-child(3)').textContent === '77'", timeout=T)
    newest = page.evaluate("() => window.resdslLastRedraw.seq")
    route, response = held[0]
    assert response.json()["ok"]                          # a real answer, for classes = 10
    route.fulfill(response=response)
    page.wait_for_timeout(500)
    assert page.text_content("#totals td:nth-child(3)") == "77"
    assert page.evaluate("() => window.resdslLastRedraw.seq") == newest


def test_zoo_set_fields_level_zoom_and_compare(page):
    page.select_option("#zoo", "resnet50")
    page.wait_for_function("() => document.querySelector('#totals td:nth-child(4)').textContent === '25,557,032'",
                           timeout=T)                                       # torchvision's resnet50
    assert page.locator("#text").evaluate("t => t.readOnly") and page.locator("#save").is_disabled()

    # a --set field: classes = 10 changes the head and the output
    page.fill("#set-classes", "10")
    page.wait_for_function("() => document.querySelector('#totals td:nth-child(3)').textContent === '10'", timeout=T)

    # the level switch: the network level draws one box per stage
    stage_boxes = page.locator("#canvas g.node").count()
    page.select_option("#level", "network")
    page.wait_for_function("() => document.querySelector('#canvas svg').textContent.includes('network level')", timeout=T)
    assert page.locator("#canvas g.node").count() < stage_boxes

    # zoom: the button and the wheel scale the drawing; fit puts it back
    scale = "() => new DOMMatrix(getComputedStyle(document.querySelector('#canvas')).transform).a"
    fitted = page.evaluate(scale)
    page.click("#zoom-in")
    assert page.evaluate(scale) > fitted * 1.2
    page.mouse.move(900, 300)
    page.mouse.wheel(0, 400)
    page.mouse.wheel(0, 400)
    assert page.evaluate(scale) < fitted * 1.2
    page.click("#fit")
    assert abs(page.evaluate(scale) - fitted) < 1e-6

    # compare with resnet18: B's drawing beside, profile --vs ratios below
    page.select_option("#vs", "zoo:resnet18")
    page.wait_for_selector("#vs-table:not([hidden]) tbody tr", timeout=T)
    ratios = dict(page.eval_on_selector_all("#vs-table tbody tr", "rs => rs.map(r => [r.cells[0].textContent, r.cells[3].textContent])"))
    a = 25_557_032 - 2048 * 1000 - 1000 + 2048 * 10 + 10                     # resnet50 with a 10-way head
    assert ratios["params"] == f"{11_689_512 / a:.3f}"                      # resnet18 (torchvision) / that
    assert page.locator("#vs-diagram svg").count() == 1
