"""`resdsl serve` at the HTTP level: token, Host, paths confined to the served folder, size limits,
budgets, a check past the time limit killed, answers in order, save through the atomic writer.

The worker is a real child process (one per module, ~2 s to start); the app is driven in-process
through httpx (starlette's TestClient), with a base URL on 127.0.0.1 as a browser would send.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="resdsl serve needs the `serve` extra (starlette, uvicorn)")
pytest.importorskip("httpx", reason="the server tests drive the app with httpx")

from click.testing import CliRunner  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from resdsl.serve.app import MAX_BODY, Server, create_app, new_token  # noqa: E402
from resdsl.serve.worker import Worker  # noqa: E402

from conftest import ROOT  # noqa: E402
from serving import SPEC, serve_process  # noqa: E402

BASE = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def worker():
    w = Worker(time_limit=60)
    w.start()
    yield w
    w.close()


@pytest.fixture
def served(tmp_path, worker):
    root = tmp_path / "served"
    root.mkdir()
    (root / "tiny.res").write_text(SPEC)
    (tmp_path / "secret.res").write_text(SPEC)            # beside the served folder: never reachable
    token = new_token()
    server = Server(root, token, worker, {"path": "tiny.res"})
    client = TestClient(create_app(server), base_url=BASE)
    client.headers["X-Resdsl-Token"] = token
    return server, client, root


def check(client, text=SPEC, seq=1, **kw):
    r = client.post("/api/check", json={"seq": seq, "page": "p", "path": "tiny.res", "text": text, **kw})
    assert r.status_code == 200, r.text
    return r.json()


# ---- token and Host ----

@pytest.mark.parametrize("path", ["/", "/static/app.js", "/api/info", "/api/open?path=tiny.res"])
def test_wrong_or_missing_token_is_403(served, path):
    server, client, _ = served
    bare = TestClient(create_app(server), base_url=BASE)
    assert bare.get(path).status_code == 403
    assert bare.get(path, headers={"X-Resdsl-Token": "x" + server.token[1:]}).status_code == 403
    assert bare.get(path + ("&" if "?" in path else "?") + "token=wrong").status_code == 403
    assert bare.post("/api/check", json={"seq": 1, "text": SPEC}).status_code == 403
    assert bare.post("/api/save", json={"path": "new.res", "text": SPEC}).status_code == 403
    assert not (server.folder.root / "new.res").exists()


def test_token_in_query_header_or_authorization(served):
    server, client, _ = served
    bare = TestClient(create_app(server), base_url=BASE)
    page = bare.get(f"/?token={server.token}")
    assert page.status_code == 200 and "<textarea" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["referrer-policy"] == "no-referrer"          # the token is in the URL
    assert bare.get("/api/info", headers={"Authorization": f"token {server.token}"}).status_code == 200
    assert bare.get("/api/info", headers={"X-Resdsl-Token": server.token}).status_code == 200


def test_other_host_is_403(served):
    """A page on evil.example whose name resolves to 127.0.0.1 (DNS rebinding) is refused."""
    server, client, _ = served
    r = client.get("/api/info", headers={"Host": "evil.example:8765"})
    assert r.status_code == 403


# ---- paths ----

@pytest.mark.parametrize("rel", ["../secret.res", "/etc/passwd.res", "sub/../../secret.res", "..\\secret.res",
                                 "~/secret.res"])
def test_path_escape_refused(served, rel):
    server, client, root = served
    assert client.get("/api/open", params={"path": rel}).status_code in (400, 403)
    r = client.post("/api/save", json={"path": rel, "text": "x"})
    assert r.status_code in (400, 403)
    r = client.post("/api/check", json={"seq": 1, "path": rel, "text": SPEC})
    assert r.status_code in (400, 403)
    assert (root.parent / "secret.res").read_text() == SPEC


def test_symlink_out_of_the_folder_refused(served):
    server, client, root = served
    (root / "link.res").symlink_to(root.parent / "secret.res")
    (root / "out").symlink_to(root.parent)
    assert client.get("/api/open", params={"path": "link.res"}).status_code == 403
    assert client.get("/api/open", params={"path": "out/secret.res"}).status_code == 403
    assert client.post("/api/save", json={"path": "out/secret.res", "text": "x"}).status_code == 403
    assert client.post("/api/save", json={"path": "link.res", "text": "x"}).status_code == 403
    assert (root.parent / "secret.res").read_text() == SPEC
    assert "link.res" not in client.get("/api/info").json()["files"]


def test_only_res_files(served):
    server, client, root = served
    (root / "notes.txt").write_text("x")
    assert client.get("/api/open", params={"path": "notes.txt"}).status_code == 400
    assert client.post("/api/save", json={"path": "run.sh", "text": "x"}).status_code == 400
    assert not (root / "run.sh").exists()


# ---- size ----

def test_oversized_request_is_413(served):
    server, client, root = served
    big = "#" * (MAX_BODY + 10)
    assert client.post("/api/check", json={"seq": 1, "text": big}).status_code == 413
    assert client.post("/api/save", json={"path": "big.res", "text": big}).status_code == 413
    assert not (root / "big.res").exists()


def test_oversized_chunked_request_is_413(served):
    """No Content-Length (chunked transfer): the body is counted as it arrives."""
    server, client, _ = served

    def chunks():
        for _ in range(MAX_BODY // 65536 + 2):
            yield b" " * 65536
    r = client.post("/api/check", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_save_under_body_limit_but_over_source_budget_is_413(served):
    server, client, root = served
    text = "#" * (300 << 10)                             # source_bytes budget: 256 KiB
    assert client.post("/api/save", json={"path": "big.res", "text": text}).status_code == 413
    assert not (root / "big.res").exists()


# ---- what a check answers ----

def test_check_answers_the_drawing_and_the_table_of_check_json(served):
    from resdsl.cli import main

    server, client, root = served
    out = check(client)
    assert out["ok"] and out["svg"].startswith("<svg") and "stages.1" in out["svg"]
    ref = json.loads(CliRunner().invoke(main, ["check", str(root / "tiny.res"), "--json"]).stdout)
    assert [(r["name"], r["params"], r["macs"]) for r in out["table"]["rows"]] == \
        [(s["name"], s["params"], s["macs"]) for s in ref["sections"]]
    assert out["table"]["total"]["params"] == ref["total_params"]
    assert out["form"]["params"] == [{"name": "width", "default": "16", "value": None},
                                     {"name": "classes", "default": "10", "value": None}]


def test_error_is_checks_message_at_its_line(served, tmp_path):
    server, client, root = served
    bad = SPEC.replace("stage x 2 basic(width * 2) stride 2", "stage x 2 basic(width * 2, strid = 2)")
    out = check(client, bad)
    assert not out["ok"]
    e = out["error"]
    assert (e["file"], e["line"]) == ("tiny.res", 5)
    (root / "cli").mkdir()
    (root / "cli" / "tiny.res").write_text(bad)
    from resdsl.cli import main

    old = os.getcwd()
    os.chdir(root / "cli")
    try:
        cli = CliRunner().invoke(main, ["check", "tiny.res"])
    finally:
        os.chdir(old)
    assert cli.exit_code == 1
    assert e["text"].strip() == cli.stderr.strip()
    assert "note:" in e["text"]


def test_set_fields_and_their_errors(served):
    server, client, _ = served
    out = check(client, sets={"width": "32"})
    assert out["ok"] and out["table"]["rows"][0]["output"].startswith("32×")
    out = check(client, sets={"width": "32 +"}, seq=2)
    assert not out["ok"] and out["error"]["file"] == "--set width"


def test_focus_on_a_clicked_unit_draws_its_layers(served):
    server, client, _ = served
    out = check(client, focus="stages.1.blocks.0.merge")
    assert out["ok"] and out["focus"] == "stages.1.blocks.0" and out["level"] == "layer"
    assert "stages.1.blocks.0 · layer level" in out["svg"]


def test_spec_over_a_budget_is_a_located_error(served):
    server, client, _ = served
    big = SPEC.replace("stage x 2 basic(width)\n", "stage x 200000 basic(width)\n")
    out = check(client, big)
    assert not out["ok"] and "limit 'ops'" in out["error"]["text"] and out["error"]["line"] == 4


def test_worker_runs_under_the_memory_budget(worker):
    from resdsl import limits

    text = Path(f"/proc/{worker.pid}/limits").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("Max address space"))
    assert line.split()[3] == str(limits.memory_budget())


HANG = """network hang(n = 99999) {
  input 3x32x32
  let grid = [[i * j for j in range(n)] for i in range(n)]
  stem { conv 16 k3 }
  head { avgpool; fc 10 }
}
"""


def test_a_spec_that_would_hang_is_killed_and_reported(served):
    """A nested comprehension of 10^10 values (each list under the list budgets) runs for minutes
    in `resdsl check`; the worker running it is killed at the time limit, its whole process
    group with it, the page gets the reason, and a fresh worker answers the next check."""
    server, client, _ = served
    quick = Worker(time_limit=1)
    quick.start()
    server.worker, old = quick, quick.pid
    try:
        out = check(client, HANG)
        assert not out["ok"] and out["killed"] and "stopped after 1 s" in out["error"]["text"]
        assert "time limit" in out["error"]["message"] and out["error"]["notes"]
        assert not Path(f"/proc/{old}").exists()
        quick.time_limit = 60
        assert check(client, SPEC, seq=2)["ok"]
        assert quick.pid != old and quick.restarts == 1
    finally:
        quick.close()


EAT = HANG.replace("[[i * j for j in range(n)] for i in range(n)]", "[range(n) for i in range(n)]")


def _eat_then_check(tmp_path) -> dict:
    """EAT checked by a worker capped at 300 MiB: its answer, after asserting that the same worker
    (no restart) then answers a small check."""
    w = Worker(time_limit=60, memory=300 << 20)
    w.start()
    try:
        pid = w.pid
        req = {"op": "check", "seq": 1, "text": EAT, "path": str(tmp_path / "e.res"), "shown": "e.res"}
        out = w.call(req)
        again = w.call({**req, "text": EAT.replace("99999", "3"), "seq": 2})
        assert again["ok"] and w.pid == pid and w.restarts == 0
        return out
    finally:
        w.close()


def test_a_spec_that_eats_memory_stops_at_the_value_budget(tmp_path):
    """10^10 integers (each list under the list budget): the value budget counts the comprehension's
    elements as it grows and stops it, a located error at the comprehension, long before memory
    runs short; the same worker answers the next check."""
    out = _eat_then_check(tmp_path)
    assert not out["ok"] and out["error"]["message"].startswith("value too large")
    assert (out["error"]["line"], out["error"]["column"]) == (3, 14)
    assert "RESDSL_LIMIT_VALUE_SIZE" in out["error"]["text"]


def test_a_spec_that_eats_memory_stops_at_the_workers_cap(tmp_path, monkeypatch):
    """The same spec with the value budget raised out of the way: in the worker, whose address space
    is capped (here at 300 MiB; by default the memory budget), allocation fails in about a second,
    the check answers check's out-of-memory message, and the same worker answers the next check."""
    monkeypatch.setenv("RESDSL_LIMIT_VALUE_SIZE", str(10 ** 12))    # the worker inherits it
    out = _eat_then_check(tmp_path)
    assert not out["ok"] and out["error"]["message"].startswith("out of memory")


