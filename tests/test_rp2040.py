"""The rp2040js board: a bare-metal RP2040 image run by the rp2040js emulator (node,
firmware/boards/rp2040js/run.mjs), its console on a pty like the QEMU boards'.

The board programs of tests/test_boards.py (echo, timers and pins, exit codes, a crash) run on it; the
shipped model builds, fits with its weights in flash, and its console answers !run and !logits
exactly like the integer reference; the Cortex-M0+ kernels (firmware/ta_kernels_m0.c) are bit-exact
under the emulator on models whose dims take every path (odd row counts, column tails, an odd
number of four-column groups); run.mjs passes bytes unchanged over pipes and ends when stdin closes.
"""
from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

import test_boards
from tinyagent.agent.spec import DEFAULT_SPEC_PATH, load_spec
from tinyagent.cli import DEFAULT_RUN
from tinyagent.codegen.generate import generate_sources
from tinyagent.device.protocol import ask, sync
from tinyagent.device.transport import open_console
from tinyagent.integer.config import ModelConfig
from tinyagent.integer.intmodel import load_int_model
from tinyagent.integer.reference import forward_seq
from tinyagent.targets.boards import FIRMWARE_DIR, load_board
from tinyagent.targets.build import build
from tinyagent.targets.toolchain import compile_and_link

from c_harness import expected_steps
from conftest import make_int_model

BOARD = "rp2040js"
RUNNER = FIRMWARE_DIR / "boards" / BOARD / "run.mjs"
PIPE_TIMEOUT_S = 300   # a whole tiny-model context under the emulator, on a loaded machine
STEP_TIMEOUT_S = 120   # a dozen steps of the shipped model (about 1.6 M emulated cycles each)


def _needs_emulator() -> None:
    if shutil.which("node") is None or not (RUNNER.parent / "node_modules" / "rp2040js").is_dir():
        pytest.fail("node or rp2040js is not installed here (setup.sh installs both)")


def _run_piped(elf: Path, data: bytes) -> tuple[bytes, int]:
    """run.mjs over pipes: `data` on stdin, then stdin closed; (stdout, exit code)."""
    _needs_emulator()
    done = subprocess.run(["node", str(RUNNER), str(elf)], input=data, capture_output=True,
                          timeout=PIPE_TIMEOUT_S)
    return done.stdout, done.returncode


# ---- the board programs of test_boards.py --------------------------------------------------------

def test_echo_program_talks_through_a_pty(tmp_path):
    _needs_emulator()
    test_boards.test_echo_program_talks_through_a_pty(BOARD, tmp_path)


def test_a_timer_switches_a_pump_off_in_the_boards_own_time(tmp_path):
    _needs_emulator()
    test_boards.test_a_timer_switches_a_pump_off_in_the_boards_own_time(BOARD, tmp_path)


def test_exit_code_gets_out_of_the_board(tmp_path):
    _needs_emulator()
    test_boards.test_exit_code_gets_out_of_the_board(BOARD, tmp_path)


def test_a_crash_is_exit_code_99_not_a_hang(tmp_path):
    _needs_emulator()
    test_boards.test_a_crash_is_exit_code_99_not_a_hang(BOARD, tmp_path)


def test_the_board_file():
    b = load_board(BOARD)
    assert (b.arch, b.cpu, b.kernels, b.run.kind, b.run.counter) == \
        ("armv6-m", "cortex-m0plus", "m0", "stdio", "cycles")
    assert b.flash_bytes == 2 << 20 and b.ram_bytes == 264 << 10
    assert b.run.command[1] == str(RUNNER)   # "{firmware}" is resolved when the file is read


# ---- the shipped model ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped_build(tmp_path_factory):
    return build(BOARD, tmp_path_factory.mktemp("rp2040js"), DEFAULT_RUN)


def test_the_shipped_model_fits_with_its_weights_in_flash(shipped_build):
    r = shipped_build
    assert r.plan.fits() and r.artifact.exists()
    assert (r.out / "src" / "ta_kernels_m0.c").is_file() and not (r.out / "src" / "ta_kernels.c").exists()
    weights = r.plan.flash["weights and quant tables"]
    assert weights > 200_000 and r.plan.ram_total < 264 << 10
    # the linker put the model's arrays in flash: RAM holds the arena and buffers, not the weights
    assert r.plan.linker["bss"] + r.plan.linker["data"] < r.plan.ram_total
    assert r.plan.linker["data"] < 4096


