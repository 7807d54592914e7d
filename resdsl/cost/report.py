"""Rich tables for `resdsl profile`: one spec's rows, the cross-check, timings, two specs side by side."""
from __future__ import annotations

from rich.table import Table

from .tables import drop_text, human, human_bytes, shape_str

# (label, getter of a profile document) of the totals compared by --vs; None: not available
TOTALS = [
    ("params", lambda d: d["totals"]["params"], lambda v: f"{v:,}"),
    ("MACs", lambda d: d["totals"]["macs"], human),
    ("FLOPs (2·MACs)", lambda d: d["totals"]["flops"], human),
    ("activation memory", lambda d: d["totals"]["activation_bytes"], human_bytes),
    ("param memory fp32", lambda d: d["totals"]["param_bytes"]["fp32"], human_bytes),
    ("param memory bf16", lambda d: d["totals"]["param_bytes"]["bf16"], human_bytes),
    ("last stage RF", lambda d: d["stages"][-1]["rf"] if d["stages"] else None, str),
    ("last stage stride", lambda d: d["stages"][-1]["stride"] if d["stages"] else None, str),
    ("fwd latency ms", lambda d: _run(d, "forward", "latency_ms"), lambda v: f"{v:.2f}"),
    ("fwd throughput /s", lambda d: _run(d, "forward", "throughput"), lambda v: f"{v:.1f}"),
    ("fwd+bwd latency ms", lambda d: _run(d, "forward_backward", "latency_ms"), lambda v: f"{v:.2f}"),
    ("fwd+bwd throughput /s", lambda d: _run(d, "forward_backward", "throughput"), lambda v: f"{v:.1f}"),
    ("peak memory", lambda d: _peak(d, "bytes"), human_bytes),
    ("peak memory over baseline", lambda d: _peak(d, "increase_bytes"), human_bytes),
]


def _peak(d: dict, key: str):
    return d["measured"]["peak_memory"].get(key) if "measured" in d else None


def _run(d: dict, mode: str, key: str):
    return d["measured"][mode][key] if "measured" in d else None


def title(d: dict) -> str:
    args = ", ".join(f"{k}={v}" for k, v in d["args"].items())
    return f"{d['network']}({args})  input {shape_str(d['input_shape'])}"


def _rf(r: dict) -> str:
    return "global" if r["rf"] is None else str(r["rf"])


def profile_table(d: dict) -> Table:
    """Rows at the document's level, then the totals."""
    t = Table(title=title(d), title_justify="left", caption_justify="left", caption=(
        f"FLOPs = 2·MACs. activations: training, batch {d['batch_size']}, {d['precision']}, every op output "
        "kept for backward (resdsl/cost/memory.py). RF, stride: receptive field and jump in input pixels.\n"
        f"parameter memory {human_bytes(d['totals']['param_bytes']['fp32'])} fp32, "
        f"{human_bytes(d['totals']['param_bytes']['bf16'])} bf16"))
    t.add_column("name", no_wrap=True, min_width=max(len(r["name"]) for r in d["rows"]))
    t.add_column("what", no_wrap=True)
    drops = any("drop_path" in r for r in d["rows"])         # stochastic depth: a column where set
    for col in ("output", "params", "% params", "MACs", "FLOPs", "activations", "RF", "stride",
                *(("drop path",) if drops else ())):
        t.add_column(col, justify="right", no_wrap=True)

    def add(r: dict, name: str, what: str) -> None:
        t.add_row(name, what, shape_str(r["out_shape"]), f"{r['params']:,}", f"{r['params_pct']:.1f}",
                  human(r["macs"]), human(r["flops"]), human_bytes(r["activation_bytes"]), _rf(r), str(r["stride"]),
                  *((drop_text(r.get("drop_path")),) if drops else ()))

    if d["level"] != "network":
        for r in d["rows"]:
            add(r, r["name"], r["what"])
        t.add_section()
    add(d["totals"], "total", d["network"])
    return t


