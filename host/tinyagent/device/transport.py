"""The console: one line-oriented serial connection to a board, whatever is behind it.

`open_console` gives the same `Console` for three kinds of device:
  - the host board: the firmware runs as a process, opens a pseudo-terminal itself and prints its
    path as its first line on stdout;
  - an emulated board: QEMU starts paused (-S) with the board's console on a pty and its monitor on
    stdin/stdout; the pty is opened before the CPU runs (so no output is lost), then `cont`;
  - a real board on a serial port (/dev/ttyUSB0, /dev/ttyACM0, ...).
In every case the pty or port is opened with pyserial, exactly like a USB serial port.

QEMU 7.2's pty backend notices that the host has opened the pty on a once-a-second poll (or when the
guest writes), so input sent right after start can wait up to a second; output is not held back.
Callers allow for it in their timeouts; the programs stay silent until their first line arrives.

No board's program outlives the process that started it, however that process ends: on Linux the
kernel sends it SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG, set between fork and exec), and
it runs in its own process group, so a Ctrl-C at the terminal reaches only tinyagent, which then ends
it in order (the CLI does the same on SIGTERM and SIGHUP).

Every wait has a named limit below. A device that does not answer in time, a port that is missing or
busy, and a port that goes away mid-read each become one TinyAgentError (EXIT_DEVICE), not a
traceback.
"""
from __future__ import annotations

import codecs
import ctypes
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import termios
import time
import weakref
from pathlib import Path
from typing import IO, Callable, Iterator

import serial

from ..errors import EXIT_DEVICE, TinyAgentError
from ..targets.boards import Board
from ..targets.toolchain import Artifact

# ---- timeouts (seconds) ----
PTY_ANNOUNCE_TIMEOUT_S = 10.0  # the program or QEMU must name its pty within this
READ_TIMEOUT_S = 10.0          # default wait for an expected reply in read_until
EXIT_TIMEOUT_S = 10.0          # wait for the program to end by itself (wait_exit)
QUIT_GRACE_S = 2.0             # after asking QEMU to quit or closing the host program's pty
TERMINATE_GRACE_S = 2.0        # after SIGTERM, before SIGKILL
GONE_EXIT_WAIT_S = 1.0         # a program's pty went away: wait this long for its exit code
SERIAL_POLL_S = 0.05           # one pyserial read; bounds how late a deadline is noticed
EMULATOR_CHUNK_BYTES = 16      # writes to an emulator go in chunks this size: QEMU's console inputs
EMULATOR_CHUNK_PAUSE_S = 0.002 # (xtensa simcall, UART FIFOs) have small buffers and dropped bytes under load

# A port whose other end went away: pyserial raises SerialException or OSError, and flush()'s
# tcdrain raises termios.error (no OSError subclass) on a pty whose program has exited.
PORT_GONE = (serial.SerialException, OSError, termios.error)

DEFAULT_BAUD = 115200
QEMU_CONTROL_FLAGS = ("-nodefaults", "-display", "none", "-monitor", "stdio", "-S")
_QEMU_PTY_RE = re.compile(r"char device redirected to (\S+)")
_SHOWN_TAIL_CHARS = 80         # how much of what did arrive an error message quotes


def _device_error(message: str) -> TinyAgentError:
    return TinyAgentError(message, EXIT_DEVICE)


