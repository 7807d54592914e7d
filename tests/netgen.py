"""A generator of random VALID networks, as .res text (Csmith's idea for resdsl).

    text = generate(RandomDraw(seed))             # plain Python, for benchmarks/fuzz_differential.py
    @given(networks())                            # a hypothesis strategy, for the test suite

Every network it writes is one resdsl must accept: 1-D (C×L) or 2-D (C×H×W) inputs; a stem; one to
three stages, each with its own block definition — a sequence body or a dataflow body with named
tensors (chains, `from`, `split`, `add`/`mul`/`concat` merges, a C×1 gate), per-block `if`,
`repeat`, `parallel` branches, most layer kinds, every shortcut kind that fits, `merge gate` and
`merge concat` (dense) units, `pre`, `post`, `scale`; transitions; a pooled head. Widths and sizes
are tracked as the text is written so shapes always fit. The same code draws from hypothesis or
from random.Random through the small Draw interface, so the long run needs no hypothesis database.
"""
from __future__ import annotations

import random

ACTS = ["relu", "relu6", "silu", "gelu", "gelu_tanh", "hardswish", "hardsigmoid", "sigmoid", "tanh",
        "identity", "leaky_relu 0.1"]


class RandomDraw:
    """Draws from random.Random (seeded): the long differential run."""

    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def int(self, lo: int, hi: int) -> int:
        return self.r.randint(lo, hi)

    def choice(self, xs):
        return xs[self.r.randrange(len(xs))]

    def bool(self, p: float = 0.5) -> bool:
        return self.r.random() < p


class HypothesisDraw:
    """Draws through hypothesis's `draw` (shrinkable examples in the test suite)."""

    def __init__(self, draw):
        from hypothesis import strategies as st

        self.draw, self.st = draw, st

    def int(self, lo: int, hi: int) -> int:
        return self.draw(self.st.integers(lo, hi))

    def choice(self, xs):
        return self.draw(self.st.sampled_from(list(xs)))

    def bool(self, p: float = 0.5) -> bool:
        return self.draw(self.st.integers(0, 999)) < int(p * 1000)


def networks():
    """The hypothesis strategy: random valid network specs (text)."""
    from hypothesis import strategies as st

    @st.composite
    def net(draw):
        return generate(HypothesisDraw(draw))
    return net()


def _divisors(c: int, options=(2, 4)) -> list[int]:
    return [g for g in options if c % g == 0]


