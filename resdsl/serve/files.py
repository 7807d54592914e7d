"""The served folder: every path the page names is confined to it (resolved, symlinks followed).

A path from the page is relative, names a `.res` file, has no `..` part and no NUL, and what it
resolves to (after every symbolic link) lies inside the served folder. Writes go through
resdsl.atomic.write_atomic, the writer `fmt` uses, which also refuses to replace a symbolic link.
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ..atomic import write_atomic

MAX_PATH = 1024           # characters of a relative path
MAX_FILES = 2000          # .res files listed


def version(data: bytes) -> str:
    """What the page remembers of a file it opened, to notice a change made by someone else."""
    import hashlib

    return hashlib.sha256(data).hexdigest()[:32]


class PathRefused(Exception):
    """A path outside the served folder, or not a .res file: the page gets a 403 or 404."""

    def __init__(self, message: str, status: int = 403):
        super().__init__(message)
        self.status = status


class Folder:
    def __init__(self, root: str | Path):
        self.root = Path(root).resolve(strict=True)

    def _relative(self, rel: str) -> Path:
        if not isinstance(rel, str) or not rel or len(rel) > MAX_PATH or "\0" in rel or "\\" in rel:
            raise PathRefused("not a usable path", 400)
        p = PurePosixPath(rel)
        if p.is_absolute() or ".." in p.parts or rel.startswith("~"):
            raise PathRefused(f"'{rel[:200]}' is outside the served folder")
        if p.suffix != ".res":
            raise PathRefused(f"'{rel[:200]}' is not a .res file", 400)
        return self.root.joinpath(*p.parts)

    def _inside(self, real: Path, rel: str) -> None:
        if not real.is_relative_to(self.root):
            raise PathRefused(f"'{rel[:200]}' leads outside the served folder")

    def existing(self, rel: str) -> Path:
        """The real path of a served file (after symlinks), which must lie inside the folder."""
        path = self._relative(rel)
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            raise PathRefused(f"no file '{rel[:200]}' in the served folder", 404) from None
        self._inside(real, rel)
        if not real.is_file():
            raise PathRefused(f"'{rel[:200]}' is not a file", 404)
        return real

    def target(self, rel: str) -> Path:
        """Where a save of `rel` writes: its folder (resolved) inside the served folder; never
        through a symbolic link, never over a folder."""
        path = self._relative(rel)
        try:
            parent = path.parent.resolve(strict=True)
        except (OSError, RuntimeError):
            raise PathRefused(f"no folder for '{rel[:200]}' in the served folder", 404) from None
        self._inside(parent, rel)
        out = parent / path.name
        if out.is_symlink():
            raise PathRefused(f"'{rel[:200]}' is a symbolic link; not replaced")
        if out.exists() and not out.is_file():
            raise PathRefused(f"'{rel[:200]}' is not a file", 400)
        return out

    def read(self, rel: str) -> tuple[str, str]:
        """(text, version) of a served file."""
        from .. import limits

        real = self.existing(rel)
        size = real.stat().st_size
        if size > limits.SOURCE_BYTES.value:
            raise PathRefused(f"'{rel[:200]}' has {size:,} bytes, over the source_bytes budget", 413)
        data = real.read_bytes()
        return data.decode("utf-8", "replace"), version(data)

    def save(self, rel: str, text: str, overwrite: bool = True, base: str | None = None) -> Path:
        """Write `text` to `rel`; refused when it exists and `overwrite` is false, or when `base`
        (the version the page opened) is given and the file has changed on disk since."""
        out = self.target(rel)
        if out.exists() and not overwrite:
            raise PathRefused(f"'{rel[:200]}' exists already", 409)
        if base is not None and out.exists() and version(out.read_bytes()) != base:
            raise PathRefused(f"'{rel[:200]}' has changed on disk since it was opened", 409)
        write_atomic(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        return out

    def listing(self) -> list[str]:
        """The .res files under the folder (hidden folders and links out of it skipped), sorted."""
        out = []
        for dirpath, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in ("__pycache__", "node_modules"))
            for f in sorted(files):
                if not f.endswith(".res") or f.startswith("."):
                    continue
                full = Path(dirpath) / f
                try:
                    if not full.resolve(strict=True).is_relative_to(self.root):
                        continue
                except (OSError, RuntimeError):
                    continue
                out.append(full.relative_to(self.root).as_posix())
                if len(out) >= MAX_FILES:
                    return out
        return out

    def shown(self, real: Path) -> str:
        return real.relative_to(self.root).as_posix() if real.is_relative_to(self.root) else str(real)
