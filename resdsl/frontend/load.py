"""load(spec) -> Program: read a .res file (or text), its imports and the prelude."""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import Span, SpecError, did_you_mean, unknown
from . import ast
from .parse import parse

PRELUDE = "<prelude>"


@dataclass
class Program:
    """Every definition visible to a spec: blocks (prelude, imports, the file) and networks."""
    blocks: dict[str, ast.block_def] = field(default_factory=dict)
    networks: dict[str, ast.network] = field(default_factory=dict)
    main_networks: list[str] = field(default_factory=list)
    text: str = ""
    file: str = "<spec>"

    def network(self, name: str | None) -> ast.network:
        if name is None:
            if not self.main_networks:
                raise SpecError("no network defined in this spec", Span(self.file, 1, 1, 1, 2, self.text)).with_note(
                    "a spec needs `network NAME(params) { ... }`")
            return self.networks[self.main_networks[0]]
        if name not in self.networks:
            raise unknown("network", name, self.networks, None)
        return self.networks[name]


def prelude_text() -> str:
    return resources.files("resdsl").joinpath("prelude.res").read_text()


def is_path(spec: str | Path) -> bool:
    """A spec argument is a path unless it contains a newline or a brace (then it is text)."""
    return isinstance(spec, Path) or ("\n" not in spec and "{" not in spec)


def load(spec: str | Path) -> Program:
    prog = Program()
    _add(prog, parse(prelude_text(), PRELUDE), None, set(), prelude=True)
    if is_path(spec):
        path = Path(spec)
        if not path.is_file():
            raise _missing_spec(path)
        prog.file, prog.text = str(spec), path.read_text()
        _add(prog, parse(prog.text, prog.file), path.resolve(), {path.resolve()}, main=True)
    else:
        prog.text = str(spec)
        _add(prog, parse(prog.text, prog.file), None, set(), main=True)
    return prog


def _add(prog: Program, mod: ast.module, path: Path | None, seen: set[Path],
         prelude: bool = False, main: bool = False, chain: tuple[Path, ...] = ()) -> None:
    for item in mod.items:
        if isinstance(item, ast.import_stmt):
            _import(prog, item, path, seen, chain + ((path,) if path else ()))
        elif isinstance(item, ast.block_def):
            old = prog.blocks.get(item.name)
            if old is not None and old.span.file != PRELUDE:
                raise SpecError(f"block '{item.name}' is defined twice", item.span).with_note(
                    f"first defined at {old.span}")
            prog.blocks[item.name] = item
        else:
            if item.name in prog.networks and prog.networks[item.name] is not item:
                raise SpecError(f"network '{item.name}' is defined twice", item.span).with_note(
                    f"first defined at {prog.networks[item.name].span}")
            prog.networks[item.name] = item
            if main:
                prog.main_networks.append(item.name)


def _import(prog: Program, stmt: ast.import_stmt, importer: Path | None, seen: set[Path],
            chain: tuple[Path, ...]) -> None:
    base = importer.parent if importer else Path.cwd()
    target = (base / stmt.path).resolve()
    if target in chain:
        cycle = " -> ".join(shown(p) for p in (*chain[chain.index(target):], target))
        raise SpecError(f"import cycle: {cycle}", stmt.span).with_note(
            "a file cannot import itself, directly or through other imports")
    if target in seen and target not in chain:
        return
    if not target.is_file():
        raise SpecError(f"cannot import '{stmt.path}': no such file", stmt.span).with_note(
            f"looked for {shown(target)} (imports are relative to the importing file)")
    seen.add(target)
    _add(prog, parse(target.read_text(), shown(target)), target, seen, chain=chain)


def shown(path: Path) -> str:
    """A path as error messages show it: relative to the working folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _missing_spec(path: Path) -> SpecError:
    err = SpecError(f"cannot read spec '{path}': no such file")
    if not path.parent.is_dir():
        return err.with_note(f"folder '{path.parent}' does not exist")
    hint = did_you_mean(str(path), [str(p) for p in path.parent.glob("*.res")])
    return err.with_note(hint) if hint else err