def test_a_check_overtaken_by_a_newer_edit_is_superseded(served):
    """Two edits from one page wait for the worker; the older is answered `superseded` without
    running, the newer with its drawing (the page drops older answers too: test_serve_browser)."""
    import httpx

    server, _, _ = served

    async def run():
        transport = httpx.ASGITransport(app=create_app(server))
        async with httpx.AsyncClient(transport=transport, base_url=BASE,
                                     headers={"X-Resdsl-Token": server.token}) as c:
            await server.lock.acquire()                   # the worker is busy
            body = {"page": "p", "path": "tiny.res", "text": SPEC}
            first = asyncio.create_task(c.post("/api/check", json={**body, "seq": 1}))
            await asyncio.sleep(0.2)
            second = asyncio.create_task(c.post("/api/check", json={**body, "seq": 2}))
            await asyncio.sleep(0.2)
            server.lock.release()
            return (await first).json(), (await second).json()

    server.lock = asyncio.Lock()
    a, b = asyncio.run(run())
    assert a == {"seq": 1, "superseded": True}
    assert b["seq"] == 2 and b["ok"]


# ---- save ----

def test_save_writes_the_file_atomically_inside_the_folder(served):
    server, client, root = served
    new = SPEC.replace("classes = 10", "classes = 100")
    r = client.post("/api/save", json={"path": "tiny.res", "text": new})
    assert r.status_code == 200 and r.json()["saved"] == "tiny.res"
    assert (root / "tiny.res").read_text() == new
    assert not [p for p in root.iterdir() if p.name.startswith(".")]          # no temporary left
    r = client.post("/api/save", json={"path": "tiny.res", "text": SPEC, "overwrite": False})
    assert r.status_code == 409 and (root / "tiny.res").read_text() == new
    (root / "sub").mkdir()
    assert client.post("/api/save", json={"path": "sub/copy.res", "text": SPEC}).status_code == 200
    assert (root / "sub/copy.res").read_text() == SPEC
    assert "sub/copy.res" in client.get("/api/info").json()["files"]


