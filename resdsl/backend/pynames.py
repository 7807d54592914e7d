"""Names for emitted Python (backend/emit.py): collision-free by construction.

One allocator per scope. It starts with every name the scope already uses — Python's keywords and
builtins, the module names the emitted file imports (`torch`, `nn`, `F`, `OrderedDict`), `self`,
and the names the emitter writes itself — and gives each distinct key (a tensor name of the spec,
`h%3`, `%3`) its own identifier, never one already given out: `h%3` and a user's `h_3` get two
different variables, a tensor called `torch`, `self` or `class` gets a name that shadows nothing.
"""
from __future__ import annotations

import builtins
import keyword
import re

RESERVED = frozenset({*keyword.kwlist, *keyword.softkwlist, *dir(builtins), "torch", "nn", "F",
                      "OrderedDict", "self", "INPUT_SHAPE", "build", "Network", "__class__"})


class Names:
    """key -> a Python identifier no other key of this scope (and nothing in `reserved`) has."""

    def __init__(self, reserved=RESERVED, fixed: dict[str, str] | None = None):
        self.taken: set[str] = set(reserved)
        self.of: dict[str, str] = {}
        for key, name in (fixed or {}).items():     # e.g. the body's input: key 'x' is variable x
            self.of[key] = name
            self.taken.add(name)

    def __call__(self, key: str) -> str:
        if key not in self.of:
            base = _identifier(key)
            name, k = base, 2
            while name in self.taken:
                name, k = f"{base}_{k}", k + 1
            self.taken.add(name)
            self.of[key] = name
        return self.of[key]


def _identifier(key: str) -> str:
    """A readable identifier for a key: `h%3` -> `h_3`, `%3` -> `t_3`, anything else made valid."""
    v = "t_" + key[1:] if key.startswith("%") else key.replace("%", "_")
    v = re.sub(r"\W", "_", v)
    return v if v.isidentifier() and not v[0].isdigit() else "t_" + v


def attr(name: str) -> str:
    """`self.NAME` as source when NAME can be an attribute there, else `self._modules['NAME']`."""
    ok = name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("__")
    return f"self.{name}" if ok and name not in _MODULE_ATTRS else f"self._modules[{name!r}]"


_MODULE_ATTRS = frozenset(dir(__import__("torch").nn.Module))
