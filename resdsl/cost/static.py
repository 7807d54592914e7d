"""profile(net, g) -> one JSON-able document of static cost: read from the graph, no forward pass."""
from __future__ import annotations

from typing import Any

import networkx as nx

from ..ir.net import Net
from .memory import BYTES, activation_bytes, parameter_bytes
from .receptive import receptive_fields
from .tables import drop_path, rows

SCHEMA = "resdsl.profile/1"

CONVENTIONS = {
    "macs": "multiply-accumulates of conv and fc, per sample (torchvision's published convention)",
    "flops": "2 × MACs (torch.utils.flop_counter's convention)",
    "activation_bytes": "batch × Σ op output elements × bytes at the precision, input excluded: every op "
                        "output kept for the backward pass, no in-place reuse (resdsl/cost/memory.py)",
    "param_bytes": "parameters × bytes per element",
    "rf": "receptive field in input pixels at the row's output, max over paths; null = global "
          "(resdsl/cost/receptive.py)",
    "stride": "input pixels between neighbouring output pixels at the row's output",
    "drop_path": "[lowest, highest] stochastic-depth drop probability of the row's units; only on rows "
                 "where a unit drops",
}


def jsonable(v: Any) -> Any:
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    return str(v)


def profile(net: Net, g: nx.DiGraph, level: str = "stage", batch_size: int = 1,
            precision: str = "fp32") -> dict:
    """Cost per row at `level` and totals: params (% of total), MACs, FLOPs, memory, receptive field."""
    fields = receptive_fields(g)
    total = rows(g, "network")[0]
    stage_names = {s["name"] for s in g.graph["stages"]}

    def row_doc(r) -> dict:
        f = fields[r.output]
        drop = drop_path(g, r) if r is not total else None
        return {"name": r.name, "what": r.what, "out_shape": list(r.out_shape), "params": r.params,
                "params_pct": 100.0 * r.params / total.params if total.params else 0.0,
                "macs": r.macs, "flops": 2 * r.macs,
                "activation_bytes": activation_bytes(g, r.nodes, batch_size, precision),
                "rf": f.rf, "stride": f.stride, **({"drop_path": list(drop)} if drop else {})}

    totals = row_doc(total)
    totals["param_bytes"] = {p: parameter_bytes(total.params, p) for p in ("fp32", "bf16")}
    return {
        "schema": SCHEMA, "network": net.name, "args": jsonable(net.args),
        "input_shape": list(net.input_shape), "output_shape": list(total.out_shape),
        "level": level, "batch_size": batch_size, "precision": precision, "bytes_per_element": BYTES[precision],
        "conventions": CONVENTIONS,
        "totals": {k: v for k, v in totals.items() if k not in ("name", "what")},
        "stages": [{"name": r.name, "rf": fields[r.output].rf, "stride": fields[r.output].stride}
                   for r in rows(g, "stage") if r.name in stage_names],
        "rows": [row_doc(r) for r in rows(g, level)],
    }