class Gen:
    def __init__(self, d, rank: int):
        self.d, self.rank, self.k = d, rank, 0

    def fresh(self, base: str = "t") -> str:
        self.k += 1
        return f"{base}{self.k}"

    # -- channel-preserving layers at width c ------------------------------------------------------
    def layer(self, c: int, depth: int = 0) -> str:
        d, two = self.d, self.rank == 2
        opts = ["bn", "act", "act", "conv", "conv", "layernorm", "groupnorm", "layer_scale", "pool", "dropout"]
        if two:
            opts += ["se", "shuffle"]
        else:
            opts += ["causal"]
        if depth < 1:
            opts += ["parallel_sum", "parallel_concat", "repeat", "if", "crelu", "slice", "pad"]
        kind = d.choice(opts)
        if kind == "bn":
            return d.choice(["bn", "bn eps 1e-3", "bn momentum 0.2"])
        if kind == "act":
            return d.choice(ACTS)
        if kind == "conv":
            k = d.choice([1, 3])
            extra = d.choice(["", " bias", " d2" if k == 3 else "", f" groups {g}" if (g := d.choice(_divisors(c) or [1])) > 1 else ""])
            if two and k == 3 and d.bool(0.3):
                return f"conv {c} k1x3 p0x1" if d.bool() else f"conv {c} kernel [3, 1] padding [1, 0]"
            return f"conv {c} k{k}{extra}"
        if kind == "causal":
            return f"conv {c} k2 d{d.choice([1, 2])} causal"
        if kind == "layernorm":
            return d.choice(["layernorm", "layernorm eps 1e-6"])
        if kind == "groupnorm":
            g = d.choice(_divisors(c, (1, 2)) or [1])
            return f"groupnorm {g}"
        if kind == "layer_scale":
            return f"layer_scale {d.choice(['0.5', '1e-2', '2'])}"
        if kind == "pool":
            return d.choice(["maxpool k3 s1 p1", "avgpool k3 s1 p1", "avgpool k3 s1 p1 count_pad false"])
        if kind == "dropout":
            return "dropout 0.1"
        if kind == "se":
            return d.choice(["se r 2", "se channels 2 act silu", "se r 4 gate hardsigmoid"]) if c >= 4 else "relu"
        if kind == "shuffle":
            return "shuffle 2" if c % 2 == 0 else "relu"
        if kind == "parallel_sum":
            return f"parallel sum {{ branch {{ conv {c} k1 }} branch {{ {self.layer(c, 1)}; conv {c} k3; bn }} }}"
        if kind == "parallel_concat":
            a = c // 2
            return f"parallel concat {{ branch {{ conv {a} k1 }} branch {{ conv {c - a} k3; {self.layer(c - a, 1)} }} }}"
        if kind == "repeat":
            return f"repeat {d.int(1, 2)} as r {{ conv {c} k3; bn; {d.choice(ACTS)} }}"
        if kind == "if":
            return (f"if i == 0 {{ {self.layer(c, 1)} }} else {{ {self.layer(c, 1)} }}"
                    if d.bool() else f"if in == {c} {{ {self.layer(c, 1)} }}")
        if kind == "crelu":
            return f"conv {c // 2} k1; crelu" if c % 2 == 0 else "relu"
        if kind == "slice":
            return f"slice 0 {max(1, c // 2)}; conv {c} k1"
        if kind == "pad":
            return f"pad_channels {c + 2}; conv {c} k1"
        raise AssertionError(kind)

    def chain(self, c: int, n_lo: int = 0, n_hi: int = 3) -> list[str]:
        return [self.layer(c) for _ in range(self.d.int(n_lo, n_hi))]

    # -- residual bodies -----------------------------------------------------------------------------
    def seq_body(self, w: int) -> str:
        first = f"conv w k{self.d.choice([1, 3])} s stride"
        return "; ".join([first, *self.chain(w, 0, 4)])

    def flow_body(self, w: int) -> str:
        """A dataflow body: every named tensor has w channels and is used exactly as written."""
        d = self.d
        lines = [f"conv w k3 s stride; bn; {d.choice(ACTS)} -> a0"]
        names, unused = ["a0"], {"a0"}
        for _ in range(d.int(1, 4)):
            op = d.choice(["chain", "chain", "merge", "split", "gate"]) if len(names) > 1 else d.choice(["chain", "split", "gate"])
            new = self.fresh("h")
            if op == "chain":
                src = d.choice(names)
                body = "; ".join([f"conv {w} k{d.choice([1, 3])}", *self.chain(w, 0, 2)])
                lines.append(f"from {src}; {body}{'; ' if '}' in body[-2:] else ' '}-> {new}")
                unused.discard(src)
            elif op == "merge":
                a, b = d.choice(names), d.choice(names)
                if a == b:
                    continue
                how = d.choice(["add", "mul", "concat"])
                lines.append(f"concat {a} {b}; conv {w} k1 -> {new}" if how == "concat" else f"{how} {a} {b} -> {new}")
                unused -= {a, b}
            elif op == "split" and w % 2 == 0:
                src, p, q, r = d.choice(names), self.fresh("p"), self.fresh("q"), self.fresh("r")
                lines.append(f"from {src}; split 2 -> {p} {q}; from {q}; conv {w // 2} k3 -> {r}; concat {p} {r} -> {new}")
                unused.discard(src)
            elif op == "gate":
                src, gname = d.choice(names), self.fresh("g")
                lines.append(f"from {src}; avgpool; conv {w} k1 bias; sigmoid -> {gname}; mul {src} {gname} -> {new}")
                unused.discard(src)
            else:
                continue
            names.append(new)
            unused.add(new)
        left = [n for n in names if n in unused]
        if len(left) >= 2:
            lines.append(f"add {' '.join(left)}")
        else:
            lines.append(f"from {left[0]}" if left[0] != names[-1] else "identity")
        if d.bool(0.3):
            lines.append(f"bn; if i == 0 {{ {d.choice(ACTS)} }} else {{ {d.choice(ACTS)} }}")
        return "\n    ".join(lines)


