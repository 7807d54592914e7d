"""The zoo: every network of every spec in a folder, with its cost and the reference it reproduces.

A spec's header comment (the `#` lines before its first definition) names the paper; a line
`# reference: ...` says what the spec is checked against (one in the comment right above a
second network of the file overrides it for that network). `resdsl list` (zoo_cli.py) prints one
row per network, built with its default parameters.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import SPECS


@dataclass(frozen=True)
class ZooEntry:
    name: str            # network name
    family: str          # spec file stem
    spec: str            # path of the spec
    params: int
    macs: int
    input_shape: tuple[int, ...]
    title: str           # first line of the header comment
    reference: str       # the `# reference:` line, or ""
    names: tuple[str, ...] = ()   # zoo names declared for this network (`# name:` lines)


def header(text: str) -> list[str]:
    """The leading comment lines of a spec, without their '#'."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return lines


def reference_of(lines: list[str]) -> str:
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("reference:")), "")


def comment_above(text: str, network: str) -> list[str]:
    """The comment lines directly above `network NAME(`, without their '#'."""
    lines = text.splitlines()
    at = next((i for i, ln in enumerate(lines) if ln.startswith(f"network {network}(")), None)
    above = []
    while at is not None and at > 0 and lines[at - 1].startswith("#"):
        at -= 1
        above.insert(0, lines[at].lstrip("#").strip())
    return above


def entries(path: Path) -> list[ZooEntry]:
    """One entry per network defined in the spec file itself (not its imports)."""
    from ..api import graph_of
    from ..frontend.load import load
    from ..frontend.lower import lower
    from ..ir.shapes import totals

    from .names import declared

    program = load(path)
    text = path.read_text()
    zoo_names = declared(path)
    lines = header(text)
    out = []
    for name in program.main_networks:
        net = lower(program, name, {})
        params, macs = totals(graph_of(net))
        reference = reference_of(comment_above(text, name)) or reference_of(lines)
        out.append(ZooEntry(name, path.stem, str(path), params, macs, tuple(net.input_shape),
                            lines[0] if lines else "", reference,
                            tuple(z.name for z in zoo_names if z.network == name)))
    return out


def zoo(folder: Path = SPECS) -> list[ZooEntry]:
    return [e for path in sorted(Path(folder).glob("*.res")) for e in entries(path)]


@dataclass(frozen=True)
class NamedEntry:
    name: str            # zoo name, e.g. regnet_y_400mf
    family: str          # spec file stem
    network: str
    arguments: str       # e.g. variant="y_400mf"
    params: int
    macs: int


def named(folder: Path = SPECS) -> list[NamedEntry]:
    """One row per zoo name (`# name:` lines of the specs), built with its arguments."""
    from ..api import graph_of
    from ..frontend.load import load
    from ..frontend.lower import lower
    from ..frontend.values import show
    from ..ir.shapes import totals
    from .names import table

    out = []
    for z in table(str(folder)).values():
        params, macs = totals(graph_of(lower(load(z.spec), z.network, dict(z.params))))
        args = ", ".join(f"{k}={show(v)}" for k, v in z.params.items())
        out.append(NamedEntry(z.name, Path(z.spec).stem, z.network, args, params, macs))
    return out
