"""write_atomic: every file resdsl writes (models, checkpoints, renders, summaries) goes through here."""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Callable


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, write: Callable[[str], object]) -> None:
    """Call write(tmp) on a temporary file beside `path`, fsync it, rename it over `path`, fsync
    the folder: a crash at any point leaves either the old file or the new one, never a torn one.
    The file gets the usual permissions (0666 less the umask), not mkstemp's 0600."""
    path = Path(path)
    if path.is_symlink():           # replacing it would drop a link the user keeps; writing through it
        raise OSError(errno.ELOOP, "refusing to replace a symbolic link", str(path))   # a file not named
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:          # some platforms cannot open a folder; the rename is still atomic
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
