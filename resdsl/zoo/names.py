"""Zoo names: `resnet50`, `regnet_y_400mf`, ... stand for a spec file, a network and its arguments.

Each spec declares the names it reproduces in comment lines, as data:

    # name: regnet_x_400mf = regnet(variant = "x_400mf")

(a network call with literal arguments, read by the expression parser, never executed). Wherever
a spec path is accepted, a word that is not an existing file but is such a name resolves to it;
a spec path always wins over a name.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SpecError, did_you_mean

from . import SPECS
NAME_LINE = re.compile(r"^#\s*name:\s*([A-Za-z_][A-Za-z_0-9]*)\s*=\s*(.+?)\s*$")
WORD = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")


@dataclass(frozen=True)
class ZooName:
    name: str                  # e.g. regnet_x_400mf
    spec: str                  # path of the spec file
    network: str               # network in that file
    params: dict[str, Any] = field(default_factory=dict, hash=False)


def declared(path: Path) -> list[ZooName]:
    """The `# name: NAME = network(arg = value, ...)` lines of one spec file."""
    from ..frontend import ast
    from ..frontend.parse import parse_expr
    from ..frontend.values import Evaluator

    out = []
    text = path.read_text()
    for line_no, line in enumerate(text.splitlines(), 1):
        m = NAME_LINE.match(line)
        if not m:
            continue
        call = parse_expr(m.group(2), f"{path}:{line_no}")
        if not isinstance(call, ast.call) or not isinstance(call.func, ast.name) or any(a.name is None for a in call.args):
            raise SpecError(f"{path}:{line_no}: a zoo name needs `NAME = network(arg = value, ...)`")
        params = {a.name: Evaluator({})(a.value, {}) for a in call.args}
        out.append(ZooName(m.group(1), str(path), call.func.id, params))
    return out


@functools.lru_cache(maxsize=4)
def table(folder: str = str(SPECS)) -> dict[str, ZooName]:
    """Every zoo name declared by the specs of a folder (a name declared twice is an error)."""
    names: dict[str, ZooName] = {}
    for path in sorted(Path(folder).glob("*.res")):
        for z in declared(path):
            if z.name in names:
                raise SpecError(f"zoo name '{z.name}' is declared by {names[z.name].spec} and {z.spec}")
            names[z.name] = z
    return names


def resolve(spec: Any, network: str | None, params: dict[str, Any]) -> tuple[Any, str | None, dict[str, Any]]:
    """A zoo name -> (spec path, network, its arguments updated by `params`); anything else unchanged."""
    if not isinstance(spec, (str, Path)) or not WORD.match(str(spec)) or Path(spec).exists():
        return spec, network, params
    spec = str(spec)
    names = table()
    if spec not in names and spec in networks():      # a network of a zoo spec (what `resdsl list` shows)
        path = networks()[spec]
        if network is not None and network != spec:
            raise SpecError(f"zoo network '{spec}' is network '{spec}' of {Path(path).name}, not '{network}'")
        return path, spec, params
    if spec not in names:
        hint = did_you_mean(spec, {**names, **networks()})
        err = SpecError(f"'{spec}' is neither a spec file nor a zoo name")
        raise err.with_note(hint) if hint else err.with_note("`resdsl list --names` shows the zoo names")
    z = names[spec]
    if network is not None and network != z.network:
        raise SpecError(f"zoo name '{spec}' is network '{z.network}', not '{network}'")
    return z.spec, z.network, {**z.params, **params}



NETWORK_LINE = re.compile(r"^network\s+([A-Za-z_][A-Za-z_0-9]*)\s*[({]", re.M)


@functools.lru_cache(maxsize=4)
def networks(folder: str = str(SPECS)) -> dict[str, str]:
    """Every network defined by the zoo's spec files (`cifar_resnet`, `resnet_d`, ...) -> its file."""
    out: dict[str, str] = {}
    for path in sorted(Path(folder).glob("*.res")):
        for name in NETWORK_LINE.findall(path.read_text()):
            out.setdefault(name, str(path))
    return out
