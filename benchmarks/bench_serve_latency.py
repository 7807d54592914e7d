"""Redraw latency of `resdsl serve` after the last keystroke, in a real browser (headless Chromium).

    python benchmarks/bench_serve_latency.py [--depth 1001] [--rounds 7]

Serves a copy of specs/preact_resnet.res, sets depth (1001: ResNet-1001, 333 bottleneck units,
3,339 ops) in the page's `--set` form, then types one character that changes the network
(classes = 10 <-> 100) and measures, in the page's own clock, from the keydown to the first frame
after the redraw (diagram, table and editor updated, laid out and painted). That span holds the debounce (150 ms), the request, the
worker's check + drawing + table ("server", wall clock; "server_cpu": CPU seconds of the worker and
its `dot`, what the server part takes on an idle machine), and the page's work ("browser").
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=1001)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp())
    shutil.copy(ROOT / "resdsl/zoo/specs/preact_resnet.res", tmp / "preact_resnet.res")
    proc = subprocess.Popen([sys.executable, "-m", "resdsl", "serve", str(tmp), "--port", "0"], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = next(m.group(0) for line in proc.stdout if (m := re.search(r"http://\S+token=\S+", line)))
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(tempfile.mkdtemp(), executable_path=shutil.which("chromium"),
                                                       args=ARGS, headless=True, viewport={"width": 1400, "height": 860})
            page = ctx.new_page()
            page.goto(url)
            page.wait_for_selector("#set-depth", timeout=120_000)
            page.fill("#set-depth", str(a.depth))
            units = (a.depth - 2) // 9
            page.wait_for_function(f"() => [...document.querySelectorAll('#table tbody td')].some(c => c.textContent.endsWith('×{units}'))",
                                   timeout=120_000)
            page.evaluate("""() => document.querySelector('#text').addEventListener('keydown',
                                () => { window.lastKey = performance.now(); }, true)""")
            text = page.input_value("#text")
            at = text.index("classes = 10") + len("classes = 10")
            results = []
            for i in range(a.rounds + 1):
                page.evaluate(f"() => {{ const t = document.querySelector('#text'); t.focus(); t.setSelectionRange({at + (i % 2)}, {at + (i % 2)}); }}")
                want = "100" if i % 2 == 0 else "10"
                page.keyboard.press("0" if i % 2 == 0 else "Backspace")
                page.wait_for_function(f"""() => window.resdslLastRedraw && window.resdslLastRedraw.at > window.lastKey
                                           && window.resdslLastRedraw.paintedAt
                                           && document.querySelector('#totals td:nth-child(3)').textContent === '{want}'""",
                                       timeout=60_000)
                r = page.evaluate("() => ({...window.resdslLastRedraw, key: window.lastKey})")
                if i:                                          # the first round warms up
                    results.append({"after_keystroke_ms": r["paintedAt"] - r["key"], "server_ms": r["serverMs"],
                                    "server_cpu_ms": r["serverCpuMs"],
                                    "browser_ms": r["browserMs"], "browser_paint_ms": r["paintedAt"] - r["at"] + r["browserMs"], "round_trip_ms": r["roundTripMs"]})
            ctx.close()
    finally:
        proc.terminate()
        proc.wait(10)
    summary = {k: {"median": statistics.median(x[k] for x in results), "max": max(x[k] for x in results)}
               for k in results[0]}
    print(json.dumps({"depth": a.depth, "rounds": a.rounds, "machine": f"{platform.processor() or platform.machine()}, "
                      f"{os.cpu_count()} cores", "load": os.getloadavg(), "summary": summary, "rounds_ms": results}, indent=1))


if __name__ == "__main__":
    main()
