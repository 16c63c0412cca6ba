"""Boards: the board files, the real cross-compilers and the real emulators.

Every board that runs here builds firmware/test/echo_main.c and talks to it through a real pty with
pyserial, one board at a time (each QEMU busy-waits on a core). The lx106's division and multiply
helpers are checked against Python on the emulated core and, on many more values, on the host.
"""
from __future__ import annotations

import ctypes
import dataclasses
import random
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tinyagent.device.transport import open_console
from tinyagent.errors import EXIT_BAD_INPUT, EXIT_DOES_NOT_FIT, EXIT_TOOL_MISSING, TinyAgentError
from tinyagent.targets.boards import REPO_ROOT, list_boards, load_board
from tinyagent.targets.toolchain import compile_and_link, max_stack_bytes, stack_plan

ECHO = REPO_ROOT / "firmware/test/echo_main.c"
LX106_DIR = REPO_ROOT / "firmware/boards/lx106-sim"
RUNNABLE = ["host", "mps2-an386", "riscv32-virt", "lx106-sim", "microbit"]
PROXIES = ["esp32", "esp32s3", "esp32c3", "pico"]
MASK32, MASK64 = (1 << 32) - 1, (1 << 64) - 1


def needs_tools(board_name: str):
    """Skip (with the reason) when this machine lacks the board's compiler or emulator."""
    board = load_board(board_name)
    tools = [board.toolchain.compiler]
    if board.run.kind == "qemu":
        tools.append(board.run.command[0])
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(f"not installed here: {', '.join(missing)}" + " (setup.sh installs it)")
    return board


def build(board_name: str, sources: list[Path], out: Path):
    board = needs_tools(board_name)
    return board, compile_and_link(board, sources, [], out)


# ---- board files ----

def test_unknown_board_is_one_line_listing_the_known_boards():
    with pytest.raises(TinyAgentError) as e:
        load_board("arduino-uno")
    msg = str(e.value)
    assert e.value.code == EXIT_BAD_INPUT
    assert "\n" not in msg and "arduino-uno" in msg
    for name in RUNNABLE + PROXIES:
        assert name in msg


def test_every_board_file_loads_with_its_budgets():
    boards = {b.name: b for b in list_boards()}
    assert set(RUNNABLE + PROXIES) <= set(boards)
    assert boards["mps2-an386"].flash_bytes == 4 << 20 and boards["mps2-an386"].ram_bytes == 4 << 20
    assert boards["microbit"].flash_bytes == 256 << 10 and boards["microbit"].ram_bytes == 16 << 10
    assert boards["pico"].flash_bytes == 2 << 20 and not boards["pico"].runs_here
    for name in RUNNABLE:
        assert boards[name].runs_here and boards[name].hal_sources
    for name in PROXIES:
        assert boards[name].toolchain.proxy and boards[name].run.kind == "none"


def _write_board(tmp_path: Path, text: str, name: str = "host") -> Path:
    (tmp_path / f"{name}.toml").write_text(text)
    return tmp_path


@pytest.mark.parametrize("edit, complaint", [
    (lambda t: t.replace('cpu = "native"', 'cpu = "native"\ncolour = "red"'), "unknown field 'colour'"),
    (lambda t: t.replace("ram_bytes = 67108864", 'ram_bytes = "lots"'), "'ram_bytes' must be a int"),
    (lambda t: t.replace('kind = "process"', 'kind = "ssh"'), "kind 'ssh' is not one of"),
    (lambda t: t.replace('libc = "system"', 'libc = "system"\nflavour = 1'), "unknown field 'flavour'"),
    (lambda t: t.replace('console = "pty"', 'console = "telepathy"'), "console 'telepathy'"),
    (lambda t: t.replace('counter = "ns"', 'counter = "ticks"'), "counter 'ticks' is not one of"),
    (lambda t: t.replace('counter = "ns"', 'counter = "ns"\ncounter_scale = 0'), "counter_scale must be at least 1"),
])
def test_a_bad_board_file_is_one_clear_line(tmp_path, edit, complaint):
    text = (REPO_ROOT / "boards/host.toml").read_text()
    with pytest.raises(TinyAgentError) as e:
        load_board("host", _write_board(tmp_path, edit(text)))
    assert complaint in str(e.value) and "\n" not in str(e.value)
    assert e.value.code == EXIT_BAD_INPUT