def generate(d) -> str:
    """One random valid network spec."""
    rank = d.choice([1, 2, 2])
    g = Gen(d, rank)
    c = d.choice([1, 2, 3, 4])
    size = d.choice([6, 7, 8, 9, 12]) if rank == 2 else d.choice([8, 9, 12, 16])
    shape = f"{c}x{size}x{size}" if rank == 2 else f"{c}x{size}"
    cw = d.choice([4, 6, 8])
    stem = [f"conv {cw} k3", "bn", d.choice(ACTS)][: d.int(1, 3)]
    blocks, stages, droppable = [], [], True      # drop_path needs every unit y = x + f(x)
    for i in range(d.int(1, 3)):
        kind = d.choice(["seq", "seq", "flow", "flow", "dense"])
        if kind == "dense":
            w, n = d.choice([2, 4]), d.int(1, 2)
            blocks.append(f"block b{i}(w) {{\n  residual {{ bn; relu; conv w k3 }}\n  merge concat\n}}")
            stages.append(f"stage x {n} b{i}({w})")
            cw += n * w
            droppable = False
            continue
        w = d.choice([4, 6, 8])
        stride = 2 if size >= 4 and d.bool(0.4) else 1
        changes = w != cw or stride != 1
        if changes:
            skips = ["projection", "projection_all"] + (["avgdown"] if rank == 2 else []) + (["zeropad"] if w >= cw else [])
        else:
            skips = ["identity", "projection", "projection_all", "none", "zeropad"]
        skip = d.choice(skips)
        body = g.seq_body(w) if kind == "seq" else g.flow_body(w)
        parts = []
        if d.bool(0.2):
            parts.append("pre { bn; relu }")
        parts.append(f"residual {{\n    {body}\n  }}")
        if not changes and skip != "none" and d.bool(0.15):
            parts.append(f"shortcut {skip}\n  merge gate k 1 bias -1")
            droppable = False
        else:
            parts.append(f"shortcut {skip}")
            droppable = droppable and skip != "none"
        if d.bool(0.2):
            parts.append(f"scale {d.choice(['0.5', '0.2', '1.5'])}")
        if d.bool(0.5):
            parts.append(d.choice(["post relu", "post { relu }", f"post {{ bn; {d.choice(ACTS)} }}"]))
        blocks.append(f"block b{i}(w, stride = 1, i = 0) {{\n  " + "\n  ".join(parts) + "\n}")
        n = d.int(1, 3)
        share = " share" if n >= 2 and d.bool(0.2) else ""      # blocks 2.. of the stage share weights
        stages.append(f"stage x {n} b{i}({w}, i = 1)" if share else
                      f"stage x {n} b{i}({w}, i = block_index)" + (" stride 2" if stride == 2 else ""))
        if share and stride == 2:
            stages[-1] += " stride 2"
        if share:
            stages[-1] += share
        cw, size = w, (size + 1) // 2 if stride == 2 else size
        if i < 2 and d.bool(0.15):
            cw = d.choice([4, 6])
            stages.append(f"transition {{ bn; relu; conv {cw} k1 }}")
    head = ["avgpool", f"fc {d.int(2, 10)}"]
    if d.bool(0.2):
        head = [d.choice(ACTS), *head]
    if droppable and d.bool(0.15):    # (a linear rate over shared blocks is one thing `show` refuses to write)
        rule = "constant" if any(st.endswith(" share") for st in stages) else d.choice(["linear", "constant"])
        stages.append(f"drop_path 0.1 {rule} mode {d.choice(['batch', 'sample'])}")
    net = (f"network gen() {{\n  input {shape}\n  stem {{ {'; '.join(stem)} }}\n  "
           + "\n  ".join(stages) + f"\n  head {{ {'; '.join(head)} }}\n}}\n")
    return "\n\n".join(blocks) + "\n\n" + net