def test_zoo_is_read_only_and_saves_as_into_the_folder(served):
    server, client, root = served
    doc = client.get("/api/open", params={"zoo": "resnet50"}).json()
    assert doc["readonly"] and doc["network"] == "resnet"
    out = client.post("/api/check", json={"seq": 1, "zoo": "resnet50", "text": doc["text"]}).json()
    assert out["ok"] and out["table"]["total"]["params"] == 25_557_032      # torchvision's resnet50
    assert client.get("/api/open", params={"zoo": "../../etc/passwd"}).status_code == 404
    r = client.post("/api/save", json={"path": "mine.res", "text": doc["text"], "overwrite": False})
    assert r.status_code == 200 and (root / "mine.res").read_text() == doc["text"]


def test_compare_gives_profile_vs_ratios(served):
    server, client, _ = served
    wide = SPEC.replace("width = 16", "width = 32")
    out = check(client, vs={"path": "tiny.res", "text": wide, "sets": {}})
    rows = {r["label"]: r for r in out["vs"]["rows"]}
    a, b = out["table"]["total"]["params"], None
    from resdsl.api import graph
    from resdsl.ir.shapes import totals

    b = totals(graph(wide))[0]
    assert rows["params"]["ratio"] == f"{b / a:.3f}" and out["vs"]["svg"].startswith("<svg")