@pytest.mark.parametrize("edit, complaint", [
    (lambda t: t.replace("interrupt_frame_bytes = 36", "interrupt_frame_bytes = 0"),
     "interrupt_handlers ta_cm_systick_handler need interrupt_frame_bytes"),
    (lambda t: t.replace('"-mfloat-abi=soft"', '"-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"'),
     "interrupt_frame_bytes 36 is less than the 108 B a Cortex-M with the FPU in use pushes"),
    (lambda t: t.replace('interrupt_handlers = ["ta_cm_systick_handler"]', 'interrupt_handlers = ["systick()"]'),
     "'systick()' is not a function name"),
    (lambda t: t.replace("interrupt_frame_bytes = 36", "interrupt_frame_bytes = -4"),
     "interrupt_frame_bytes must not be negative"),
])
def test_the_stack_fields_of_a_board_file_are_checked(tmp_path, edit, complaint):
    text = (REPO_ROOT / "boards/mps2-an386.toml").read_text()
    with pytest.raises(TinyAgentError) as e:
        load_board("mps2-an386", _write_board(tmp_path, edit(text), "mps2-an386"))
    assert complaint in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert e.value.code == EXIT_BAD_INPUT


def test_an_instruction_counter_needs_icount(tmp_path):
    text = (REPO_ROOT / "boards/riscv32-virt.toml").read_text().replace('"-icount", "shift=0",', "")
    with pytest.raises(TinyAgentError) as e:
        load_board("riscv32-virt", _write_board(tmp_path, text, "riscv32-virt"))
    assert "needs -icount" in str(e.value) and "\n" not in str(e.value)


# ---- the echo program on every board that runs here ----

@pytest.mark.parametrize("name", RUNNABLE)
def test_echo_program_talks_through_a_pty(name, tmp_path):
    board, art = build(name, [ECHO], tmp_path)
    assert art.elf.is_file() and art.size.text > 0
    assert art.size.flash <= board.flash_bytes and art.size.ram + board.stack_bytes <= board.ram_bytes
    with open_console(board, art) as con:
        assert con.port.startswith("/dev/pts/")
        con.write_line("hello board")
        assert con.read_line() == f"tinyagent echo test on {name}"
        assert con.read_line() == "echo: hello board"
        con.write_line("!led 1")
        assert con.read_line() == "led: 1"
        con.write_line("!led 0")
        assert con.read_line() == "led: 0"
        con.write_line("!temp")
        assert con.read_line() == "temp: 235"
        con.write_line("!millis")
        assert re.fullmatch(r"millis: \d+", con.read_line())
        con.write_line("!exit")
        assert con.read_line() == "bye"
        assert con.wait_exit() == 0


PUMP_PIN, PUMP_MS = 5, 20
PUMP_WAIT_S = 60.0   # real seconds for PUMP_MS of the board's time: under QEMU's -icount a busy wait
                     # on a device runs at 15 to 100 simulated ms per second here


@pytest.mark.parametrize("name", RUNNABLE)
def test_a_timer_switches_a_pump_off_in_the_boards_own_time(name, tmp_path):
    """ta_hal.h's timers, ADC and pin reads on each board: `!pump` drives a pin high and arms a slot
    that drives it low again, run by ta_hal_poll from the console's wait, on the board's clock."""
    board, art = build(name, [ECHO], tmp_path)
    with open_console(board, art) as con:
        con.write_line("hello")
        con.read_until("echo: hello\n", timeout=20)
        con.write_line("!adc 0")   # the simulated ADC (boards/sim/sim_adc.h): every board here has it
        assert con.read_line() == "adc 0: 620 500"
        con.write_line("!adc 4")
        assert con.read_line() == "adc 4: -1 -1"
        con.write_line(f"!pin {PUMP_PIN}")
        assert re.fullmatch(rf"pin {PUMP_PIN}: 0 at \d+", con.read_line())
        con.write_line(f"!pump {PUMP_PIN} {PUMP_MS}")
        on_at = int(re.fullmatch(rf"pump {PUMP_PIN}: on at (\d+)", con.read_line()).group(1))
        readings = []   # (level, millis) while it runs
        deadline = time.monotonic() + PUMP_WAIT_S
        while time.monotonic() < deadline:
            con.write_line(f"!pin {PUMP_PIN}")
            level, at = map(int, re.fullmatch(rf"pin {PUMP_PIN}: (\d) at (\d+)", con.read_line()).groups())
            readings.append((level, at))
            if level == 0:
                break
        con.write_line("!pumped")
        off = re.fullmatch(r"pumped: off at (\d+)", con.read_line())
        assert off, f"the pump was still on after {PUMP_WAIT_S:g} s: {readings[-3:]}"
        off_at = int(off.group(1))
        assert off_at >= on_at + PUMP_MS
        # on until the callback ran, off from then on (a reading and the callback can share a ms)
        assert all(at <= off_at if level else at >= off_at for level, at in readings), (on_at, off_at, readings)
        if board.run.counter == "instructions":   # a clock that follows the work done: exact to a ms
            assert off_at <= on_at + PUMP_MS + 1, (on_at, off_at)


