"""The checking worker: one child process that parses, checks, draws and costs specs for the server.

A spec typed into the page is hostile input. The worker reads it under the CLI's budgets
(resdsl/limits.py, the same `RESDSL_LIMIT_*` variables), under an address-space limit of the
memory budget, and the server waits for each answer at most `time_limit` seconds; past that it
kills the worker's whole process group (the worker and a `dot` it may be running) and starts a
fresh one. A spec that hangs or eats memory therefore costs one error message, never the server.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

MAX_BOXES = 1500          # a drawing with more boxes takes seconds in `dot` and is unreadable
START_TIMEOUT = 120.0     # seconds for a fresh worker to import resdsl (a loaded machine is slow)


# ---- what the worker does (runs in the child; callable in-process for tests) ----

def error_doc(e: Exception) -> dict:
    """A SpecError as the page shows it: `check`'s rendered text, and where it is."""
    from ..errors import SpecError

    if not isinstance(e, SpecError):
        return {"message": str(e), "notes": [], "text": f"error: {e}"}
    s = e.span
    where = {"file": s.file, "line": s.line, "column": s.column, "end_line": s.end_line or s.line,
             "end_column": s.end_column or s.column + 1} if s else {}
    return {"message": e.message, "notes": list(e.notes), "text": e.render(), **where}


def _load(req: dict):
    """(program, network name, parameter values) of the request's text: a served file's buffer, or a
    zoo spec with the zoo name's network and arguments."""
    from ..api import _params
    from ..frontend.load import load_as
    from ..zoo import names

    network, values = req.get("network") or None, {}
    if req.get("zoo"):
        z = names.table().get(req["zoo"])
        if z is not None:
            network, values = z.network, dict(z.params)
    prog = load_as(req["text"], req["path"], req.get("allow_imports", ()), shown_as=req.get("shown"))
    values.update(_params({k: v for k, v in (req.get("sets") or {}).items() if str(v).strip()}))
    return prog, network, values


def _span_text(text: str, span) -> str:
    lines = text.splitlines()
    if span is None or not 0 < span.line <= len(lines):
        return ""
    if span.end_line == span.line:
        return lines[span.line - 1][span.column - 1: span.end_column - 1]
    first = lines[span.line - 1][span.column - 1:]
    return "\n".join([first, *lines[span.line: span.end_line - 1], lines[span.end_line - 1][: span.end_column - 1]])


def _form(prog, network: str | None, values: dict) -> dict:
    """The networks of the file and the chosen one's parameters with their defaults (the `--set` form)."""
    from ..cost.static import jsonable

    net = prog.network(network)
    params = [{"name": p.name, "default": _span_text(prog.text, p.default.span) if p.default is not None else "",
               "value": str(jsonable(values[p.name])) if p.name in values else None} for p in net.params]
    return {"network": net.name, "networks": list(prog.main_networks), "params": params}


def focus_of(g, clicked: str | None) -> str | None:
    """What a click focuses: a unit's merge node is its unit; one op is its residual unit or section."""
    if not clicked:
        return None
    clicked = clicked.removesuffix(".merge")
    if clicked in g.nodes and g.nodes[clicked]["kind"] != "input":
        scope = g.nodes[clicked]["scope"]
        return scope["block"] or scope["section"]
    return clicked


def _svg(g, level: str | None, focus: str | None, meanwhile=None) -> tuple[str | None, str, str | None]:
    """(SVG text or None, level drawn, a note) for one view of the graph; `meanwhile()` runs while
    `dot` lays the drawing out (another process: the two overlap)."""
    from concurrent.futures import ThreadPoolExecutor

    from ..render import level_for, to_dot, view

    lvl = level_for(level, focus)
    drawn = view(g, lvl, focus)
    if len(drawn.nodes) > MAX_BOXES:
        if meanwhile:
            meanwhile()
        return None, lvl, (f"{len(drawn.nodes):,} boxes at {lvl} level are too many to draw quickly; "
                           "choose the stage or network level, or focus on one stage or block")
    dot = to_dot(drawn)
    with ThreadPoolExecutor(1) as pool:
        laid_out = pool.submit(dot.pipe, format="svg")
        if meanwhile:
            meanwhile()
        svg = laid_out.result().decode("utf-8")
    return svg[svg.find("<svg"):], lvl, None


def _table(g) -> dict:
    from ..cost.tables import drop_path, drop_text, human, section_rows, shape_str
    from ..ir.shapes import totals

    rows = [{"name": r.name, "what": r.what, "output": shape_str(r.out_shape), "params": r.params,
             "params_text": f"{r.params:,}", "macs": r.macs, "macs_text": human(r.macs),
             "drop_path": drop_text(drop_path(g, r))} for r in section_rows(g)]
    params, macs = totals(g)
    out = g.nodes[g.graph["output"]]["out_shape"]
    return {"rows": rows, "total": {"params": params, "params_text": f"{params:,}", "macs": macs,
                                    "macs_text": human(macs), "output": shape_str(out)},
            "input": shape_str(g.graph["input_shape"])}