def check_table(c: dict) -> Table:
    t = Table(title="cross-check: graph MACs vs torch.utils.flop_counter (FLOPs / 2), one sample",
              title_justify="left")
    for col, just in (("op kind", "left"), ("graph", "right"), ("flop_counter", "right"), ("diff", "right")):
        t.add_column(col, justify=just)
    for k in c["by_kind"]:
        t.add_row(k["kind"], f"{k['graph']:,}", f"{k['counted']:,}", f"{k['diff']:+,}")
    for layer in c["layers"]:
        t.add_row(f"  {layer['layer']}", f"{layer['graph']:,}", f"{layer['counted']:,}", f"{layer['diff']:+,}")
    return t


def measured_table(d: dict) -> Table:
    m, s = d["measured"], d["measured"]["settings"]
    t = Table(title=f"measured on {s['device']} ({m['threads']} threads): batch {s['batch_size']}, "
                    f"{s['precision']}{', channels-last' if s['channels_last'] else ''}"
                    f"{', torch.compile' if s['compile'] else ''}; median of {s['repeats']} after "
                    f"{s['warmup']} warm-up", title_justify="left")
    for col in ("pass", "latency ms", "throughput /s", "min..max ms"):
        t.add_column(col, justify="left" if col == "pass" else "right")
    for mode, label in (("forward", "forward (eval, no_grad)"), ("forward_backward", "forward+backward (train)")):
        r = m[mode]
        t.add_row(label, f"{r['latency_ms']:.2f}", f"{r['throughput']:.1f}",
                  f"{min(r['times_ms']):.2f}..{max(r['times_ms']):.2f}")
    pm = m["peak_memory"]
    t.add_row(f"peak memory ({pm['kind']})", human_bytes(pm["bytes"]), "", "")
    if pm.get("increase_bytes") is not None:
        t.add_row("  of which over the step's baseline", human_bytes(pm["increase_bytes"]), "", "")
    return t


def ratios(a: dict, b: dict) -> dict[str, float | None]:
    """B / A for every total both documents have."""
    out = {}
    for label, get, _ in TOTALS:
        va, vb = get(a), get(b)
        if va is not None and vb is not None:
            out[label] = vb / va if va else None
    return out


def vs_table(a: dict, b: dict) -> Table:
    t = Table(title="B / A", title_justify="left")
    for col, just in (("", "left"), ("A", "right"), ("B", "right"), ("B/A", "right")):
        t.add_column(col, justify=just)
    for label, get, fmt in TOTALS:
        va, vb = get(a), get(b)
        if va is None and vb is None:
            continue
        ratio = f"{vb / va:.3f}" if va and vb is not None else "-"
        t.add_row(label, "-" if va is None else fmt(va), "-" if vb is None else fmt(vb), ratio)
    return t


def merged_order(a: list[str], b: list[str]) -> list[str]:
    """A's names, with each name only B has inserted after the B name before it."""
    out = list(a)
    for i, n in enumerate(b):
        if n not in out:
            prev = b[i - 1] if i else None
            out.insert(out.index(prev) + 1 if prev in out else 0, n)
    return out


def vs_rows_table(a: dict, b: dict) -> Table:
    """Rows of both documents aligned by name; a row only one side has sits where that side has it."""
    ra, rb = {r["name"]: r for r in a["rows"]}, {r["name"]: r for r in b["rows"]}
    names = merged_order(list(ra), list(rb))
    t = Table(title=f"per {a['level']}, side by side", title_justify="left")
    t.add_column("name", no_wrap=True, min_width=max(map(len, names)))
    for col in ("params A", "params B", "B/A", "MACs A", "MACs B", "B/A", "RF A", "RF B"):
        t.add_column(col, justify="right")

    def cell(rows, n, key, fmt):
        return fmt(rows[n][key]) if n in rows else "-"

    def ratio(n, key):
        if n in ra and n in rb and ra[n][key]:
            return f"{rb[n][key] / ra[n][key]:.2f}"
        return "-"

    for n in names:
        t.add_row(n, cell(ra, n, "params", lambda v: f"{v:,}"), cell(rb, n, "params", lambda v: f"{v:,}"),
                  ratio(n, "params"), cell(ra, n, "macs", human), cell(rb, n, "macs", human), ratio(n, "macs"),
                  cell(ra, n, "rf", lambda v: "global" if v is None else str(v)),
                  cell(rb, n, "rf", lambda v: "global" if v is None else str(v)))
    return t