def test_the_stack_plan_counts_the_assembly_and_the_libraries(shipped_build):
    """-fstack-usage sees no frame for the kernels' assembly, libgcc or picolibc; their disassembly gives
    it (every PUSH and SUB SP added up), so the plan is a bound with no function left out."""
    from tinyagent.targets.toolchain import arm_frames

    frames = arm_frames(shipped_build.artifact, "arm-none-eabi-objdump")
    assert frames["ta_m0_dot3"] == (36, ()) and frames["ta_m0_dot2"] == (32, ())  # 9 and 8 registers pushed
    assert frames["__aeabi_idiv"] == frames["__divsi3"]  # one function, two names
    assert frames["memset"][0] == 0
    note = shipped_build.plan.stack_note
    assert "at least" not in note and "> ta_m0_dot" in note, note


def test_the_profile_says_where_the_cycles_go(shipped_build):
    """bench.rp2040_profile: the cycles of whole turns by function; the three-row matvec leads."""
    from tinyagent.compare.bench import rp2040_profile

    prof = rp2040_profile(shipped_build.artifact, ["turn on the light", "what's the temperature?"], top=5)
    names = [f["name"] for f in prof["functions"]]
    assert prof["requests"] == 2 and prof["cycles"] > 1_000_000 and names[0] == "ta_m0_dot3", prof
    assert 0.3 < prof["functions"][0]["share"] < 0.9 and len(names) == 5


def test_the_shipped_model_answers_like_the_reference(shipped_build):
    _needs_emulator()
    im = load_int_model(Path(DEFAULT_RUN) / "int8")
    tokens = [random.Random(7).randrange(im.cfg.vocab_size) for _ in range(12)]
    logits = forward_seq(im, tokens)
    board = load_board(BOARD)
    with open_console(board, shipped_build.artifact) as con:
        sync(con)
        steps = ask(con, "!run " + " ".join(map(str, tokens)), timeout=STEP_TIMEOUT_S).splitlines()
        assert [s.removeprefix("> ") for s in steps if s.strip()] == expected_steps(im, tokens)
        last = ask(con, "!logits " + " ".join(map(str, tokens[:3])), timeout=STEP_TIMEOUT_S).strip()
        assert last == "logits " + " ".join(str(int(v)) for v in logits[2])
        assert ask(con, "!ping rp2040").strip() == "pong rp2040"
        assert con.close() == 0   # the closed pty reads as a break on the UART: the firmware exits itself


# ---- the Cortex-M0+ kernels under the emulator -------------------------------------------------------

@pytest.mark.parametrize("cfg", [
    # odd dims: an odd number of four-column groups (36), column tails (10, 50), odd row counts
    ModelConfig(vocab_size=320, ctx=40, dim=36, n_layers=2, n_heads=3, head_dim=10, ffn_dim=50),
    # dims in whole groups of eight columns, grouped-query attention
    ModelConfig(vocab_size=320, ctx=33, dim=32, n_layers=1, n_heads=4, head_dim=8, ffn_dim=64, n_kv_heads=2),
], ids=["odd-dims", "even-dims"])
def test_m0_kernels_are_bit_exact_under_the_emulator(tmp_path, bpe, cfg):
    _, im = make_int_model(cfg, seed=5)
    board = load_board(BOARD)
    spec = load_spec(DEFAULT_SPEC_PATH)
    art = compile_and_link(board, generate_sources(im, bpe, spec, board.name, tmp_path, kernels="m0"),
                           [tmp_path], tmp_path)
    tokens = [random.Random(3).randrange(cfg.vocab_size) for _ in range(cfg.ctx)]
    out, code = _run_piped(art.elf, f"!run {' '.join(map(str, tokens))}\n".encode())
    steps = [ln.removeprefix("> ") for ln in out.decode(errors="replace").splitlines() if "step " in ln]
    assert steps == expected_steps(im, tokens)
    assert code == 0   # stdin closed: the rest was fed, then the break ended the program


def test_the_runner_is_binary_safe_and_passes_the_exit_code(tmp_path):
    board, art = test_boards.build(BOARD, [test_boards.ECHO], tmp_path)
    text = "é ü ÿ \x01\x7e"
    out, code = _run_piped(art.elf, f"{text}\n!exit 5\n".encode())
    assert f"echo: {text}\n".encode() in out and out.endswith(b"bye\n")
    assert code == 5


def test_the_runner_refuses_a_program_it_cannot_load(tmp_path):
    _needs_emulator()
    missing = subprocess.run(["node", str(RUNNER), str(tmp_path / "none.elf")], capture_output=True, text=True)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
