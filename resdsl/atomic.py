"""write_atomic: every file resdsl writes (models, checkpoints, renders, summaries, `fmt`'s rewrites)
goes through here — the one safe writer.

    write_atomic(path, write)                   write(tmp) beside path, fsync, rename over path
    text, snap = read_snapshot(path)            a file's text and what it was when read
    write_atomic(path, write, unchanged=snap)   ... refused if the file changed since (FileChanged)

Guarantees: a crash leaves the old file or the new one, never a torn one; a file that exists keeps
its permission bits (0600 stays private, 0444 read-only, exec bits kept) and its owner and group
(where the OS lets us set them; otherwise the write is refused, the file untouched); a symbolic
link is never replaced (the error names its target: rewrite that file if you mean it); a full disk
(ENOSPC) or any other failure leaves the old file as it was and removes the temporary.
"""
from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


class FileChanged(OSError):
    """The file changed on disk between the read and the write (an edit saved meanwhile)."""


@dataclass(frozen=True)
class Snapshot:
    """What a file was when it was read: enough to tell that it changed since."""
    size: int
    mtime_ns: int
    inode: int
    digest: str


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_snapshot(path: str | Path) -> tuple[bytes, Snapshot]:
    """The bytes of `path` and its Snapshot, taken from one open file (fstat of the fd read)."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        data = f.read()
    return data, Snapshot(st.st_size, st.st_mtime_ns, st.st_ino, _digest(data))


def _check_unchanged(path: Path, snap: Snapshot) -> None:
    try:
        data, now = read_snapshot(path)
    except FileNotFoundError:
        raise FileChanged(errno.ENOENT, "the file was removed since it was read; not rewritten", str(path)) from None
    if now.digest != snap.digest or now.inode != snap.inode or now.size != snap.size:
        raise FileChanged(errno.EAGAIN, "the file changed since it was read (an edit saved meanwhile?); "
                          "not rewritten, run again", str(path))


def describe(e: OSError) -> str:
    """One line for a write that failed: full disk, permission, a link, a changed file."""
    if e.errno == errno.ENOSPC:
        return "no space left on device (the file is unchanged)"
    return e.strerror or str(e)


def write_atomic(path: str | Path, write: Callable[[str], object], *, unchanged: Snapshot | None = None) -> None:
    """Call write(tmp) on a temporary file beside `path`, fsync it, rename it over `path`, fsync
    the folder: a crash at any point leaves either the old file or the new one, never a torn one.
    A new file gets the usual permissions (0666 less the umask), not mkstemp's 0600; an existing
    one keeps its mode and owner. With `unchanged`, the file must still be what read_snapshot saw."""
    path = Path(path)
    if path.is_symlink():           # replacing it would drop a link the user keeps; writing through it
        target = os.readlink(path)  # would change a file not named
        raise OSError(errno.ELOOP, f"refusing to replace a symbolic link (it points to '{target}'; "
                      "name that file to rewrite it)", str(path))
    try:
        old = path.stat()
    except FileNotFoundError:
        old = None
    if old is not None and not stat.S_ISREG(old.st_mode):
        raise OSError(errno.EINVAL, "not a regular file; refusing to replace it", str(path))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if old is None:
            os.chmod(tmp, 0o666 & ~_umask())
        else:
            _keep_owner(tmp, old)
            os.chmod(tmp, stat.S_IMODE(old.st_mode))
        if unchanged is not None:
            _check_unchanged(path, unchanged)
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


def _keep_owner(tmp: str, old: os.stat_result) -> None:
    st = os.stat(tmp)
    if (st.st_uid, st.st_gid) == (old.st_uid, old.st_gid) or not hasattr(os, "chown"):
        return
    try:
        os.chown(tmp, old.st_uid, old.st_gid)
    except PermissionError:
        raise OSError(errno.EPERM, f"cannot keep the file's owner ({old.st_uid}:{old.st_gid}); "
                      "not rewritten") from None
