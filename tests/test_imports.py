"""The import graph of resdsl/ (read with ast, every import, deferred ones too): no circles, and
no import from a lower layer to a higher one."""
import ast
import re

import networkx as nx

from conftest import ROOT

PKG = ROOT / "resdsl"
# Layers, lowest first (docs/architecture.md, "Layers"); a module may import its own layer or lower
# ones, at the top or inside a function alike. The first pattern that matches a module's dotted
# name gives its layer.
LAYERS = [
    ("base", r"resdsl\.(errors|atomic|limits|progress)$"),
    ("registry", r"resdsl\.ir\.(kinds|ops)(\.|$)"),            # the op registry and the unit vocabulary: data
    ("ir", r"resdsl\.ir(\.|$)"),                               # Net, the graph, shapes
    ("frontend", r"resdsl\.frontend(\.|$)"),                   # text -> AST -> Net
    ("passes", r"resdsl\.(backend|cost|render|source)\.(?!cli$|completion$)|resdsl\.(backend|cost|render|source|budget)$"),
    ("api", r"resdsl\.(api|zoo\.names)$|resdsl\.zoo$"),        # the passes in order; zoo names
    ("train", r"resdsl\.train(\.(?!cli$|runs_cli$)|$)"),        # a compiled model + data -> a run directory
    ("analyze", r"resdsl\.(exporters|zoo\.catalog)$|resdsl\.analyze(\.(?!cli$|sweep_cli$)|$)"),   # runs and specs -> measurements, files
    ("commands", r"resdsl(\.|$)"),        # the cli modules, cli_common, completion, serve, the package, __main__
]


def module_name(path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text()) for p in PKG.rglob("*.py")}


def imports(name: str, tree: ast.Module, known: set[str], is_pkg: bool) -> set[str]:
    """The resdsl modules `name` imports, `from .x import y` resolved to module y where it is one."""
    out = set()
    package = name if is_pkg else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "resdsl"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            if base.split(".")[0] != "resdsl":
                continue
            for a in node.names:
                out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base)
    return out - {name}


def layer(name: str) -> int:
    return next(i for i, (_, pattern) in enumerate(LAYERS) if re.match(pattern, name))


def import_graph() -> nx.DiGraph:
    mods = modules()
    packages = {module_name(p) for p in PKG.rglob("__init__.py")}
    g = nx.DiGraph()
    for name, tree in mods.items():
        g.add_node(name)
        for target in imports(name, tree, set(mods), name in packages):
            g.add_edge(name, target)
    return g


def circles(g: nx.DiGraph) -> list[str]:
    # a package importing its own submodules (ir/ops/__init__ -> ir/ops/conv) is not a circle
    h = nx.DiGraph((u, v) for u, v in g.edges if not (v.startswith(u + ".")))
    return [" -> ".join(c + [c[0]]) for c in nx.simple_cycles(h)]


def upward(g: nx.DiGraph) -> list[str]:
    return [f"{u} ({LAYERS[layer(u)][0]}) imports {v} ({LAYERS[layer(v)][0]})"
            for u, v in g.edges if layer(v) > layer(u)]


def test_no_import_circles():
    cycles = circles(import_graph())
    assert not cycles, "import circles: " + "; ".join(cycles)


def test_no_import_goes_up_a_layer():
    up = upward(import_graph())
    assert not up, "\n".join(up)


def test_checking_a_spec_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, resdsl; resdsl.graph('specs/resnet.res'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


if __name__ == "__main__":          # python tests/test_imports.py: the layers, and what breaks them
    graph = import_graph()
    for i, (layer_name, _) in enumerate(LAYERS):
        print(f"{i} {layer_name}: " + " ".join(sorted(m[len("resdsl."):] or "resdsl" for m in graph if layer(m) == i)))
    print("\n".join(upward(graph) + circles(graph)) or "no import goes up a layer; no circles")