class Console:
    """A line-oriented console on `port`; owns the process behind it (if any) and ends it on close."""

    def __init__(self, port: str, link: serial.Serial, process: subprocess.Popen | None = None,
                 stderr_file: IO[bytes] | None = None, qemu: bool = False):
        self.port = port
        self._link = link
        self._process = process
        self._stderr = stderr_file
        self._stderr_read = 0  # bytes of stderr_file new_stderr has returned
        self._pending = b""   # read from the port, not yet returned
        self.reply_timeout_s = 30.0  # the longest wait for one reply (the board's [run] reply_timeout_s)
        self._qemu = qemu     # an emulator: writes are paced (EMULATOR_CHUNK_BYTES)
        # runs once: from close(), or when the Console is garbage-collected or Python exits
        self._shutdown = weakref.finalize(self, _shutdown, link, process, stderr_file, qemu)

    # -- context manager --
    def __enter__(self) -> Console:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- I/O --
    def write_line(self, text: str | bytes) -> None:
        """Send one line and its LF: text as UTF-8, bytes as they are."""
        data = (text if isinstance(text, bytes) else text.encode("utf-8")) + b"\n"
        chunk = EMULATOR_CHUNK_BYTES if self._qemu else len(data)
        try:
            for i in range(0, len(data), chunk):
                self._link.write(data[i:i + chunk])
                self._link.flush()
                if self._qemu and i + chunk < len(data):
                    time.sleep(EMULATOR_CHUNK_PAUSE_S)
        except PORT_GONE as e:
            raise self._gone(f"writing {text[:40]!r}", e) from None

    def read_until(self, marker: str, timeout: float = READ_TIMEOUT_S,
                   raise_timeout: bool = True) -> str | None:
        """Everything up to and including `marker`. If it does not come within `timeout` seconds:
        TinyAgentError (EXIT_DEVICE), or None with raise_timeout=False (what did arrive is kept)."""
        want = marker.encode("utf-8")
        deadline = time.monotonic() + timeout
        while want not in self._pending:
            if not self._fill(deadline, marker, timeout, raise_timeout):
                return None
        end = self._pending.index(want) + len(want)
        out, self._pending = self._pending[:end], self._pending[end:]
        return out.decode("utf-8", "replace")

    def stream_until(self, marker: str, timeout: float = READ_TIMEOUT_S) -> Iterator[str]:
        """Like read_until, but yields the text piece by piece as it arrives (for live replies)."""
        want = marker.encode("utf-8")
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        deadline = time.monotonic() + timeout
        while want not in self._pending:
            # hold back a tail that may be the start of the marker
            keep = next((k for k in range(len(want) - 1, 0, -1) if self._pending.endswith(want[:k])), 0)
            ready = self._pending[:len(self._pending) - keep]
            if ready:
                self._pending = self._pending[len(ready):]
                yield decoder.decode(ready)
            self._fill(deadline, marker, timeout, raise_timeout=True)
        end = self._pending.index(want) + len(want)
        out, self._pending = self._pending[:end], self._pending[end:]
        yield decoder.decode(out, final=True)

    def _fill(self, deadline: float, marker: str, timeout: float, raise_timeout: bool) -> bool:
        """Read what has arrived (waiting at most SERIAL_POLL_S) into _pending; False on timeout."""
        if time.monotonic() >= deadline:
            if not raise_timeout:
                return False
            got = self._pending.decode("utf-8", "replace")[-_SHOWN_TAIL_CHARS:]
            raise _device_error(f"{self.port}: no {marker!r} within {timeout:g} s "
                                f"(last output: {got!r})")
        try:
            self._pending += self._link.read(max(1, self._link.in_waiting))
        except PORT_GONE as e:
            raise self._gone(f"waiting for {marker!r}", e) from None
        return True

    def read_line(self, timeout: float = READ_TIMEOUT_S) -> str:
        """The next line, without its line ending."""
        return self.read_until("\n", timeout).rstrip("\r\n")

    # -- life cycle --
    @property
    def name(self) -> str:
        """What error messages call this console: its pty or port."""
        return self.port

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def exit_code(self) -> int | None:
        """The program's exit code once it has ended; None while it runs or for a real port."""
        return None if self._process is None else self._process.poll()

    def wait_exit(self, timeout: float = EXIT_TIMEOUT_S) -> int:
        """Wait for the program (host process or QEMU) to end by itself; its exit code."""
        if self._process is None:
            raise _device_error(f"{self.port} is a real port: there is no program exit to wait for")
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise _device_error(f"{self.port}: the program did not exit within {timeout:g} s") from None

    def hang_up(self, timeout: float = EXIT_TIMEOUT_S) -> int | None:
        """Close the port and let the program end by itself (the host program exits when its pty
        closes, and a tool wrapped around it, such as callgrind, then writes its results); then close
        as usual. Its exit code, or None if it had to be ended."""
        try:
            self._link.close()
        except PORT_GONE:
            pass
        if self._process is not None:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        return self.close()

    def close(self) -> int | None:
        """Close the port and end the program behind it (no zombies). Returns its exit code."""
        self._shutdown()
        return self.exit_code

    # -- helpers --
    def new_stderr(self) -> str:
        """What the program or QEMU wrote to stderr since the last call ("" for a serial port)."""
        if self._stderr is None or self._stderr.closed:
            return ""
        self._stderr.flush()
        self._stderr.seek(self._stderr_read)
        data = self._stderr.read()  # to the end: the program's writes go on from there
        self._stderr_read += len(data)
        return data.decode("utf-8", "replace")

    def stderr_summary(self) -> str:
        """What the program or QEMU said on stderr (first non-warning line), for error messages."""
        return _stderr_summary(self._stderr)

    def _gone(self, doing: str, err: Exception) -> TinyAgentError:
        if self._process is not None:  # the pty hangs up a moment before the exit can be read
            try:
                self._process.wait(GONE_EXIT_WAIT_S)
            except subprocess.TimeoutExpired:
                pass
        why = (f"the program exited with code {self.exit_code}" if self.exit_code is not None
               else (str(err).splitlines() or [type(err).__name__])[0])
        said = self.stderr_summary()
        return _device_error(f"{self.port} went away while {doing} ({why})"
                             + (f"; stderr: {said}" if said else ""))


