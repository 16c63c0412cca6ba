"""The console transport: real ptys opened with pyserial, the host board's echo program and QEMU.

Devices that misbehave (missing, busy, silent, vanishing) must give one-line EXIT_DEVICE errors that
name the port, and closing a console must never leave a process behind.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import threading
from pathlib import Path

import pytest

from tinyagent.device.transport import open_console
from tinyagent.errors import EXIT_DEVICE, TinyAgentError
from tinyagent.targets.boards import REPO_ROOT, load_board
from tinyagent.targets.toolchain import compile_and_link

ECHO = REPO_ROOT / "firmware/test/echo_main.c"


@pytest.fixture(scope="module")
def host_echo(tmp_path_factory):
    board = load_board("host")
    if shutil.which(board.toolchain.compiler) is None:
        pytest.fail("no host C compiler" + " (setup.sh installs it)")
    return board, compile_and_link(board, [ECHO], [], tmp_path_factory.mktemp("host-echo"))


@pytest.fixture
def pty_pair():
    """A pseudo-terminal standing in for a USB serial port: (master fd, port path)."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    yield master, path
    try:
        os.close(master)
    except OSError:
        pass


def device_error(fn) -> str:
    with pytest.raises(TinyAgentError) as e:
        fn()
    assert e.value.code == EXIT_DEVICE
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def gone(pid: int) -> bool:
    """The process is neither running nor a zombie."""
    return not Path(f"/proc/{pid}").exists()


# ---- real ports ----

def test_a_port_that_does_not_exist():
    msg = device_error(lambda: open_console(None, "/dev/ttyNOPE0"))
    assert "/dev/ttyNOPE0" in msg and "no such device" in msg


def test_a_busy_port(pty_pair):
    _, path = pty_pair
    with open_console(None, port=path):
        msg = device_error(lambda: open_console(None, port=path))
    assert path in msg and "busy" in msg


def test_a_silent_device_times_out_naming_port_and_seconds(pty_pair):
    _, path = pty_pair
    with open_console(None, path) as con:
        msg = device_error(lambda: con.read_until("ready", timeout=0.3))
        assert path in msg and "0.3 s" in msg
        assert con.read_until("ready", timeout=0.1, raise_timeout=False) is None


def test_a_device_that_stops_mid_reply_times_out_naming_port_and_seconds(pty_pair):
    """Half a reply arrives, then nothing: one line with the port, the seconds waited and the tail
    of what did arrive; the same for a streamed reply (`tinyagent chat`)."""
    from tinyagent.device.protocol import ask

    master, path = pty_pair
    with open_console(None, path) as con:
        con.write_line("hello")
        os.write(master, b"[led on] -> on\nThe LED is")   # no end of line, no prompt
        msg = device_error(lambda: ask(con, "turn on the light", timeout=0.5))
        assert path in msg and "0.5 s" in msg and "The LED is" in msg
        os.write(master, b" on")
        msg = device_error(lambda: list(con.stream_until("\n> ", timeout=0.4)))
        assert path in msg and "0.4 s" in msg


def test_a_real_port_round_trip_and_streaming(pty_pair):
    master, path = pty_pair

    def device():   # answers each line in upper case, in two pieces
        buf = b""
        while b"\n" not in buf:
            buf += os.read(master, 100)
        line = buf.split(b"\n")[0]
        os.write(master, line.upper()[:2])
        os.write(master, line.upper()[2:] + b"\n> ")

    with open_console(None, path) as con:
        helper = threading.Thread(target=device)   # only now: reading a pty nobody opened is EIO
        helper.start()
        con.write_line("hello")
        chunks = list(con.stream_until("\n> ", timeout=5))
        assert "".join(chunks) == "HELLO\n> " and con.exit_code is None
    helper.join()


def test_a_port_that_vanishes_mid_read(pty_pair):
    master, path = pty_pair
    with open_console(None, path) as con:
        os.close(master)   # the pty's other side goes away, as a USB adapter does when unplugged
        msg = device_error(lambda: con.read_until("x", timeout=2))
    assert path in msg and "went away" in msg


# ---- the host board: a process with its own pty ----

def test_host_program_console_and_clean_exit(host_echo):
    board, art = host_echo
    with open_console(board, artifact=art) as con:
        con.write_line("ping")
        assert con.read_until("echo: ping\n").endswith("echo: ping\n")
        con.write_line("!exit 5")
        assert con.read_line() == "bye"
        assert con.wait_exit() == 5
    assert gone(con.pid)


