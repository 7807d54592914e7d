"""Multi-level training (Chang, Meng, Haber, Tung & Begert 2018, "Multi-level Residual Networks
from Dynamical Systems View", ICLR): a ResNet is a forward-Euler discretisation of an ODE,
x_{k+1} = x_k + h·F(x_k; θ_k); train a shallow net, then at chosen epochs double every stage's
blocks by interpolation — each block followed by a copy of itself — and halve the step size h.

    `resdsl train SPEC --grow 10,20 [--grow-param n]`

Level L is the spec at `n = n0·2^L`. Which blocks are ODE steps is read off the graph: a block
whose merge is `x + scale·F(x)` (identity shortcut, merge add) is a step; any other block (a
stage's downsampling block: zeropad or projection shortcut) is a transition. Interpolation, per
stage, block j of the old net becomes block 2j of the new one, and block 2j+1 is a copy of old
block j — or, when block j is a transition (its weights do not fit a step), of old block j+1,
the adjacent old block on the other side (the paper copies "from the adjacent old block").
Stem, transitions and head are copied as they are. Every step block of level L runs with
scale h0·2^-L (h0: the spec's own `scale`, 1 by default); transitions keep their scale. The
scale is not a tensor, so it is applied when the level's model is built and recorded (with the
level's arguments) in every checkpoint: resume and `resdsl eval` rebuild the level from it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import torch
from torch import nn

from resdsl.errors import SpecError, unknown
from resdsl.train.errors import TrainError


def check_schedule(grow: tuple[int, ...], epochs: int) -> None:
    """`--grow` epochs: strictly increasing, each after at least one epoch and before the last."""
    if any(e < 1 for e in grow):
        raise ValueError(f"grow epochs must be 1 or more (the net grows after that many epochs); got {list(grow)}")
    if any(b <= a for a, b in zip(grow, grow[1:])):
        raise ValueError(f"grow epochs must increase strictly, like 10,20; got {list(grow)}")
    if grow and grow[-1] >= epochs:
        raise ValueError(f"grow epoch {grow[-1]} is not before the last epoch ({epochs}): the grown net would "
                         f"never train; use epochs below {epochs} or more --epochs")


def is_step(info: Mapping[str, Any]) -> bool:
    """An ODE step x + scale·F(x): an additive unit (ir/kinds.py) on the identity, with its own weights."""
    return info["additive"] and info["shortcut"] == "identity" and info["shares"] is None


def depth(g) -> int:
    """Weighted layers (conv, fc) on the main path, shortcuts excluded: He et al.'s depth (6n+2 for CIFAR)."""
    return sum(1 for _, d in g.nodes(data=True)
               if d.get("kind") in ("conv", "fc") and d.get("scope", {}).get("role") != "shortcut")


