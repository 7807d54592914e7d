"""Rows of cost per section (stem, stages, transitions, head) from the annotated graph."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import networkx as nx

from ..ir.ops import fmt


@dataclass
class Row:
    name: str
    what: str          # block kind × count, or section role
    out_shape: tuple
    params: int
    macs: int

    def as_dict(self) -> dict:
        d = asdict(self)
        d["out_shape"] = list(self.out_shape)
        return d


def section_rows(g: nx.DiGraph) -> list[Row]:
    """One row per stem / stage / transition / head, in network order."""
    rows: dict[str, Row] = {}
    stages = {s["name"]: s for s in g.graph["stages"]}
    for n, d in g.nodes(data=True):
        sec = d["scope"]["section"]
        if sec == "input":
            continue
        if sec not in rows:
            st = stages.get(sec)
            what = f"{st['block']} ×{len(st['blocks'])}" if st else sec.split(".")[0].rstrip("s")
            rows[sec] = Row(sec, what, d["out_shape"], 0, 0)
        r = rows[sec]
        r.params += d["params"]
        r.macs += d["macs"]
        r.out_shape = d["out_shape"]
    return list(rows.values())


def human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23M'."""
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3f}{suffix}{unit}" if suffix == "G" else f"{n / div:.2f}{suffix}{unit}"
    return f"{n:g}{unit}"


def shape_str(shape) -> str:
    return fmt(tuple(shape))
