"""Atomic file writes and model hashing. Every file tinyagent writes goes through here, so a kill at
any moment leaves either the old file or the new one, never half of one.

A write goes to `.<name>.<pid>.<random>.tmp` beside the file, then is renamed over it. A writer killed
before the rename leaves its temp file behind; the next write of that file, and `remove_stale_temps`
(run on opening a run folder and on resuming a stage), delete the temp files whose writer is dead.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

# .<name>.<pid>.<random>.tmp, and the older .<name>.<random>.tmp (no pid: stale once this old)
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[a-z0-9_]{8}\.tmp$")
_OLD_TEMP = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")
OLD_TEMP_STALE_S = 3600


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Delete the atomic writer's temp files in `folder` (only those of the file `name`, if given)
    whose writer process is gone. Returns what was deleted; a folder that cannot be read is left alone."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        if not e.name.endswith(".tmp"):
            continue
        m = _TEMP.match(e.name)
        if m:
            stale = not _alive(int(m.group("pid")))
        else:
            m = _OLD_TEMP.match(e.name)
            try:
                stale = bool(m) and time.time() - e.stat(follow_symlinks=False).st_mtime > OLD_TEMP_STALE_S
            except OSError:
                stale = False
        if not stale or (name is not None and m.group("name") != name) or not e.is_file(follow_symlinks=False):
            continue
        try:
            os.unlink(e.path)
            removed.append(Path(e.path))
        except OSError:
            pass
    return removed


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _new_file_mode(path: Path) -> int:
    """The mode open() would leave: an existing file's own, else 0666 less the umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


# What an output folder that cannot be written says, by errno: the folder, and what to do
_CANNOT_WRITE = {errno.EROFS: "{folder} is on a read-only file system",
                 errno.ENOSPC: "no space left on the device that holds {folder}",
                 errno.EDQUOT: "the disk quota of {folder} is used up",
                 errno.EACCES: "permission denied in {folder}", errno.EPERM: "not permitted in {folder}"}


def cannot_write(path: str | os.PathLike, e: OSError, folder: str | os.PathLike | None = None,
                 verb: str = "write"):
    """The one line for an OSError while writing `path` (in `folder`, by default its parent)."""
    from .errors import bad_input

    path = Path(path)
    folder = Path(folder) if folder is not None else path.parent
    why = _CANNOT_WRITE.get(e.errno, "{strerror}").format(folder=folder, strerror=e.strerror or type(e).__name__)
    return bad_input(f"cannot {verb} {path}: {why} (free space or fix the folder, or choose another)")


def make_dir(folder: str | os.PathLike) -> Path:
    """mkdir -p, with a folder that cannot be made (read-only, full, no permission) one line."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        failed = Path(e.filename) if isinstance(e.filename, str) else folder
        raise cannot_write(folder, e, failed.parent, verb="create") from None
    return folder


def check_writable(folder: str | os.PathLike) -> None:
    """Before long work whose output goes to `folder`: the folder, or the nearest one above it that
    exists, takes writes. A read-only file system or a folder without write permission is one line
    now rather than at the end (a full disk can only show itself when written)."""
    p = Path(folder).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    if p.is_dir() and not os.access(p, os.W_OK | os.X_OK):
        code = errno.EROFS if os.statvfs(p).f_flag & os.ST_RDONLY else errno.EACCES
        raise cannot_write(folder, OSError(code, os.strerror(code)), p,
                           verb="create" if not Path(folder).exists() else "write in")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    make_dir(path.parent)
    remove_stale_temps(path.parent, path.name)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, _new_file_mode(path))  # mkstemp makes it 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(e, OSError):
            raise cannot_write(path, e) from None
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike, what: str, fix: str = "") -> Any:
    """The JSON in `path`; a folder, an unreadable file or bad JSON is one bad_input line naming the file
    as `what` (e.g. "run file"), with `fix` appended ("; rebuild with --replace"). A missing file raises
    FileNotFoundError, which each caller words for itself."""
    from .errors import bad_input

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (IsADirectoryError, PermissionError) as e:
        raise bad_input(f"{path}: cannot read the {what} ({e.strerror}{fix})") from None
    except (ValueError, UnicodeDecodeError):
        raise bad_input(f"{path}: corrupt {what} (not valid JSON{fix})") from None


MAX_INPUT_BYTES = 1 << 20  # a spec or other text file the user names; far above any real one


def check_input_file(path: str | os.PathLike, what: str, max_bytes: int = MAX_INPUT_BYTES) -> None:
    """Before reading a file the user named: a device, pipe or socket (/dev/zero never ends) or a file
    over `max_bytes` is one bad_input line. A missing path or a folder is left to the reader's words."""
    from .errors import bad_input

    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return
    if stat.S_ISDIR(st.st_mode):
        return
    if not stat.S_ISREG(st.st_mode):
        raise bad_input(f"{path}: the {what} is not a regular file (a device, pipe or socket; allowed: a file)")
    if st.st_size > max_bytes:
        raise bad_input(f"{path}: the {what} is {st.st_size:,} bytes (allowed: at most {max_bytes:,})")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