# ---- processes ----

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that has the kernel SIGKILL the child when this process ends (Linux; None
    elsewhere). The kernel ties it to the thread that forks, so start programs from a thread that
    lives as long as their consoles (the main thread, here)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork, not in the child
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    parent = os.getpid()

    def in_child() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: nobody is left to signal us
            os._exit(1)

    return in_child


def _stderr_summary(f: IO[bytes] | None) -> str:
    """The first line the program or QEMU wrote to stderr that is not a warning, for error messages."""
    if f is None or f.closed:
        return ""
    f.flush()
    f.seek(0)
    lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines()]
    # skip warnings and rules made of one character (ASan opens its report with a line of '=')
    return next((ln for ln in lines if len(set(ln)) > 1 and "warning:" not in ln), "")


def _shutdown(link: serial.Serial, process: subprocess.Popen | None, stderr_file: IO[bytes] | None,
              qemu: bool) -> None:
    if qemu and process is not None and process.poll() is None:
        _send_monitor(process, "quit")
    try:
        link.close()
    except PORT_GONE:
        pass
    if process is not None:
        _end_process(process)
    if stderr_file is not None:
        stderr_file.close()


def _send_monitor(process: subprocess.Popen, command: str) -> None:
    try:
        process.stdin.write(command.encode() + b"\n")
        process.stdin.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass   # QEMU already gone


def _end_process(process: subprocess.Popen) -> int:
    """Wait a little for a clean exit, then SIGTERM, then SIGKILL; always reaps the process."""
    for signal_it, grace in ((None, QUIT_GRACE_S), (process.terminate, TERMINATE_GRACE_S),
                             (process.kill, None)):
        if signal_it is not None and process.poll() is None:
            signal_it()
        try:
            code = process.wait(grace)
            break
        except subprocess.TimeoutExpired:
            continue
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            pipe.close()
    return code


ANNOUNCE_LINE_MAX = 4096  # bytes: a line naming a pty is far shorter; reading stops at a longer one


def _read_announcement(process: subprocess.Popen, pattern: re.Pattern | None, what: str,
                       stderr_file: IO[bytes]) -> str:
    """Read the process's stdout until a line names its pty: the whole first line if `pattern` is
    None (it must be a /dev/ path), else the pattern's first group. Times out after
    PTY_ANNOUNCE_TIMEOUT_S. A line over ANNOUNCE_LINE_MAX bytes is one line of error, so what is held
    stays bounded whatever the program prints."""
    deadline = time.monotonic() + PTY_ANNOUNCE_TIMEOUT_S
    fd = process.stdout.fileno()
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            while b"\n" in buf and len(buf.split(b"\n", 1)[0]) <= ANNOUNCE_LINE_MAX:
                line, buf = buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace").strip()
                if pattern is None:
                    if text.startswith("/dev/") and text.isprintable() and " " not in text:
                        return text
                    raise _device_error(f"{what} printed {text[:_SHOWN_TAIL_CHARS]!r} as its first line "
                                        "(expected the path of its console pty, e.g. /dev/pts/3)")
                m = pattern.search(text)
                if m:
                    return m.group(1)
            if len(buf.split(b"\n", 1)[0]) > ANNOUNCE_LINE_MAX:
                start = buf[:_SHOWN_TAIL_CHARS].decode("utf-8", "replace")
                raise _device_error(f"{what} printed a line of more than {ANNOUNCE_LINE_MAX:,} bytes "
                                    f"before naming its console pty (it starts {start!r}; expected a "
                                    "short line such as /dev/pts/3)")
            left = deadline - time.monotonic()
            if left <= 0:
                raise _device_error(f"{what} did not name its console pty within "
                                    f"{PTY_ANNOUNCE_TIMEOUT_S:g} s")
            if sel.select(left):
                chunk = os.read(fd, 4096)
                if not chunk:
                    code = process.wait()
                    said = _stderr_summary(stderr_file)
                    raise _device_error(f"{what} exited with code {code} before opening its console"
                                        + (f": {said}" if said else ""))
                buf += chunk