def _compare(a_net, a_g, req: dict) -> dict:
    """`profile --vs`: B's stage drawing, and B/A for every total both have (cost/report.py's TOTALS)."""
    from ..api import graph_of
    from ..api import load_spec
    from ..cost.report import TOTALS, title
    from ..cost.static import profile

    prog, network, values = _load(req)
    b_net = load_spec(prog, network, **values)
    b_g = graph_of(b_net)
    a, b = profile(a_net, a_g), profile(b_net, b_g)
    rows = []
    for label, get, fmt in TOTALS:
        va, vb = get(a), get(b)
        if va is None and vb is None:
            continue
        rows.append({"label": label, "a": "-" if va is None else fmt(va), "b": "-" if vb is None else fmt(vb),
                     "ratio": f"{vb / va:.3f}" if va and vb is not None else "-"})
    level = req.get("level") if req.get("level") in ("network", "stage") else "stage"    # B whole, as A is drawn
    svg, _, note = _svg(b_g, level, None)
    return {"a": title(a), "b": title(b), "rows": rows, "svg": svg, "note": note}


_last: dict = {}          # the last program's net and graph, reused while only comments, layout, the level or the focus change


def _same_program(prog, network, values) -> tuple:
    """What the net depends on: the syntax trees without positions (comments and spacing do not
    count), the imported files, the network and its arguments."""
    from ..source.fmt import tree_key

    trees = tuple((k, tree_key(v)) for d in (prog.blocks, prog.networks) for k, v in sorted(d.items()))
    return trees, tuple(sorted(prog.files.items()))[1:], network, repr(sorted(values.items()))


def check(req: dict) -> dict:
    """One answer to the page: the drawing, the per-stage table and totals, or the error; `seq` echoed."""
    from ..api import graph_of, load_spec
    from ..errors import SpecError

    t0, c0 = time.perf_counter(), _cpu()
    out: dict[str, Any] = {"seq": req.get("seq"), "ok": False}
    try:
        prog, network, values = _load(req)
        out["form"] = _form(prog, network, values)
        key = _same_program(prog, network, values)
        if _last.get("key") != key:
            _last.clear()
            net = load_spec(prog, network, **values)
            _last.update(key=key, net=net, g=graph_of(net))
        net, g = _last["net"], _last["g"]
        t1 = time.perf_counter()
        focus = focus_of(g, req.get("focus"))

        def table() -> None:
            out["table"] = _last.get("table") or _last.setdefault("table", _table(g))
        try:
            out["svg"], out["level"], out["note"] = _svg(g, req.get("level"), focus, table)
        except SpecError as e:
            if not focus or not e.message.startswith("nothing to focus on"):
                raise
            gone, focus = focus, None          # an edit removed the focused part: draw the whole net
            out["svg"], out["level"], out["note"] = _svg(g, req.get("level"), None, table)
            out["note"] = f"'{gone}' is no longer in the network; focus cleared"
        out["focus"] = focus
        out["ok"] = True
        if req.get("vs"):
            try:
                out["vs"] = _compare(net, g, {**req["vs"], "level": out["level"]})
            except Exception as e:                 # B's mistake is B's: A stays drawn
                out["vs"] = {"error": _describe(e)}
        out["ms"] = {"check": round((t1 - t0) * 1000)}
    except Exception as e:
        out["error"] = _describe(e)
        out["ms"] = {}
    out["ms"].update(total=round((time.perf_counter() - t0) * 1000), cpu=round((_cpu() - c0) * 1000))
    return out


def _cpu() -> float:
    """CPU seconds of this process and its finished children (`dot`): the time the check would take
    on an idle machine, whatever else is running."""
    try:
        import resource

        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    except ImportError:
        return time.process_time()


def _describe(e: BaseException) -> dict:
    """Every failure as one message, the way the CLI's reports_errors words it; never a traceback
    for a spec's mistake (an unexpected exception is a bug in resdsl: its last lines are shown)."""
    import graphviz

    from ..errors import SpecError

    if isinstance(e, SpecError):
        return error_doc(e)
    if isinstance(e, RecursionError):
        return {"message": "input nested too deeply (see resdsl.limits 'nesting')", "notes": [],
                "text": "error: input nested too deeply (see resdsl.limits 'nesting')"}
    if isinstance(e, MemoryError):
        msg = "out of memory; see the memory budget (RESDSL_LIMIT_MEMORY)"
        return {"message": msg, "notes": [], "text": f"error: {msg}"}
    if isinstance(e, (graphviz.ExecutableNotFound, graphviz.CalledProcessError)):
        msg = f"Graphviz `dot` could not draw this: {str(e)[:300]}"
        return {"message": msg, "notes": ["install Graphviz, e.g. `apt-get install graphviz`"], "text": f"error: {msg}"}
    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__)[-3:])
    return {"message": f"internal error (a bug in resdsl): {type(e).__name__}: {e}", "notes": [],
            "text": f"internal error (a bug in resdsl):\n{tb}"}


