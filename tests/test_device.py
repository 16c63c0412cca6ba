"""The shipped model on every board that runs here: build, chat through a real pty (pyserial), and
the on-device conformance check (bit-exact against the integer reference); the board that is too
small fails its build with the memory report; bad builds and outputs get one line each."""
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tinyagent.cli import DEFAULT_RUN, main
from tinyagent.device.chat import LINE_MAX, LINE_TOO_LONG, NOT_UTF8, chat
from tinyagent.device.conformance import conformance
from tinyagent.errors import EXIT_BAD_INPUT, EXIT_DOES_NOT_FIT, TinyAgentError
from tinyagent.targets.build import build

RUNNABLE = ["host", "mps2-an386", "riscv32-virt", "lx106-sim"]


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("builds")
    return {b: build(b, root / b, DEFAULT_RUN) for b in RUNNABLE}


@pytest.mark.parametrize("board", RUNNABLE)
def test_build_reports_a_plan_that_fits(builds, board):
    r = builds[board]
    assert r.artifact is not None and r.artifact.exists()
    assert r.plan.fits() and r.plan.ram["stack (deepest call path)"] > 0
    saved = json.loads((r.out / "memory.json").read_text())
    assert saved["fits"] and saved["flash_total"] == r.plan.flash_total
    # the plan accounts for what the linker placed; where --gc-sections drops unused code (lx106)
    # the per-object plan is the larger, never the smaller
    lk = r.plan.linker
    assert lk["text"] + lk["data"] <= r.plan.flash_total <= 1.02 * (lk["text"] + lk["data"])


@pytest.mark.parametrize("board", RUNNABLE)
def test_conformance_is_bit_exact(builds, board):
    res = conformance(board=board, out=str(builds[board].out))
    failed = [c for c in res.checks if not c.ok]
    assert not failed, failed[:3]
    kinds = {c.kind for c in res.checks}
    assert kinds == {"model", "logits", "tokenizer", "conversation"}
    ctx = json.loads((Path(DEFAULT_RUN) / "int8" / "config.json").read_text())["model"]["ctx"]
    assert max(c.steps for c in res.checks if c.kind == "logits") == ctx  # the whole context
    names = [c.name for c in res.checks if c.kind == "conversation"]
    assert any("dropped" in n for n in names) and any("refused" in n for n in names), names


def test_chat_on_the_default_board_calls_the_tools(builds):
    out = io.StringIO()
    chat(board="mps2-an386", out=str(builds["mps2-an386"].out),
         stdin=io.StringIO("turn on the light\ntell me the temperature\nturn the led off\nhello there\n"), stdout=out)
    got = dict(turns(out.getvalue()))
    # one conversation: each request sees the turns before it (the README's demo)
    assert got["turn on the light"].startswith("[led on] -> on\n")
    assert got["tell me the temperature"].startswith("[temp] -> 23.5\n")
    assert got["turn the led off"].startswith("[led off] -> off\n")
    assert "[" not in got["hello there"] and got["hello there"].strip()


def test_reference_chat_matches_the_device(builds):
    requests = "turn the led off\nhello\nset gpio 5 high\n"
    dev, ref = io.StringIO(), io.StringIO()
    chat(board="host", out=str(builds["host"].out), stdin=io.StringIO(requests), stdout=dev)
    chat(board="reference", run=DEFAULT_RUN, stdin=io.StringIO(requests), stdout=ref)
    assert dev.getvalue() == ref.getvalue()


def turns(transcript: str) -> list[tuple[str, str]]:
    """A non-interactive chat's output -> [(request as echoed, reply)]."""
    return [tuple(t.split("\n", 1)) for t in re.split(r"^> ", transcript, flags=re.M)[1:]]


def test_device_line_max_is_the_firmwares():
    """The host's LINE_MAX (chat refuses a longer line as the console does) is TA_LINE_MAX."""
    import re

    from tinyagent.targets.boards import FIRMWARE_DIR

    header = (FIRMWARE_DIR / "ta_console.h").read_text()
    assert int(re.search(r"#define TA_LINE_MAX (\d+)", header).group(1)) == LINE_MAX