def test_cli_serves_a_folder_a_file_or_a_zoo_name(tmp_path):
    from resdsl.serve.cli import target_of

    (tmp_path / "a.res").write_text(SPEC)
    assert target_of(str(tmp_path)) == (tmp_path, {})
    assert target_of(str(tmp_path / "a.res")) == (tmp_path.resolve(), {"path": "a.res"})
    root, opened = target_of("resnet50")
    assert opened == {"zoo": "resnet50"}
    from resdsl.errors import SpecError

    with pytest.raises(SpecError, match="resnet5O|neither"):
        target_of("resnet5O")


def test_serve_is_lazy():
    """`resdsl check` must not import the server (or uvicorn) to start fast."""
    import subprocess
    import sys

    code = "import sys, resdsl.cli; print(any(m.startswith(('uvicorn', 'starlette', 'resdsl.serve')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "False"


def test_level_switch_draws_each_level(served):
    server, client, _ = served
    boxes = {}
    for i, level in enumerate(("network", "stage", "block", "layer")):
        out = check(client, level=level, seq=10 + i)
        assert out["ok"] and out["level"] == level and f"{level} level" in out["svg"]
        boxes[level] = len(re.findall(r'<g id="node\d+" class="node\b', out["svg"]))
    assert boxes["network"] < boxes["stage"] <= boxes["block"] < boxes["layer"]
    out = check(client, level="everything", seq=20)
    assert not out["ok"] and "unknown level 'everything'" in out["error"]["text"]