@pytest.mark.parametrize("name", RUNNABLE)
def test_exit_code_gets_out_of_the_board(name, tmp_path):
    board, art = build(name, [ECHO], tmp_path)
    with open_console(board, art) as con:
        con.write_line("!exit 7")
        con.read_until("bye\n")
        assert con.wait_exit() == 7


TRAP_PROGRAM = """
#include "ta_hal.h"
int main(void)
{
    ta_hal_init();
    while (ta_hal_getc() != '\\n') {
    }
    ta_hal_write("trapping\\n", 9);
    __builtin_trap();
}
"""


@pytest.mark.parametrize("name", [n for n in RUNNABLE if n != "host"])
def test_a_crash_is_exit_code_99_not_a_hang(name, tmp_path):
    (tmp_path / "trap.c").write_text(TRAP_PROGRAM)
    board, art = build(name, [tmp_path / "trap.c"], tmp_path / "out")
    with open_console(board, art) as con:
        con.write_line("go")
        assert con.read_line() == "trapping"   # the fault handler lets the last output out first
        assert con.wait_exit() == 99


@pytest.mark.parametrize("name", PROXIES)
def test_real_boards_compile_with_their_proxy_compiler(name, tmp_path):
    board, art = build(name, [ECHO], tmp_path)
    assert art.elf is None and art.objects and art.size.text > 0


COUNT_PROGRAM = """
#include "ta_hal.h"

/* n iterations of two instructions: decrement, branch back while not zero */
static void spin(uint32_t n)
{
#if defined(__arm__)
    __asm__ volatile("1: subs %0, %0, #1\\n bne 1b" : "+r"(n) : : "cc");
#else /* RISC-V and Xtensa spell it the same way */
    __asm__ volatile("1: addi %0, %0, -1\\n bnez %0, 1b" : "+r"(n));
#endif
}

int main(void)
{
    ta_hal_init();
    while (ta_hal_getc() != '\\n') {
    }
    for (uint32_t n = 1000000u; n <= 2000000u; n += 1000000u) {
        uint32_t t0 = ta_hal_cycles();
        spin(n);
        uint32_t d = ta_hal_cycles() - t0;
        char buf[12];
        int i = 11;
        buf[i] = '\\n';
        do {
            buf[--i] = (char)('0' + d % 10u);
            d /= 10u;
        } while (d != 0u);
        ta_hal_write(buf + i, (size_t)(12 - i));
    }
    ta_hal_exit(0);
    return 0;
}
"""


@pytest.mark.parametrize("name", [n for n in RUNNABLE if load_board(n).run.counter == "instructions"])
def test_cycle_counter_counts_instructions_as_the_board_file_says(name, tmp_path):
    """Loops of 2 and 4 million instructions, timed with ta_hal_cycles under the board's own run
    command: one unit is counter_scale instructions ([run] in boards/<name>.toml)."""
    (tmp_path / "count.c").write_text(COUNT_PROGRAM)
    board, art = build(name, [tmp_path / "count.c"], tmp_path / "out")
    with open_console(board, art) as con:
        con.write_line("go")
        counts = [int(con.read_line(timeout=30)) * board.run.counter_scale for _ in range(2)]
        assert con.wait_exit() == 0
    for count, instructions in zip(counts, (2_000_000, 4_000_000)):
        assert abs(count - instructions) <= instructions / 1000, (counts, board.run.counter_scale)
    assert abs(counts[1] - counts[0] - 2_000_000) <= 2_000  # the fixed overhead cancels