def test_chat_reads_lines_as_the_console_edits_them(builds):
    """stdin's lines are taken as the firmware console takes them (device.edit_line): invalid UTF-8 and
    an overlong line get the console's one-line refusal, a CR ends a line, BS and escapes edit it, a
    line that edits to nothing is skipped (the console would answer nothing). Each answer stays under
    its request, on the device and on the reference alike."""
    stdin = (b"\xff\nhello\r!new\nturn on the light\n!new\rset a timer for 5 minutes\n\x1b[A\n!ne\x08ew\n"
             b"set gpio 5 high\x08\x08\x08\x08low\r\n\x1b[D\x1b[C\x08\x00\r" + b"y" * (LINE_MAX + 32) + b"\n!new\nhello")
    dev, ref = io.StringIO(), io.StringIO()
    chat(board="host", out=str(builds["host"].out), stdin=io.BytesIO(stdin), stdout=dev)
    chat(board="reference", run=DEFAULT_RUN, stdin=io.BytesIO(stdin), stdout=ref)
    assert dev.getvalue() == ref.getvalue()
    got = dict(enumerate(t for t in turns(dev.getvalue()) if t[0] != "!new" or t[1] != "ok\n"))
    assert [req for req, _ in got.values()] == ["\ufffd", "hello", "turn on the light", "set a timer for 5 minutes",
                                               "set gpio 5 low", "y" * LINE_MAX, "hello"]
    assert got[0][1] == NOT_UTF8 + "\n" and got[5][1] == LINE_TOO_LONG + "\n"
    assert "[led on]" in got[2][1] and "[timer 300]" in got[3][1] and "[gpio 5 0]" in got[4][1]
    assert got[1][1] == got[6][1] and "[" not in got[1][1]
    assert dev.getvalue().count("> !new\nok\n") == 4


# Long, and answered with calls that read no clock: the board's uptime under QEMU counts the
# instructions it ran, polling for input too, so it depends on how fast this machine answers, and
# the reference's on its wall clock; a turn that reads either would compare two clocks.
LONG_NO_CLOCK = ("please could you be so kind as to turn on the light in the kitchen for me right now, and when you "
                 "have done that please could you be so kind as to tell me how warm it is in here")