def test_a_drawing_too_big_is_not_drawn_but_the_table_is(served):
    """ResNet-1001 at layer level is ~3,300 boxes: `dot` would take minutes; the page says why."""
    server, client, _ = served
    text = (ROOT / "resdsl/zoo/specs/preact_resnet.res").read_text()
    out = check(client, text, sets={"depth": "1001"}, level="layer")
    assert out["ok"] and out["svg"] is None and "too many to draw" in out["note"]
    assert [r["what"] for r in out["table"]["rows"]][1:4] == ["preact_bottleneck ×111"] * 3   # (1001 - 2) / 9 units (He et al. 2016b)


@pytest.mark.parametrize("body", [b"[" * 100_000, b"{\"seq\": 1, \"text\": 5}", b"not json", b"[1, 2]",
                                  b"{\"seq\": \"1\", \"text\": \"x\"}", b"{\"seq\": 1, \"text\": \"\", \"vs\": 3}",
                                  b"{\"seq\": 1, \"text\": \"\", \"sets\": {\"a\": 1}}"])
def test_malformed_bodies_are_400(served, body):
    server, client, _ = served
    r = client.post("/api/check", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "error" in r.json()


def test_cli_refuses_what_it_cannot_serve_in_one_message():
    from resdsl.cli import main

    r = CliRunner().invoke(main, ["serve", "resnet5O"])
    assert r.exit_code == 1 and "neither a spec file nor a zoo name" in r.stderr and "resnet50" in r.stderr
    assert "Traceback" not in r.output
    r = CliRunner().invoke(main, ["serve", "--help"])
    assert r.exit_code == 0 and "127.0.0.1" in r.output


def test_save_refuses_to_overwrite_a_change_made_on_disk(served):
    """The page sends the version it opened; a file changed since (another editor) is not replaced."""
    server, client, root = served
    opened = client.get("/api/open", params={"path": "tiny.res"}).json()
    (root / "tiny.res").write_text(SPEC + "# edited elsewhere\n")
    r = client.post("/api/save", json={"path": "tiny.res", "text": SPEC, "base": opened["version"]})
    assert r.status_code == 409 and "changed on disk" in r.json()["error"]
    assert (root / "tiny.res").read_text().endswith("# edited elsewhere\n")
    again = client.get("/api/open", params={"path": "tiny.res"}).json()
    r = client.post("/api/save", json={"path": "tiny.res", "text": SPEC, "base": again["version"]})
    assert r.status_code == 200 and (root / "tiny.res").read_text() == SPEC
    assert r.json()["version"] == client.get("/api/open", params={"path": "tiny.res"}).json()["version"]


def test_a_focus_the_edit_removed_is_cleared(served):
    server, client, _ = served
    out = check(client, SPEC.replace("stage x 2 basic(width * 2) stride 2\n", ""), focus="stages.1.blocks.0")
    assert out["ok"] and out["focus"] is None and "no longer in the network" in out["note"]
    assert "stage level" in out["svg"]


def test_unsaved_text_imports_from_its_files_folder_and_no_further(served):
    """The buffer stands for its file: `import` resolves beside it, as `check` would after a save,
    and an import out of the folder is the CLI's located error."""
    server, client, root = served
    (root / "blocks.res").write_text("block twice(c) {\n  residual { conv c k3; bn; relu; conv c k3; bn }\n}\n")
    text = 'import "blocks.res"\n' + SPEC.replace("stage x 2 basic(width)", "stage x 2 twice(width)")
    out = check(client, text)
    assert out["ok"] and out["table"]["rows"][1]["what"] == "twice ×2"
    out = check(client, 'import "../secret.res"\n' + SPEC, seq=2)
    assert not out["ok"] and "outside the project folder" in out["error"]["message"]
    assert (out["error"]["file"], out["error"]["line"]) == ("tiny.res", 1)


def test_the_printed_url_accepts_at_once(tmp_path):
    """The URL is printed only once the socket listens: a browser opened on it at once (no retry)
    gets the page, never ERR_CONNECTION_REFUSED."""
    import socket
    import urllib.parse

    (tmp_path / "tiny.res").write_text(SPEC)
    with serve_process(tmp_path) as (proc, url):
        parts = urllib.parse.urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as s:    # no retry
            s.sendall(f"GET /api/info?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                      "Connection: close\r\n\r\n".encode())
            s.settimeout(60)
            head = s.recv(64).decode()
        assert head.startswith("HTTP/1.1 200"), head
