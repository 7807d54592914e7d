"""load(spec) -> Program: read a .res file (or text), its imports and the prelude.

Imports are confined: an import names a `.res` file relative to the importing file, and the
file must lie inside the project folder (the folder of the top spec, or the working folder for
spec text) or a folder passed with `allow_imports` (`--allow-import DIR`). Every file read is
kept in `Program.files`, so a run directory can hold the whole resolved spec (see `bundle`).
"""
from __future__ import annotations

import functools
import os
import posixpath
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Mapping

from .. import limits
from ..errors import Span, SpecError, did_you_mean, unknown
from . import ast
from .parse import parse
from .screen import check_ast, decode, screen

PRELUDE = "<prelude>"


@dataclass
class Program:
    """Every definition visible to a spec: blocks (prelude, imports, the file) and networks."""
    blocks: dict[str, ast.block_def] = field(default_factory=dict)
    networks: dict[str, ast.network] = field(default_factory=dict)
    main_networks: list[str] = field(default_factory=list)
    text: str = ""
    file: str = "<spec>"
    files: dict[str, str] = field(default_factory=dict)   # bundle key -> text, the top spec first
    names: dict[str, str] = field(default_factory=dict)   # bundle key -> name shown in messages
    preset: tuple[str | None, dict] | None = None         # (network, arguments) of a zoo name (resdsl/names.py)

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
    """A Path is a path; a string naming an existing file is too; otherwise a string containing a
    newline or a brace is spec text (so a file called `a{b}.res` still loads as a file)."""
    if isinstance(spec, Path):
        return True
    if "\0" in spec:
        return False
    if "\n" not in spec and len(spec) < 4096 and Path(spec).is_file():
        return True
    return "\n" not in spec and "{" not in spec


def load(spec: str | Path, allow_imports: Iterable[str | Path] = ()) -> Program:
    """The program of a spec file or spec text, with its imports and the prelude."""
    prog = Program()
    _add(prog, parse(prelude_text(), PRELUDE), None)
    if is_path(spec):
        path = Path(spec)
        if not path.is_file():
            raise _missing_spec(path)
        files = Files([path.resolve().parent, *allow_imports])
        prog.file, prog.text = str(spec), _read_text(path, str(spec))
        key = path.name
    else:
        files = Files([Path.cwd(), *allow_imports])
        prog.text, key, path = str(spec), "<spec>", None
    prog.files[key], prog.names[key] = prog.text, prog.file
    _add(prog, _parse(prog.text, prog.file), _Where(files, path.resolve() if path else None, key), main=True)
    return prog


@functools.lru_cache(maxsize=1)
def _prelude_module() -> ast.module:
    """The prelude's syntax tree, parsed once per process (frozen: shared by every Program)."""
    return parse(prelude_text(), PRELUDE)


def load_as(text: str, path: str | Path, allow_imports: Iterable[str | Path] = (), shown_as: str | None = None) -> Program:
    """The program of unsaved text standing for the file `path` (an editor's buffer, `resdsl serve`):
    imports resolve from the file's folder and messages name it (`shown_as`, default the path),
    as if the text were saved there."""
    path = Path(path)
    limits.SOURCE_BYTES.check(len(text.encode("utf-8", "surrogatepass")), None,
                              f"'{shown_as or path}' has {len(text.encode('utf-8', 'surrogatepass')):,} bytes")
    prog = Program()
    _add(prog, _prelude_module(), None)
    files = Files([path.resolve().parent, *allow_imports])
    prog.file, prog.text, key = shown_as or str(path), text, path.name
    prog.files[key], prog.names[key] = prog.text, prog.file
    _add(prog, _parse(prog.text, prog.file), _Where(files, path.resolve(), key), main=True)
    return prog


def load_bundle(files: Mapping[str, str], main: str) -> Program:
    """The program of a bundle written by `bundle` (a run directory's spec.json): no disk reads."""
    if main not in files:
        raise SpecError(f"bundle has no spec '{main}' (files: {', '.join(sorted(files))[:200]})")
    prog = Program(file=main, text=files[main])
    _add(prog, parse(prelude_text(), PRELUDE), None)
    prog.files[main] = prog.text
    _add(prog, _parse(prog.text, main), _Where(Bundle(files), None, main), main=True)
    return prog


def bundle(prog: Program) -> dict:
    """{"main": key, "files": {key: text}}: everything needed to load the spec again."""
    return {"main": next(iter(prog.files)), "files": dict(prog.files)}