HANDLERS = {"check": check}


def _main() -> None:
    """The child (`python -m resdsl.serve.worker MEMORY`): its own session (killed whole), bounded
    memory, then one JSON line in, one JSON line out. Its stdout is the answer channel only:
    anything printed by a library goes to stderr."""
    import json
    import sys

    memory = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if memory > 0:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        except (ImportError, ValueError, OSError):
            pass
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    from .. import api, render  # noqa: F401  (imported once, before the first request)
    from ..cost import static, tables  # noqa: F401

    def send(doc: dict) -> None:
        answers.write(json.dumps(doc) + "\n")
        answers.flush()

    send({"ready": os.getpid()})
    for line in sys.stdin:
        req: dict = {}
        try:
            req = json.loads(line)
            out = HANDLERS[req.get("op", "check")](req)
        except BaseException as e:          # noqa: BLE001  (the loop must answer)
            out = {"seq": req.get("seq"), "ok": False, "error": _describe(e)}
        send(out)


# ---- the server's side ----

class WorkerStopped(Exception):
    pass


class Worker:
    """A child process answering one request at a time; killed and replaced after `time_limit` s."""

    def __init__(self, time_limit: float = 10.0, memory: int | None = None):
        from .. import limits

        self.time_limit = time_limit
        self.memory = limits.memory_budget() if memory is None else memory
        self.proc: subprocess.Popen | None = None
        self.buffer = b""
        self.lock = threading.Lock()
        self.restarts = 0
        self.closed = False

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_package_root(), os.environ.get("PYTHONPATH")]))}
        proc = subprocess.Popen([sys.executable, "-m", "resdsl.serve.worker", str(self.memory)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, env=env, start_new_session=True)
        self.proc, self.buffer = proc, b""
        try:
            self._read(START_TIMEOUT)
        except (WorkerStopped, TimeoutError):
            self.stop()
            raise RuntimeError("the resdsl checking process did not start") from None

    def ensure_started(self) -> None:
        with self.lock:
            if not self.closed and (self.proc is None or self.proc.poll() is not None):
                self.start()

    def _restart(self) -> None:
        try:
            self.ensure_started()
        except RuntimeError:           # the next call tries again, and says so if it fails
            pass

    def close(self) -> None:
        """Stop for good (the server is shutting down): no replacement is started."""
        self.closed = True
        with self.lock:
            self.stop()

    def _read(self, limit: float) -> dict:
        """The next JSON line from the child, within `limit` seconds."""
        import json
        import select

        deadline = time.monotonic() + limit
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise WorkerStopped
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def call(self, req: dict, time_limit: float | None = None) -> dict:
        """The worker's answer, or an error saying it was stopped (time limit, crash)."""
        import json

        limit = self.time_limit if time_limit is None else time_limit
        with self.lock:
            if self.closed:
                raise RuntimeError("the server is shutting down")
            if self.proc is None or self.proc.poll() is not None:
                self.start()
            t0 = time.perf_counter()
            try:
                self.proc.stdin.write((json.dumps(req) + "\n").encode("utf-8"))
                self.proc.stdin.flush()
                return self._read(limit)
            except TimeoutError:
                why = (f"stopped after {limit:g} s: checking this spec took longer than the time limit",
                       "`resdsl serve --time-limit SECONDS` raises it")
            except (WorkerStopped, OSError, ValueError):
                code = self.proc.poll()
                why = (f"the checking process stopped (exit code {code}) after {time.perf_counter() - t0:.1f} s",
                       "it runs under the memory budget (RESDSL_LIMIT_MEMORY)")
            self.stop()
            self.restarts += 1
            threading.Thread(target=self._restart, daemon=True).start()   # a fresh one, in the background
            return {"seq": req.get("seq"), "ok": False, "killed": True,
                    "error": {"message": why[0], "notes": [why[1]], "text": f"error: {why[0]}\nnote: {why[1]}"}}

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stop(self) -> None:
        """SIGKILL the child's whole session (it may be running `dot`)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            proc.kill()
        proc.wait(5)
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()
            except OSError:
                pass


def _package_root() -> str:
    """The folder holding the `resdsl` package this server runs, so the child imports the same one."""
    return str(Path(__file__).resolve().parents[2])


if __name__ == "__main__":
    _main()