# ---- the lx106's integer helpers ----

def _s(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


def _tdiv(a: int, b: int) -> int:
    """C division: the quotient rounds toward zero."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _check_divmul_line(line: str) -> None:
    kind, *vals = line.split()
    v = [int(x, 16) for x in vals]
    bits = {"w": 32, "d": 64, "m": 32}[kind]
    mask = (1 << bits) - 1
    if kind == "m":
        x, y, up, sp = v
        assert up == x * y, line
        assert sp == (_s(x, 32) * _s(y, 32)) & MASK64, line
        return
    a, b, q, r, sq, sr = v[:6]
    assert (q, r) == (a // b, a % b), line
    sa, sb = _s(a, bits), _s(b, bits)
    if not (sa == -(1 << (bits - 1)) and sb == -1):   # C leaves MIN / -1 undefined: not tested
        assert sq == _tdiv(sa, sb) & mask, line
        assert sr == (sa - _tdiv(sa, sb) * sb) & mask, line
    if kind == "d":
        assert v[6] == (a * b) & MASK64, line


def test_lx106_division_and_multiply_match_python(tmp_path):
    board, art = build("lx106-sim", [LX106_DIR / "test_divmul_main.c"], tmp_path)
    with open_console(board, art) as con:
        con.write_line("go")
        lines = con.read_until("done\n", timeout=30).splitlines()[:-1]
        assert con.wait_exit() == 0
    assert len(lines) > 1500 and {ln[0] for ln in lines} == {"w", "d", "m"}
    for line in lines:
        _check_divmul_line(line)


def test_lx106_helpers_on_many_values_on_the_host(tmp_path):
    """The same C, built for the host, called directly on 20k random operands of every magnitude,
    including the cases C leaves undefined, where the helpers promise RISC-V-like answers."""
    if shutil.which("cc") is None:
        pytest.fail("no host C compiler" + " (setup.sh installs it)")
    lib = tmp_path / "libdivmul.so"
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(lib), str(LX106_DIR / "lx106_libgcc.c")],
                   check=True)
    so = ctypes.CDLL(str(lib))
    u32, s32, u64, s64 = ctypes.c_uint32, ctypes.c_int32, ctypes.c_uint64, ctypes.c_int64
    sig = {"__udivsi3": (u32, u32), "__umodsi3": (u32, u32), "__divsi3": (s32, s32),
           "__modsi3": (s32, s32), "__udivdi3": (u64, u64), "__umoddi3": (u64, u64),
           "__divdi3": (s64, s64), "__moddi3": (s64, s64), "__muldi3": (u64, u64),
           "__umulsidi3": (u64, u32)}
    for fn, (ret, arg) in sig.items():
        getattr(so, fn).restype = ret
        getattr(so, fn).argtypes = [arg, arg]
    rng = random.Random(1)

    def operand(bits: int) -> int:
        return rng.getrandbits(bits) >> rng.randrange(bits)

    for _ in range(20000):
        a, b = operand(32), operand(32) or 1
        assert so.__udivsi3(a, b) == a // b and so.__umodsi3(a, b) == a % b
        sa, sb = _s(a, 32), _s(b, 32)
        assert so.__divsi3(sa, sb) == _s(_tdiv(sa, sb) & MASK32, 32)
        assert so.__modsi3(sa, sb) == _s((sa - _tdiv(sa, sb) * sb) & MASK32, 32)
        assert so.__umulsidi3(a, b) == a * b
        A, B = operand(64), operand(64) or 1
        assert so.__udivdi3(A, B) == A // B and so.__umoddi3(A, B) == A % B
        sA, sB = _s(A, 64), _s(B, 64)
        assert so.__divdi3(sA, sB) == _s(_tdiv(sA, sB) & MASK64, 64)
        assert so.__moddi3(sA, sB) == _s((sA - _tdiv(sA, sB) * sB) & MASK64, 64)
        assert so.__muldi3(A, B) == (A * B) & MASK64
    # the cases C leaves undefined: what lx106_libgcc.c promises
    assert so.__udivsi3(5, 0) == MASK32 and so.__umodsi3(5, 0) == 5
    assert so.__udivdi3(1 << 40, 0) == MASK64 and so.__umoddi3(1 << 40, 0) == 1 << 40
    assert so.__divsi3(-(1 << 31), -1) == -(1 << 31) and so.__modsi3(-(1 << 31), -1) == 0
    assert so.__divdi3(-(1 << 63), -1) == -(1 << 63)


# ---- stack depth from the call graph ----

KNOWN_STACK_PROGRAM = """
#define KEEP __attribute__((noipa))
KEEP static int leaf(volatile char *p) { volatile char buf[200]; buf[0] = p[0]; return buf[0]; }
KEEP static int mid(int x) { volatile char buf[100]; buf[0] = (char)x; return leaf(buf) + 1; }
KEEP static int side(int x) { volatile char buf[8]; buf[0] = (char)x; return buf[0] * 3; }
int main(void) { return mid(1) + side(2); }
"""

FLAGGED_STACK_PROGRAM = """
#include <string.h>
#define KEEP __attribute__((noipa))
KEEP static int rec(int n) { volatile char b[16]; b[0] = (char)n; return n > 0 ? rec(n - 1) + b[0] : 0; }
KEEP static int dyn(int n) { volatile char *p = __builtin_alloca(n); p[0] = 1; return p[0]; }
KEEP static int twice(int x) { return 2 * x; }
int (*volatile fp)(int) = twice;
volatile const char *text = "abc";
int main(void) { return rec(3) + dyn(8) + fp(1) + (int)strlen((const char *)text); }
"""


def _su_frames(out_dir: Path) -> dict[str, int]:
    """function -> frame bytes, straight from GCC's .su files (file:line:col:function bytes kind)."""
    frames = {}
    for su in out_dir.rglob("*.su"):
        for line in su.read_text().splitlines():
            where, size, _ = line.split("\t")
            frames[where.rsplit(":", 1)[1]] = int(size)
    return frames


def test_max_stack_follows_the_deepest_path(tmp_path):
    (tmp_path / "known.c").write_text(KNOWN_STACK_PROGRAM)
    _, art = build("mps2-an386", [tmp_path / "known.c"], tmp_path / "out")
    usage = max_stack_bytes(art.out_dir)
    frames = _su_frames(art.out_dir)
    assert usage.path == ("main", "mid", "leaf")
    assert usage.bytes == frames["main"] + frames["mid"] + frames["leaf"] >= 300
    assert usage.complete, usage.summary()


def test_max_stack_reports_what_it_cannot_bound(tmp_path):
    (tmp_path / "flagged.c").write_text(FLAGGED_STACK_PROGRAM)
    _, art = build("mps2-an386", [tmp_path / "flagged.c"], tmp_path / "out")
    usage = max_stack_bytes(art.out_dir)
    assert not usage.complete
    assert usage.recursive == ("rec",) and usage.dynamic == ("dyn",)
    assert usage.indirect == ("main",) and "strlen" in usage.unknown
    summary = usage.summary()
    assert "at least" in summary and "strlen" in summary and "\n" not in summary


INTERRUPTED_PROGRAM = """
#include "ta_devices.h"
#include "ta_hal.h"
#define KEEP __attribute__((noipa))
KEEP static int deep(volatile char *p) { volatile char buf[300]; buf[0] = p[0]; return buf[0]; }
KEEP static void big_callback(void *arg) { volatile char buf[500]; buf[0] = (char)(arg != 0); ta_hal_led_set(buf[0]); }
int main(void)
{
    volatile char c = 1;
    ta_hal_init();
    ta_hal_timer_start(2, 5, big_callback, 0);   /* ta_hal_poll calls it from ta_hal_getc's wait */
    int r = deep(&c);
    while (ta_hal_getc() >= 0) {
    }
    return r;
}
"""


def test_the_stack_plan_adds_the_reset_frame_and_an_interrupt(tmp_path):
    """mps2-an386's plan: the deepest path from the reset handler (its frame under main's), plus the
    36 B the M4 pushes for SysTick and the handler's own path; the timer callback a program arms is
    followed through ta_hal_poll's pointer."""
    from tinyagent.targets.build import timer_callbacks

    (tmp_path / "irq.c").write_text(INTERRUPTED_PROGRAM)
    board, art = build("mps2-an386", [tmp_path / "irq.c"], tmp_path / "out")
    callbacks = timer_callbacks([tmp_path / "irq.c", *board.hal_sources])
    assert callbacks == ("big_callback",)
    targets = {"ta_hal_poll": callbacks}
    plan = stack_plan(art.out_dir, board, targets)
    reset = max_stack_bytes(art.out_dir, "ta_cm_reset_handler", targets)
    main = max_stack_bytes(art.out_dir, "main", targets)
    systick = max_stack_bytes(art.out_dir, "ta_cm_systick_handler", targets)
    frames = _su_frames(art.out_dir)
    assert reset.bytes == frames["ta_cm_reset_handler"] + main.bytes > main.bytes
    assert plan.bytes == reset.bytes + 36 + systick.bytes and plan.interrupt_frame == 36
    assert plan.path[:2] == ("ta_cm_reset_handler", "main") and plan.path[-1] == "big_callback"
    assert plan.interrupt_path == ("ta_cm_systick_handler",)
    assert "ta_hal_poll" not in plan.indirect
    assert "+ 36 for an interrupt (36 pushed by the core" in plan.summary()
    # without the callbacks the call through the pointer cannot be followed, and says so
    assert "ta_hal_poll" in max_stack_bytes(art.out_dir, "main").indirect
    # a board file that names a handler the program does not define: one line naming the file
    import dataclasses

    with pytest.raises(TinyAgentError) as e:
        stack_plan(art.out_dir, dataclasses.replace(board, interrupt_handlers=("ta_cm_pendsv_handler",)))
    assert "boards/mps2-an386.toml: interrupt_handlers names ta_cm_pendsv_handler" in str(e.value)


def test_timer_callbacks_the_analysis_cannot_name(tmp_path):
    from tinyagent.targets.build import timer_callbacks

    src = tmp_path / "t.c"
    src.write_text("void f(void) { ta_hal_timer_start(0, 1, (ta_hal_timer_fn)cb, 0); ta_hal_timer_start(1, 2, &cb2, 0);"
                   " ta_hal_timer_start(3, 1, 0, 0); /* ta_hal_timer_start(9, 9, commented, 0); */ }\n")
    assert timer_callbacks([src]) == ("cb", "cb2")
    src.write_text("void f(int k) { ta_hal_timer_start(0, 1, k ? a : b, 0); }\n")
    assert timer_callbacks([src]) is None   # the plan then keeps ta_hal_poll's indirect call flagged


def test_max_stack_without_call_graph_is_an_error(tmp_path):
    with pytest.raises(TinyAgentError) as e:
        max_stack_bytes(tmp_path)
    assert "-fcallgraph-info" in str(e.value)


# ---- build failures ----

def test_too_big_for_the_microbit_does_not_fit(tmp_path):
    (tmp_path / "big.c").write_text(
        "volatile unsigned char arena[32768];\nint main(void) { arena[0] = 1; return arena[0]; }\n")
    with pytest.raises(TinyAgentError) as e:
        build("microbit", [tmp_path / "big.c"], tmp_path / "out")
    assert e.value.code == EXIT_DOES_NOT_FIT and "RAM" in str(e.value)


def test_missing_compiler_names_the_package(tmp_path):
    board = load_board("mps2-an386")
    broken = dataclasses.replace(board, toolchain=dataclasses.replace(board.toolchain, prefix="nope-"))
    with pytest.raises(TinyAgentError) as e:
        compile_and_link(broken, [ECHO], [], tmp_path)
    assert e.value.code == EXIT_TOOL_MISSING
    assert "nope-gcc" in str(e.value) and "apt-get install gcc-arm-none-eabi" in str(e.value)


def test_compiler_error_shows_its_first_error_line(tmp_path):
    (tmp_path / "bad.c").write_text("int main(void)\n{\n    return undefined_thing;\n}\n")
    with pytest.raises(TinyAgentError) as e:
        build("riscv32-virt", [tmp_path / "bad.c"], tmp_path / "out")
    msg = str(e.value)
    assert e.value.code == EXIT_BAD_INPUT and "\n" not in msg
    assert "bad.c" in msg and "undefined_thing" in msg and "error" in msg
    assert "bad.c:3" in e.value.details
