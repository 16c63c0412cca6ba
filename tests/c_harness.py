"""Builds and drives the C test programs for the C-vs-reference tests.

`build_firmware` links the generated sources with firmware/test/hal_stdio.c (and the timer slots
every board shares): the real firmware, its console on stdin/stdout. `Console` talks to it line by
line. Objects are cached by the content of the source and every header it includes, so the runtime
compiles once per session and only the generated model files compile per model.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tinyagent.integer import intmath
from tinyagent.integer.reference import forward_seq
from tinyagent.targets.toolchain import SANITIZE_CFLAGS, host_sanitize

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "firmware"
CC = "gcc"
# TA_TEST_CFLAGS replaces the flags, e.g. "-std=c99 -Wall -Wextra -Werror -O1 -g -fsanitize=address,undefined";
# TA_HOST_SANITIZE=1 adds ASan/UBSan (the flags `tinyagent build --board host` then uses too).
CFLAGS = tuple(os.environ.get("TA_TEST_CFLAGS", "-std=c99 -Wall -Wextra -Werror -O2").split()) + (
    SANITIZE_CFLAGS if host_sanitize() else ())
SANITIZER_EXIT_CODE = 86  # conftest.py sets ASAN_OPTIONS/UBSAN_OPTIONS exitcode to this
SANITIZER_REPORT = re.compile(r"ERROR: \w+Sanitizer|runtime error: ")
REPLY_TIMEOUT_S = 60.0  # one console reply (a chat turn of the largest test model takes milliseconds)

_CACHE = Path(tempfile.mkdtemp(prefix="ta-cobj-"))
atexit.register(shutil.rmtree, _CACHE, True)
_INCLUDE = re.compile(rb'^\s*#\s*include\s+"([^"]+)"', re.M)


def _digest(src: Path, include_dirs: list[Path], h, seen: set[Path]) -> None:
    src = src.resolve()
    if src in seen:
        return
    seen.add(src)
    data = src.read_bytes()
    h.update(str(src.name).encode() + b"\0" + data)
    for inc in _INCLUDE.findall(data):
        for d in [src.parent, *include_dirs]:
            p = d / inc.decode()
            if p.is_file():
                _digest(p, include_dirs, h, seen)
                break


def compile_obj(src: Path, include_dirs: list[Path], cc: str = CC, flags: tuple[str, ...] = CFLAGS) -> Path:
    h = hashlib.sha256(" ".join([cc, *flags]).encode())
    _digest(Path(src), [Path(d) for d in include_dirs], h, set())
    obj = _CACHE / f"{Path(src).stem}-{h.hexdigest()[:20]}.o"
    if not obj.exists():
        tmp = obj.with_suffix(f".{os.getpid()}.tmp")
        cmd = [cc, *flags, *(f"-I{d}" for d in include_dirs), "-c", str(src), "-o", str(tmp)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stderr}"
        tmp.replace(obj)
    return obj


def build_program(sources: list[Path], include_dirs: list[Path], exe: Path, flags: tuple[str, ...] = CFLAGS) -> Path:
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        objs = list(pool.map(lambda s: compile_obj(s, include_dirs, flags=flags), sources))
    sanitizers = [f for f in CFLAGS if f.startswith("-fsanitize")]
    done = subprocess.run([CC, *sanitizers, *map(str, objs), "-o", str(exe)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return exe


HARNESS_HAL = (FIRMWARE / "test" / "hal_stdio.c", FIRMWARE / "boards" / "common" / "hal_timers.c")


def build_firmware(out_dir: Path, sources: list[Path]) -> Path:
    """The generated firmware with the stdin/stdout HAL (and the common timer slots), as out_dir/harness."""
    return build_program([*sources, *HARNESS_HAL], [Path(out_dir), FIRMWARE], Path(out_dir) / "harness")


class Console:
    """The firmware's console over pipes. `ask` sends one line (or any bytes) and returns the reply
    exactly: everything printed up to the next prompt, found by following it with a `!ping <nonce>`.
    It is also a console for tinyagent.device.protocol (`name`, `write_line`, `read_until`), whose
    functions the tests use for every command with a parsed reply (!info, !run, !tokx, ...)."""

    def __init__(self, exe: Path, env: dict[str, str] | None = None):
        self.stderr = tempfile.TemporaryFile()  # quoted in errors: a sanitizer report lands here
        self.proc = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, env={**os.environ, **(env or {})})
        self.name = f"harness {Path(exe).name}"
        self.reply_timeout_s = REPLY_TIMEOUT_S
        self.nonce = 0
        self._pending = b""
        self.banner = self.ask(b"")  # the first line makes the firmware greet

    # -- the protocol module's console interface (device/protocol.py) --
    def write_line(self, text: str | bytes) -> None:
        self.proc.stdin.write((text.encode() if isinstance(text, str) else text) + b"\n")
        self.proc.stdin.flush()

    def read_until(self, marker: str, timeout: float = REPLY_TIMEOUT_S, raise_timeout: bool = True) -> str | None:
        want, deadline = marker.encode(), time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while want not in self._pending:
            ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                if not raise_timeout and self.proc.poll() is None:
                    return None
                raise AssertionError(f"no {marker!r} (exit {self.proc.poll()}); got {self._pending[-300:]!r}; "
                                     f"stderr: {self.stderr_text()[-3000:]}")
            self._pending += chunk
        end = self._pending.index(want) + len(want)
        out, self._pending = self._pending[:end], self._pending[end:]
        return out.decode("utf-8", "replace")

    def ask(self, line: bytes | str, end: bytes = b"\n") -> bytes:
        assert not self._pending, self._pending  # a protocol call read its reply whole
        data = line.encode() if isinstance(line, str) else line
        self.nonce += 1
        # a nonce no test sends itself (a bare number did: a test's own "!ping 42" once met nonce 42)
        marker = b"pong sync-%d\n> " % self.nonce
        self.proc.stdin.write(data + end + b"!ping sync-%d\n" % self.nonce)
        self.proc.stdin.flush()
        out = bytearray()
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        fd = self.proc.stdout.fileno()
        while not out.endswith(marker):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0))
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                raise AssertionError(f"no reply to {data[:80]!r} (exit {self.proc.poll()}); got "
                                     f"{bytes(out[-300:])!r}; stderr: {self.stderr_text()[-3000:]}")
            out += chunk
        reply = bytes(out[:-len(marker)])
        assert reply.endswith(b"> "), reply[-200:]
        return reply[:-2]

    def stderr_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")

    def close(self) -> int:
        self.proc.stdin.close()
        code = self.proc.wait(timeout=10)
        self.proc.stdout.close()
        said = self.stderr_text()
        self.stderr.close()
        # a sanitized build (TA_HOST_SANITIZE) halts at its first report with exit code 86
        assert code != SANITIZER_EXIT_CODE and not SANITIZER_REPORT.search(said), said[-3000:]
        return code


def expected_steps(int_model, tokens: list[int]) -> list[str]:
    """The reference's `!run` lines: `step <i> <argmax> <fnv1a of the logits>`."""
    logits = forward_seq(int_model, tokens)
    return [f"step {i} {int(np.argmax(lg))} {intmath.fnv1a32_i32(lg):08x}" for i, lg in enumerate(logits)]


def start_firmware(out_dir: Path, int_model, bpe, spec, **generate_kw) -> Console:
    """Generate the sources for this model, build them with the stdin/stdout HAL, start the console."""
    from tinyagent.codegen.generate import generate_sources

    sources = generate_sources(int_model, bpe, spec, "harness", out_dir, **generate_kw)
    return Console(build_firmware(Path(out_dir), sources))
