"""The checking worker: one child process that parses, checks, draws and costs specs for the server.

A spec typed into the page is hostile input. The worker reads it under the CLI's budgets
(resdsl/limits.py, the same `RESDSL_LIMIT_*` variables), under an address-space limit of the
memory budget, and the server waits for each answer at most `time_limit` seconds; past that it
kills the worker's whole process group (the worker and a `dot` it may be running) and starts a
fresh one. A spec that hangs or eats memory therefore costs one error message, never the server.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
import traceback
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


def _svg(g, level: str | None, focus: str | None) -> tuple[str | None, str, str | None]:
    """(SVG text or None, level drawn, a note) for one view of the graph."""
    from ..render import level_for, to_dot, view

    lvl = level_for(level, focus)
    drawn = view(g, lvl, focus)
    if len(drawn.nodes) > MAX_BOXES:
        return None, lvl, (f"{len(drawn.nodes):,} boxes at {lvl} level are too many to draw quickly; "
                           "choose the stage or network level, or focus on one stage or block")
    svg = to_dot(drawn).pipe(format="svg").decode("utf-8")
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
    """`profile --vs`: B's stage drawing, and B/A for every total both have (cost/render.py's TOTALS)."""
    from ..api import graph_of
    from ..api import load_spec
    from ..cost.render import TOTALS, title
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
    svg, _, note = _svg(b_g, "stage", None)
    return {"a": title(a), "b": title(b), "rows": rows, "svg": svg, "note": note}


_last: dict = {}          # the last program's net and graph, reused while only comments, layout, the level or the focus change


def _same_program(prog, network, values) -> tuple:
    """What the net depends on: the syntax trees without positions (comments and spacing do not
    count), the imported files, the network and its arguments."""
    from ..format import tree_key

    trees = tuple((k, tree_key(v)) for d in (prog.blocks, prog.networks) for k, v in sorted(d.items()))
    return trees, tuple(sorted(prog.files.items()))[1:], network, repr(sorted(values.items()))


def check(req: dict) -> dict:
    """One answer to the page: the drawing, the per-stage table and totals, or the error; `seq` echoed."""
    from ..api import graph_of, load_spec

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
        out["svg"], out["level"], out["note"] = _svg(g, req.get("level"), focus)
        out["focus"] = focus
        out["table"] = _last.get("table") or _last.setdefault("table", _table(g))
        out["ok"] = True
        if req.get("vs"):
            try:
                out["vs"] = _compare(net, g, req["vs"])
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


def _main(conn, memory: int) -> None:
    """The child: its own process group (killed whole), bounded memory, then answer requests."""
    os.setsid()
    if memory > 0:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        except (ImportError, ValueError, OSError):
            pass
    from .. import api, render  # noqa: F401  (imported once, before the first request)
    from ..cost import static, tables  # noqa: F401

    conn.send({"ready": os.getpid()})
    while True:
        try:
            req = conn.recv()
        except (EOFError, OSError):         # the server went away
            return
        try:
            out = HANDLERS[req.get("op", "check")](req)
        except BaseException as e:          # noqa: BLE001  (the loop must answer)
            out = {"seq": req.get("seq"), "ok": False, "error": _describe(e)}
        conn.send(out)


# ---- the server's side ----

class Worker:
    """A child process answering one request at a time; killed and replaced after `time_limit` s."""

    def __init__(self, time_limit: float = 10.0, memory: int | None = None):
        from .. import limits

        self.time_limit = time_limit
        self.memory = limits.memory_budget() if memory is None else memory
        self.proc = None
        self.conn = None
        self.lock = threading.Lock()
        self.restarts = 0

    def start(self) -> None:
        ctx = mp.get_context("spawn")       # no fork of a threaded server
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_main, args=(child, self.memory), daemon=True, name="resdsl-serve-worker")
        proc.start()
        child.close()
        if not parent.poll(START_TIMEOUT):
            _kill(proc)
            raise RuntimeError("the resdsl worker did not start")
        parent.recv()
        self.proc, self.conn = proc, parent

    def ensure_started(self) -> None:
        with self.lock:
            if self.proc is None or not self.proc.is_alive():
                self.start()

    def call(self, req: dict, time_limit: float | None = None) -> dict:
        """The worker's answer, or an error saying it was stopped (time limit, crash)."""
        limit = self.time_limit if time_limit is None else time_limit
        with self.lock:
            if self.proc is None or not self.proc.is_alive():
                self.start()
            t0 = time.perf_counter()
            try:
                self.conn.send(req)
                if self.conn.poll(limit):
                    return self.conn.recv()
                why = (f"stopped after {limit:g} s: checking this spec took longer than the time limit",
                       "`resdsl serve --time-limit SECONDS` raises it")
            except (EOFError, OSError, BrokenPipeError):
                code = self.proc.exitcode if self.proc else None
                why = (f"the checking process stopped (exit code {code}) after {time.perf_counter() - t0:.1f} s",
                       "it runs under the memory budget (RESDSL_LIMIT_MEMORY)")
            self.stop()
            self.restarts += 1
            threading.Thread(target=self.ensure_started, daemon=True).start()   # a fresh one, in the background
            return {"seq": req.get("seq"), "ok": False, "killed": True,
                    "error": {"message": why[0], "notes": [why[1]], "text": f"error: {why[0]}\nnote: {why[1]}"}}

    def stop(self) -> None:
        if self.proc is not None:
            _kill(self.proc)
        if self.conn is not None:
            self.conn.close()
        self.proc = self.conn = None


def _kill(proc) -> None:
    """SIGKILL the worker's process group (it called setsid), so a `dot` it started dies too."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        proc.kill()
    proc.join(5)