def _parse(text: str, file: str) -> ast.module:
    screen(text, file)
    try:
        mod = parse(text, file)
        check_ast(mod)
        return mod
    except RecursionError:
        raise limits.NESTING.error("the parser ran out of stack", Span(file, 1, 1, 1, 2, text)) from None


def _read_text(path: Path, shown_as: str) -> str:
    try:
        size = path.stat().st_size
        limits.SOURCE_BYTES.check(size, None, f"'{shown_as}' has {size:,} bytes")
        return decode(path.read_bytes(), shown_as)
    except (OSError, ValueError) as e:
        raise SpecError(f"cannot read '{shown_as}': {getattr(e, 'strerror', None) or e}") from None


@dataclass
class _Where:
    """Where a module came from: the reader, its real path (for files) and its bundle key."""
    reader: "Files | Bundle"
    path: Path | None
    key: str
    depth: int = 0


class Files:
    """Reads imports from disk, inside the allowed folders only."""

    def __init__(self, roots: Iterable[str | Path]):
        self.roots = [Path(r).expanduser().resolve() for r in roots]
        self.top = self.roots[0]

    def resolve(self, where: _Where, stmt: ast.import_stmt) -> tuple[Path, str]:
        base = where.path.parent if where.path else self.top
        try:
            target = (base / stmt.path).resolve(strict=True)
        except FileNotFoundError:
            raise SpecError(f"cannot import '{stmt.path}': no such file", stmt.span).with_note(
                f"looked for {shown(Path(os.path.abspath(base / stmt.path)))} "
                "(imports are relative to the importing file)") from None
        except (OSError, RuntimeError) as e:  # a symlink loop, a name too long, ...
            raise SpecError(f"cannot import '{stmt.path}': {getattr(e, 'strerror', None) or e}", stmt.span) from None
        root = next((r for r in self.roots if target.is_relative_to(r)), None)
        if root is None:
            raise SpecError(f"cannot import '{stmt.path}': outside the project folder", stmt.span).with_note(
                f"imports must stay inside {shown(self.top)}; to allow another folder pass --allow-import DIR")
        if not target.is_file():
            raise SpecError(f"cannot import '{stmt.path}': not a file", stmt.span)
        key = target.relative_to(self.top).as_posix() if root == self.top else target.as_posix()
        return target, key

    def read(self, target: Path, key: str, stmt: ast.import_stmt) -> str:
        try:
            return _read_text(target, shown(target))
        except SpecError as e:
            raise SpecError(e.message, stmt.span) from None


class Bundle:
    """Reads imports from a bundle's mapping, resolving paths as the files did."""

    def __init__(self, files: Mapping[str, str]):
        self.files = files

    def resolve(self, where: _Where, stmt: ast.import_stmt) -> tuple[None, str]:
        key = posixpath.normpath(posixpath.join(posixpath.dirname(where.key), stmt.path))
        if key not in self.files:
            raise SpecError(f"cannot import '{stmt.path}': not in the run's saved spec", stmt.span)
        return None, key

    def read(self, target, key: str, stmt) -> str:
        return self.files[key]


def _add(prog: Program, mod: ast.module, where: _Where | None, main: bool = False, chain: tuple[str, ...] = ()) -> None:
    for item in mod.items:
        if isinstance(item, ast.import_stmt):
            _import(prog, item, where, chain + (where.key,))
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


def _import(prog: Program, stmt: ast.import_stmt, where: _Where, chain: tuple[str, ...]) -> None:
    if "\0" in stmt.path or not stmt.path.endswith(".res"):
        what = "contains a NUL byte" if "\0" in stmt.path else "does not name a .res file"
        raise SpecError(f"cannot import '{stmt.path[:80]!s}': the path {what}", stmt.span).with_note(
            "an import names a spec file, e.g. import \"blocks.res\"")
    target, key = where.reader.resolve(where, stmt)
    if key in chain:
        cycle = " -> ".join(prog.names.get(k, k) for k in (*chain[chain.index(key):], key))
        raise SpecError(f"import cycle: {cycle}", stmt.span).with_note(
            "a file cannot import itself, directly or through other imports")
    if key in prog.files:
        return
    limits.IMPORT_DEPTH.check(where.depth + 1, stmt.span)
    limits.IMPORT_FILES.check(len(prog.files) + 1, stmt.span)
    text = where.reader.read(target, key, stmt)
    prog.files[key] = text
    name = prog.names[key] = shown(target) if target is not None else key
    _add(prog, _parse(text, name), _Where(where.reader, target, key, where.depth + 1), chain=chain)


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