@dataclass
class Grower:
    """The levels of one spec: level L is the spec with `param = n0·2^L`, step blocks at scale h0·2^-L."""

    program: Any
    network: str | None
    params: dict[str, str]
    param: str = "n"
    base: int = field(init=False)
    _graphs: dict[int, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self):
        preset = getattr(self.program, "preset", None)
        net = self.program.network(self.network or (preset[0] if preset else None))
        names = [p.name for p in net.params]
        if self.param not in names:
            raise unknown(f"parameter of network {net.name}", self.param, names, net.span).with_note(
                f"--grow doubles a depth parameter (`stage x {self.param} ...`); name it with --grow-param NAME")
        value = self.graph(0).graph["args"][self.param]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(f"--grow doubles parameter '{self.param}' of network {net.name}, but it is "
                            f"{value!r}, not a whole number of blocks", net.span)
        self.base = value

    def args(self, level: int) -> dict[str, Any]:
        """The network arguments of `level` (the run's as written: load_spec reads them)."""
        args = dict(self.params)
        if level:
            args[self.param] = self.graph(0).graph["args"][self.param] * 2 ** level
        return args

    def graph(self, level: int):
        if level not in self._graphs:
            from resdsl.api import graph_of, load_spec

            self._graphs[level] = graph_of(load_spec(self.program, self.network, **self.args(level)))
        return self._graphs[level]

    def model(self, level: int) -> nn.Module:
        """The compiled net of `level`, its step blocks at scale h0·2^-level."""
        from resdsl.backend.compile import compile_graph

        g = self.graph(level)
        model = compile_graph(g)
        for path, info in g.graph["blocks"].items():
            if is_step(info):
                blk = model.get_submodule(path)
                blk.unit = replace(blk.unit, scale=info["scale"] * 0.5 ** level)
        return model

    def block_map(self, level: int) -> dict[str, str]:
        """Each block of level+1 -> the block of `level` whose weights it takes."""
        old, new = self.graph(level), self.graph(level + 1)
        if len(old.graph["stages"]) != len(new.graph["stages"]):
            raise SpecError(f"doubling '{self.param}' changes the number of stages "
                            f"({len(old.graph['stages'])} -> {len(new.graph['stages'])}); --grow needs the same stages",
                            old.graph["span"])
        out: dict[str, str] = {}
        for so, sn in zip(old.graph["stages"], new.graph["stages"]):
            ob, nb = so["blocks"], sn["blocks"]
            if len(nb) != 2 * len(ob):
                raise SpecError(f"doubling '{self.param}' ({self.base * 2 ** level} -> {self.base * 2 ** (level + 1)}) "
                                f"takes {sn['name']} from {len(ob)} to {len(nb)} blocks, not {2 * len(ob)}: "
                                "--grow needs each stage's block count to double", so["span"]).with_note(
                    f"write the stage as `stage x {self.param} ...`, or choose another --grow-param")
            infos = old.graph["blocks"]
            for j, b in enumerate(ob):
                if infos[b]["shares"] is not None:
                    raise SpecError(f"{b} shares the weights of {infos[b]['shares']}; --grow copies each block's own "
                                    "weights and cannot grow a stage with `share`", infos[b]["span"])
                src = b if is_step(infos[b]) else next((c for c in ob[j + 1:j + 2] if is_step(infos[c])), None)
                if src is None:
                    raise SpecError(f"{b} is a transition ({infos[b]['shortcut']} shortcut) with no step block after "
                                    f"it in {so['name']}; its inserted copy has no block of the right shape to copy",
                                    infos[b]["span"]).with_note("a stage that grows needs at least one block "
                                                                "with an identity shortcut")
                out[nb[2 * j]], out[nb[2 * j + 1]] = b, src
                if not is_step(new.graph["blocks"][nb[2 * j + 1]]):
                    raise SpecError(f"{nb[2 * j + 1]} (the copy inserted after {b}) is not a step block x + h·F(x)",
                                    infos[b]["span"])
        return out

    def check(self, levels: int) -> None:
        """Build every level's graph and block map before training, so a spec that cannot grow
        fails at once, not after the first level's epochs."""
        for level in range(levels):
            self.block_map(level)

    def interpolate(self, old: nn.Module, new: nn.Module, level: int) -> None:
        """Load `new` (level+1) with the weights and BN statistics of `old` (level) through block_map."""
        mapping = self.block_map(level)
        src, dst = old.state_dict(), new.state_dict()
        out = {}
        for key, t in dst.items():
            parts = key.split(".")
            block = ".".join(parts[:4])
            from_key = mapping[block] + key[len(block):] if block in mapping else key
            s = src.get(from_key)
            if s is None or s.shape != t.shape:
                what = "missing" if s is None else f"{list(s.shape)} where {list(t.shape)} is needed"
                raise TrainError(f"cannot grow to level {level + 1}: {key} would come from {from_key}, {what}")
            out[key] = s.detach().clone()
        new.load_state_dict(out)

    def record(self, level: int, epoch: int, model: nn.Module) -> dict:
        """One line of levels.json: when the level began and what the net was."""
        g = self.graph(level)
        steps = [i for i in g.graph["blocks"].values() if is_step(i)]
        return {"level": level, "epoch": epoch, self.param: self.base * 2 ** level, "depth": depth(g),
                "blocks": len(g.graph["blocks"]), "params": sum(p.numel() for p in model.parameters()),
                "step_scale": steps[0]["scale"] * 0.5 ** level if steps else None}


def grown_model(program, network: str | None, params: Mapping[str, str], grow: Mapping) -> nn.Module:
    """The net of a checkpoint's `grow` entry (level and parameter), for resume and `resdsl eval`."""
    level, param = grow.get("level"), grow.get("param")
    if not isinstance(level, int) or not isinstance(param, str) or not 0 <= level <= 20:
        raise TrainError(f"checkpoint's grow entry is corrupt: {dict(grow)!r:.200}")
    return Grower(program, network, {k: str(v) for k, v in params.items()}, param).model(level)


def parse_grow(text: str) -> tuple[int, ...]:
    """`10,20` -> (10, 20); a clear error for anything else."""
    try:
        return tuple(int(e) for e in text.split(",") if e.strip())
    except ValueError:
        raise TrainError(f"--grow expects epochs like 10,20; got {text!r}") from None


def optimizer_hyper(opt: torch.optim.Optimizer) -> list[dict]:
    """Each group's current settings (lr, momentum, ...) without its parameters."""
    return [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