def test_a_conversation_on_mps2_matches_the_reference(builds):
    """One conversation under QEMU (Cortex-M4): long requests overflow the context, a pin out of range
    is refused and leaves no trace, !new starts again; the same transcript as the reference."""
    requests = "\n".join(["set gpio 40 high", "turn on the light", "hello", *[LONG_NO_CLOCK] * 4,
                          "what is the temperature please", "!new", "turn the led off"]) + "\n"
    dev, ref = io.StringIO(), io.StringIO()
    chat(board="mps2-an386", out=str(builds["mps2-an386"].out), stdin=io.StringIO(requests), stdout=dev)
    chat(board="reference", run=DEFAULT_RUN, stdin=io.StringIO(requests), stdout=ref)
    assert not re.search(r"^\[(uptime|status)\]", ref.getvalue(), re.M), "a clock was read: " + ref.getvalue()
    assert dev.getvalue() == ref.getvalue()
    assert "Not done: pin must be 0 to 39." in dev.getvalue() and "> !new\nok\n" in dev.getvalue()


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        except OSError:
            continue  # ended while we looked
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def ended(pid: int) -> bool:
    """Gone, or a zombie (it runs nothing and holds no pty; its new parent reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129),
                                       (signal.SIGKILL, -signal.SIGKILL)],
                         ids=["SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"])
@pytest.mark.parametrize("board", ["host", "mps2-an386"])
def test_no_board_outlives_chat_however_it_ends(builds, board, sig, code):
    """`tinyagent chat` ended by a signal leaves no emulator or host program behind: SIGINT (a Ctrl-C,
    to the terminal's whole process group), SIGTERM and SIGHUP close the console and exit 128 + signo;
    after SIGKILL the kernel ends the board's program (PR_SET_PDEATHSIG)."""
    chat_cmd = [str(Path(sys.executable).with_name("tinyagent")), "chat", "--board", board,
                "--out", str(builds[board].out)]
    proc = subprocess.Popen(chat_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # its own group, as a shell's job
    try:
        proc.stdin.write(b"!ping up\n")
        proc.stdin.flush()
        got = proc.stdout.readline() + proc.stdout.readline()
        if got != b"> !ping up\npong up\n":
            proc.kill()
            pytest.fail(f"chat did not answer: {got!r}; stderr: {proc.stderr.read().decode()!r}")
        boards = children(proc.pid)
        assert len(boards) == 1, boards  # the emulator or host program, started and answering
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
        assert proc.wait(timeout=30) == code, proc.stderr.read()
        deadline = time.monotonic() + 10  # the kernel's SIGKILL, or a clean quit already done
        while not ended(boards[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ended(boards[0]), f"{board}'s program {boards[0]} outlived chat ({sig.name})"
        said = proc.stderr.read().decode()
        assert said == {signal.SIGINT: "tinyagent: interrupted\n", signal.SIGKILL: ""}.get(
            sig, f"tinyagent: terminated by {sig.name}\n")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_ends_test_with_130(builds):
    """A Ctrl-C (SIGINT to the terminal's process group) while `tinyagent test` talks to the board:
    exit 130, one line, and the board's program ended with it."""
    proc = subprocess.Popen([str(Path(sys.executable).with_name("tinyagent")), "test", "--board", "host",
                             "--out", str(builds["host"].out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300  # it reads the model and the held-out set first: slow on a busy machine
        while not children(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        boards = children(proc.pid)
        assert len(boards) == 1, (boards, proc.poll())
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130 and err == b"tinyagent: interrupted\n", (proc.returncode, err)
        # A Ctrl-C that lands as the board starts, before the console that would close it exists, can
        # leave it to the kernel's SIGKILL when tinyagent exits (PR_SET_PDEATHSIG): a moment later, as in chat
        deadline = time.monotonic() + 10
        while not ended(boards[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ended(boards[0]), f"the host program {boards[0]} outlived tinyagent test"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_microbit_does_not_fit_and_says_why(tmp_path):
    with pytest.raises(TinyAgentError) as e:
        build("microbit", tmp_path / "mb", DEFAULT_RUN)
    assert e.value.code == EXIT_DOES_NOT_FIT
    msg = str(e.value)
    assert "microbit" in msg and "16,384 B" in msg and "shorter than this agent's turns" in msg
    assert "boards with room for this plan:" in msg and "mps2-an386" in msg
    assert "KV cache" in e.value.details and "weights" in e.value.details
    assert not (tmp_path / "mb" / "tinyagent-build.json").exists()


# ---- the stack plan is an upper bound: measured on mps2-an386 ----------------------------------------

STACK_PAINT = 0xDEADBEEF            # written over the whole stack reservation before the CPU starts
STACK_TURNS = ("turn on the light", "what is the temperature?", "set a timer for 5 minutes")
MONITOR_DUMP_TIMEOUT_S = 10.0


def _qemu_monitor(sock_path: Path, command: str) -> None:
    """One command to a QEMU monitor on a unix socket (the board's own -monitor stdio is the transport's)."""
    import socket

    deadline = time.monotonic() + MONITOR_DUMP_TIMEOUT_S
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        while True:
            try:
                s.connect(str(sock_path))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        s.settimeout(MONITOR_DUMP_TIMEOUT_S)
        seen = b""

        def prompts(n: int) -> None:   # read until the n-th "(qemu)" prompt: the command has run
            nonlocal seen
            while seen.count(b"(qemu)") < n:
                chunk = s.recv(4096)
                if not chunk:
                    raise AssertionError(f"the QEMU monitor closed: {seen[-200:]!r}")
                seen += chunk

        prompts(1)                     # the banner and the first prompt
        s.sendall(command.encode() + b"\n")
        prompts(2)


def _stack_high_water(board_name: str, out: Path, requests, tmp_path: Path) -> int:
    """The deepest the stack went: QEMU paints the reservation below the top of RAM (a loader device,
    before the CPU runs), the requests are chatted, then the monitor dumps the reservation and the
    lowest word that is not paint marks the high water. No firmware change: the real build runs."""
    import dataclasses
    import struct

    from tinyagent.device.protocol import ask, sync
    from tinyagent.device.transport import open_console
    from tinyagent.targets.build import load_build

    info = load_build(out, board_name)
    board = info.board
    nm = subprocess.run(["arm-none-eabi-nm", str(info.artifact)], capture_output=True, text=True, check=True)
    top = int(next(ln.split()[0] for ln in nm.stdout.splitlines() if ln.endswith(" __stack_top")), 16)
    size = board.stack_bytes
    paint, dump, sock = tmp_path / "paint.bin", tmp_path / "stack.bin", tmp_path / "monitor.sock"
    paint.write_bytes(struct.pack("<I", STACK_PAINT) * (size // 4))
    command = (*board.run.command, "-device", f"loader,file={paint},addr={top - size:#x},force-raw=on",
               "-monitor", f"unix:{sock},server=on,wait=off")
    painted = dataclasses.replace(board, run=dataclasses.replace(board.run, command=command))
    with open_console(painted, info.artifact) as con:
        sync(con)
        for request in requests:
            ask(con, request)
        _qemu_monitor(sock, f'pmemsave {top - size:#x} {size} "{dump}"')
        deadline = time.monotonic() + MONITOR_DUMP_TIMEOUT_S
        while not (dump.exists() and dump.stat().st_size == size) and time.monotonic() < deadline:
            time.sleep(0.05)
    words = struct.unpack(f"<{size // 4}I", dump.read_bytes())
    lowest = next(i for i, w in enumerate(words) if w != STACK_PAINT)
    assert lowest > 0, "the stack ran through the whole reservation"
    return size - 4 * lowest


def test_the_stack_plan_holds_what_the_stack_reached_on_mps2(builds, tmp_path):
    """Three chat turns on mps2-an386 under QEMU: the plan (reset handler's frame, the deepest path, an
    interrupt frame and its handler) is at least the measured high water. The deepest path from main
    alone, what the plan used to be, is not: SysTick interrupts the deepest call."""
    from tinyagent.targets.toolchain import max_stack_bytes

    r = builds["mps2-an386"]
    reached = _stack_high_water("mps2-an386", r.out, STACK_TURNS, tmp_path)
    planned = r.plan.ram["stack (deepest call path)"]
    from_main = max_stack_bytes(r.out / "obj", "main").bytes
    assert from_main < reached <= planned, (from_main, reached, planned)
    assert "+ 36 for an interrupt" in r.plan.stack_note and "via ta_cm_reset_handler > main" in r.plan.stack_note


def test_mps2_firmware_never_uses_the_fpu(builds):
    """The board file's 36 B interrupt frame holds only while no FP context is ever stacked: the
    firmware (built -mfloat-abi=soft, the FPU left off) has no floating-point instruction."""
    elf = builds["mps2-an386"].artifact
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True, check=True)
    fp = [ln for ln in dis.stdout.splitlines() if re.search(r"\tv(ldr|str|mov|push|pop|add|sub|mul|div|cvt|cmp|mrs|msr)", ln)]
    assert len(dis.stdout) > 10_000 and not fp, fp[:5]


def _tiny_stack_board(monkeypatch, reserve: int):
    import dataclasses

    import tinyagent.targets.build as build_module

    real = build_module.load_board
    monkeypatch.setattr(build_module, "load_board",
                        lambda name, *a: dataclasses.replace(real(name, *a), stack_bytes=reserve))


def test_a_stack_over_the_reservation_does_not_fit(tmp_path, monkeypatch):
    _tiny_stack_board(monkeypatch, 256)
    with pytest.raises(TinyAgentError) as e:
        build("mps2-an386", tmp_path / "b", DEFAULT_RUN)
    msg = str(e.value)
    assert e.value.code == EXIT_DOES_NOT_FIT and "\n" not in msg
    assert "the program does not fit board 'mps2-an386': stack" in msg and "the 256 B the board reserves" in msg
    assert "raise stack_bytes in boards/mps2-an386.toml to at least" in msg
    assert "OVER by" in e.value.details and "of the 256 B reserved" in e.value.details
    saved = json.loads((tmp_path / "b" / "memory.json").read_text())
    assert saved["fits"] is False and saved["stack_budget"] == 256
    assert not (tmp_path / "b" / "tinyagent-build.json").exists()
    # the command line: exit code 4, the one line, then the report with the stack's row
    r = CliRunner().invoke(main, ["build", "--board", "mps2-an386", "--out", str(tmp_path / "c")])
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == EXIT_DOES_NOT_FIT, r.output
    assert lines[0].startswith("tinyagent: error: the program does not fit board 'mps2-an386': stack")
    assert any("of the 256 B reserved  OVER by" in ln for ln in lines[1:]), r.output


def test_build_refuses_another_models_folder(builds, tmp_path):
    out = tmp_path / "other"
    out.mkdir()
    (out / "tinyagent-build.json").write_text(json.dumps({"board": "host", "model_hash": "0" * 64}))
    with pytest.raises(TinyAgentError, match="holds a build of model 000000000000") as e:
        build("host", out, DEFAULT_RUN)
    assert e.value.code == EXIT_BAD_INPUT
    assert build("host", out, DEFAULT_RUN, replace=True).artifact.exists()


@pytest.mark.parametrize("args, code, words", [
    (["build", "--board", "nosuch"], 2, ["nosuch", "mps2-an386"]),
    (["chat", "--board", "host", "--out", "/nonexistent/x"], 2, ["no build here"]),
    (["chat", "--port", "/dev/ttyNOSUCH"], 3, ["/dev/ttyNOSUCH"]),
    (["prune", "--run", "/nonexistent", "--ffn-keep", "0"], 2, ["0"]),
    (["test", "--out", "/nonexistent/y"], 2, ["no build here"]),
])
def test_cli_bad_input_is_one_line(args, code, words):
    r = CliRunner().invoke(main, args)
    assert r.exit_code == code, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("tinyagent: error:"), r.output
    assert all(w in lines[0] for w in words), lines[0]


def test_a_tool_that_fails_says_so_and_the_device_goes_on(tmp_path):
    """A handler that returns an error status with no result: the device feeds (and prints) `error:
    tool failed` as the result, the turn ends normally, and the next request is answered."""
    from tinyagent.agent.spec import REPO_ROOT
    from tinyagent.device.chat import open_device
    from tinyagent.device.protocol import ask

    src = (REPO_ROOT / "firmware/ta_tools_default.c").read_text()
    failing, n = re.subn(r"(ta_status ta_tool_temp\(const ta_call \*call, char \*result, size_t cap\)\n\{\n)"
                         r"    \(void\)call;\n    cat_temp\(result, cap\);\n    return TA_OK;",
                         r"\1    (void)call;\n    (void)result;\n    (void)cap;\n    return TA_ERR_TOOL;", src)
    assert n == 1, "ta_tool_temp changed shape"
    tools = tmp_path / "tools_failing.c"
    tools.write_text(failing)
    b = build("host", tmp_path / "build", DEFAULT_RUN, tools_c=str(tools))
    with open_device("host", str(b.out), None, 115200) as con:
        reply = ask(con, "what's the temperature?")
        assert "[temp] -> error: tool failed\n" in reply, reply
        assert "[led on] -> on" in ask(con, "turn on the light")


def test_chat_diagnostics_show_the_firmwares_stderr(tmp_path):
    """`chat --diagnostics` on the host board: what a tools file prints to stderr (here the temp
    handler) follows the reply it came with, marked; without the flag it is not shown."""
    from tinyagent.agent.spec import REPO_ROOT

    src = (REPO_ROOT / "firmware/ta_tools_default.c").read_text()
    loud, n = re.subn(r"(ta_status ta_tool_temp\(const ta_call \*call, char \*result, size_t cap\)\n\{\n)",
                      r'\1    fprintf(stderr, "reading the sensor\\n");\n', src)
    assert n == 1, "ta_tool_temp changed shape"
    tools = tmp_path / "tools_loud.c"
    tools.write_text("#include <stdio.h>\n" + loud)
    b = build("host", tmp_path / "build", DEFAULT_RUN, tools_c=str(tools))
    requests = "what's the temperature?\nhello\n"
    out, err = io.StringIO(), io.StringIO()
    chat(board="host", out=str(b.out), stdin=io.StringIO(requests), stdout=out, diagnostics=True, stderr=err)
    assert "[temp] -> 23.5" in out.getvalue() and err.getvalue() == "[host stderr] reading the sensor\n", err.getvalue()
    quiet = io.StringIO()
    chat(board="host", out=str(b.out), stdin=io.StringIO(requests), stdout=io.StringIO(), stderr=quiet)
    assert quiet.getvalue() == ""
    r = CliRunner().invoke(main, ["chat", "--board", "host", "--out", str(b.out), "--diagnostics"],
                           input="what's the temperature?\n")
    assert r.exit_code == 0 and "[host stderr] reading the sensor" in r.output, r.output