def test_closing_ends_the_program(host_echo):
    board, art = host_echo
    con = open_console(board, art)
    con.write_line("one")
    con.read_until("echo: one\n")
    assert con.exit_code is None
    con.close()
    assert con.exit_code == 3 and gone(con.pid)   # echo_main: the console went away


class FakeDrainFails:
    """FAKE serial link: the write is taken, the drain fails as tcdrain does on a pty whose program
    has just died (termios.error, which is no OSError); the real race is too narrow to hit on purpose."""

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        import termios
        raise termios.error(5, "Input/output error")


def test_a_drain_that_fails_is_one_line(host_echo, monkeypatch):
    board, art = host_echo
    with open_console(board, art) as con:
        real = con._link
        monkeypatch.setattr(con, "_link", FakeDrainFails())
        msg = device_error(lambda: con.write_line("two"))
        assert con.port in msg and "went away while writing 'two'" in msg and "Input/output error" in msg
        con._link = real
    assert gone(con.pid)


def test_program_killed_mid_read_is_one_line(host_echo):
    board, art = host_echo
    with open_console(board, art) as con:
        con.write_line("one")
        con.read_until("echo: one\n")
        os.kill(con.pid, signal.SIGKILL)
        msg = device_error(lambda: con.read_until("never", timeout=5))
        assert con.port in msg and "went away" in msg
    assert gone(con.pid)


@pytest.mark.parametrize("prints, says", [
    ("head -c 3000000 /dev/zero | tr '\\0' a; echo", "a line of more than 4,096 bytes"),  # a 3 MB first line
    ("tr '\\0' a < /dev/zero", "a line of more than 4,096 bytes"),                    # one that never ends
    ("echo 'hello world'", "printed 'hello world' as its first line"),               # not a pty
])
def test_a_program_whose_first_line_names_no_pty_is_one_line(tmp_path, prints, says):
    """The host board's program names its pty on its first line. Whatever it prints instead, the
    error is one short line, no more than ANNOUNCE_LINE_MAX bytes of it are held, and the program ends."""
    program = tmp_path / "firmware"
    program.write_text(f"#!/bin/sh\necho $$ > {tmp_path}/pid\n{prints}\nsleep 60\n")
    program.chmod(0o755)
    msg = device_error(lambda: open_console(load_board("host"), program))
    assert says in msg and "/dev/pts/3" in msg and len(msg) < 300, msg[:300]
    pid = int((tmp_path / "pid").read_text())
    assert gone(pid)


def test_a_board_that_does_not_run_here(host_echo):
    _, art = host_echo
    msg = device_error(lambda: open_console(load_board("esp32"), art))
    assert "esp32" in msg and "--port" in msg


# ---- QEMU ----

def test_qemu_that_fails_to_start_says_why(host_echo, tmp_path):
    board = load_board("mps2-an386")
    if shutil.which(board.run.command[0]) is None:
        pytest.fail("qemu-system-arm is not installed" + " (setup.sh installs it)")
    bad = dataclasses.replace(board, run=dataclasses.replace(
        board.run, command=tuple("no-such-machine" if a == "mps2-an386" else a for a in board.run.command)))
    elf = tmp_path / "any.elf"
    elf.write_bytes(b"\x7fELF")
    msg = device_error(lambda: open_console(bad, elf))
    assert "before opening its console" in msg and "unsupported machine type" in msg


def test_missing_emulator_names_the_package(tmp_path):
    board = load_board("riscv32-virt")
    bad = dataclasses.replace(board, run=dataclasses.replace(
        board.run, command=("qemu-system-nonexistent", *board.run.command[1:])))
    elf = tmp_path / "any.elf"
    elf.write_bytes(b"\x7fELF")
    msg = device_error(lambda: open_console(bad, elf))
    assert "qemu-system-nonexistent" in msg and "apt-get install qemu-system-misc" in msg


def test_closing_a_qemu_console_ends_qemu(tmp_path):
    board = load_board("riscv32-virt")
    if shutil.which(board.run.command[0]) is None or shutil.which(board.toolchain.compiler) is None:
        pytest.fail("riscv32 toolchain or QEMU not installed" + " (setup.sh installs it)")
    art = compile_and_link(board, [ECHO], [], tmp_path)
    con = open_console(board, art)
    con.write_line("hi")
    assert con.read_line() == "tinyagent echo test on riscv32-virt"
    con.close()
    assert con.exit_code is not None and gone(con.pid)
