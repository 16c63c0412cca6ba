"""Atomic file writes and model hashing. Every file tinyagent writes goes through here, so a kill at
any moment leaves either the old file or the new one, never half of one."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
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


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