def _open_serial(port: str, baud: int, exclusive: bool) -> serial.Serial:
    try:
        return serial.Serial(port, baud, timeout=SERIAL_POLL_S, write_timeout=READ_TIMEOUT_S,
                             exclusive=exclusive)
    except PORT_GONE as e:
        text = str(e)
        if not Path(port).exists():
            why = "no such device (is the board plugged in?)"
        elif "lock" in text.lower() or "busy" in text.lower():
            why = "the port is busy (another program has it open)"
        else:
            why = text.splitlines()[0] if text else type(e).__name__
        raise _device_error(f"cannot open {port}: {why}") from None


def _start_program(board: Board, elf: Path) -> Console:
    if board.run.kind == "none" or not board.runs_here:
        raise TinyAgentError(f"board {board.name} does not run here: flash it and pass its port "
                             f"(for example --port /dev/ttyUSB0)", EXIT_DEVICE)
    if not elf.is_file():
        raise TinyAgentError(f"no program at {elf}: build it for {board.name} first", EXIT_DEVICE)
    argv = [str(elf) if a == "{elf}" else a for a in board.run.command]
    qemu = board.run.kind == "qemu"
    if qemu:
        argv += QEMU_CONTROL_FLAGS
    if board.run.kind == "stdio":
        return _start_stdio_program(board, argv)
    stderr_file = tempfile.TemporaryFile()
    try:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE if qemu else subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=stderr_file,
                                   preexec_fn=_die_with_parent(), process_group=0)
    except FileNotFoundError:
        stderr_file.close()
        packages = " ".join(board.run.packages) or argv[0]
        raise TinyAgentError(f"{argv[0]} not found (needed to run {board.name}): install it with "
                             f"`sudo apt-get install {packages}`", EXIT_DEVICE) from None
    try:
        what = f"{Path(argv[0]).name} for {board.name}"
        port = _read_announcement(process, _QEMU_PTY_RE if qemu else None, what, stderr_file)
        link = _open_serial(port, DEFAULT_BAUD, exclusive=False)
    except BaseException:
        _end_process(process)
        stderr_file.close()
        raise
    if qemu:
        _send_monitor(process, "cont")   # only now: the pty is open, so nothing printed is lost
    return Console(port, link, process=process, stderr_file=stderr_file, qemu=qemu)


def _start_stdio_program(board: Board, argv: list[str]) -> Console:
    """A program whose stdin and stdout are the console (run kind "stdio"): it gets the master side of
    a new pty as both, and the console opens the slave, as it opens QEMU's (pyserial sets it raw, so
    the bytes pass unchanged). The slave is open before the program starts, so nothing is lost; when
    the console closes it, the program's reads fail (EIO) and it ends."""
    master, slave = os.openpty()
    port = os.ttyname(slave)
    stderr_file = tempfile.TemporaryFile()
    try:
        link = _open_serial(port, DEFAULT_BAUD, exclusive=False)
    except BaseException:
        os.close(master)
        os.close(slave)
        stderr_file.close()
        raise
    os.close(slave)   # the link holds its own descriptor
    try:
        process = subprocess.Popen(argv, stdin=master, stdout=master, stderr=stderr_file,
                                   preexec_fn=_die_with_parent(), process_group=0)
    except FileNotFoundError:
        link.close()
        stderr_file.close()
        packages = " ".join(board.run.packages) or argv[0]
        raise TinyAgentError(f"{argv[0]} not found (needed to run {board.name}): install it with "
                             f"`sudo apt-get install {packages}`", EXIT_DEVICE) from None
    finally:
        os.close(master)  # the program has its own
    return Console(port, link, process=process, stderr_file=stderr_file)


def open_console(board: Board | None, artifact_or_port: Artifact | Path | str | None = None, *,
                 artifact: Artifact | Path | None = None, port: str | None = None,
                 baud: int = DEFAULT_BAUD) -> Console:
    """Start the built program for `board` (an Artifact, or the path of its elf) and connect to its
    console, or open a real serial port (a str such as "/dev/ttyUSB0"). The target can also be
    given by keyword: artifact=... or port=...."""
    given = [t for t in (artifact_or_port, artifact, port) if t is not None]
    if len(given) != 1:
        raise TinyAgentError("open_console needs exactly one of a built program or a port", EXIT_DEVICE)
    target = given[0]
    if isinstance(target, str):
        return Console(target, _open_serial(target, baud, exclusive=True))
    if board is None:
        raise TinyAgentError("a board is needed to run a built program", EXIT_DEVICE)
    if isinstance(target, Artifact):
        if target.elf is None:
            raise TinyAgentError(f"board {board.name} was only compiled (proxy toolchain); "
                                 f"there is no program to run", EXIT_DEVICE)
        con = _start_program(board, target.elf)
    else:
        con = _start_program(board, Path(target))
    con.reply_timeout_s = float(board.run.reply_timeout_s)  # a slow emulator waits longer for a reply
    return con
