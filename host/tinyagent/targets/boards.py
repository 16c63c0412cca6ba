"""Boards are data: one TOML file each in boards/, loaded and validated into a frozen `Board`.

A board file says which compiler and flags build for it, how much flash and RAM the firmware may use,
what its console is, how to run it here (a host process, a QEMU command line, or not at all) and which
HAL sources under firmware/boards/ it adds. docs/boards.md describes each board and how to add one.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import bad_input

REPO_ROOT = Path(__file__).resolve().parents[3]
BOARDS_DIR = REPO_ROOT / "boards"
FIRMWARE_DIR = REPO_ROOT / "firmware"

CONSOLE_KINDS = ("pty", "uart", "simcall", "usb-cdc")
# How a board runs here: a process that opens its own pty and names it (host), QEMU with the console on
# a pty, a program whose stdin and stdout are the console (an emulator such as rp2040js's run.mjs; the
# console gives it a pty), or not at all.
RUN_KINDS = ("process", "qemu", "stdio", "none")
# What ta_hal_cycles() counts when the board runs here ([run] counter): executed instructions (QEMU with
# -icount), emulated CPU cycles (an emulator that charges each instruction its cycles: rp2040js), ticks
# of an emulated clock that follows the host's wall clock (a time, not work done), nanoseconds of the
# process's CPU time (the host board), or nothing (it returns 0).
COUNTERS = ("instructions", "cycles", "clock", "ns", "none")
LIBCS = ("system", "picolibc", "newlib-nano", "none")


@dataclass(frozen=True)
class Toolchain:
    prefix: str                 # e.g. "arm-none-eabi-"; "" for the host's own compiler
    cc: str                     # compiler name after the prefix: "gcc", or "cc" on the host
    cflags: tuple[str, ...]     # everything but the CPU flags, defines and include dirs
    ldflags: tuple[str, ...]    # link flags; the linker script is added from Board.linker_script
    libc: str                   # one of LIBCS
    packages: tuple[str, ...]   # apt packages that provide the compiler and libc
    proxy: bool = False         # a stand-in compiler: compile objects only, size figures are estimates

    @property
    def compiler(self) -> str:
        return self.prefix + self.cc

    @property
    def size_tool(self) -> str:
        return self.prefix + "size"


@dataclass(frozen=True)
class Runner:
    kind: str                   # one of RUN_KINDS
    command: tuple[str, ...]    # argv; "{elf}" is replaced by the built program ("{firmware}", the
                                # firmware/ folder, when the board file is read)
    packages: tuple[str, ...]   # apt packages that provide the emulator
    counter: str = "none"       # what ta_hal_cycles() counts under `command`: one of COUNTERS
    counter_scale: int = 1      # how many of those one ta_hal_cycles() unit is (e.g. 40 instructions)
    reply_timeout_s: int = 30   # the longest wait for one reply (a whole-context !run on a slow emulator)


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    arch: str                   # instruction set, e.g. "armv7e-m", "rv32imac", "xtensa-lx106", "host"
    cpu: str
    cpu_flags: tuple[str, ...]  # passed to both compile and link
    flash_bytes: int            # code + constants budget
    ram_bytes: int              # data + bss + stack budget
    stack_bytes: int            # of ram_bytes, reserved for the stack (the link checks it is left)
    psram_bytes: int            # optional external RAM, not part of ram_bytes
    console: str                # one of CONSOLE_KINDS
    runs_here: bool             # can this machine run it (host process or emulator)?
    linker_script: Path | None
    hal_sources: tuple[Path, ...]
    toolchain: Toolchain
    run: Runner
    sdk: str                    # "" for boards built here; "esp-idf" or "pico-sdk" for real boards
    sdk_target: str
    source: Path                # the TOML file this came from
    kernels: str = "portable"   # matvec kernel file: "portable" (any C99 compiler), "cm4" (Arm DSP
                                # extension) or "m0" (Armv6-M: Cortex-M0/M0+)
    # The stack plan (build.py) is the deepest path from `stack_entry`, the function the startup code
    # enters with the stack empty (its own frame counts), plus, for the deepest of the
    # `interrupt_handlers` (they do not preempt one another), the `interrupt_frame_bytes` the core
    # pushes when it takes an interrupt and that handler's own deepest path.
    stack_entry: str = "main"
    interrupt_frame_bytes: int = 0
    interrupt_handlers: tuple[str, ...] = ()


# field -> (type, required). Optional fields get the default in _DEFAULTS.
_BOARD_FIELDS: dict[str, tuple[type, bool]] = {
    "name": (str, True), "description": (str, True), "arch": (str, True), "cpu": (str, True),
    "cpu_flags": (list, True), "flash_bytes": (int, True), "ram_bytes": (int, True),
    "stack_bytes": (int, True), "psram_bytes": (int, False), "console": (str, True),
    "runs_here": (bool, True), "linker_script": (str, True), "hal_sources": (list, True),
    "sdk": (str, False), "sdk_target": (str, False), "toolchain": (dict, True), "run": (dict, True),
    "kernels": (str, False), "stack_entry": (str, False), "interrupt_frame_bytes": (int, False),
    "interrupt_handlers": (list, False),
}
_TOOLCHAIN_FIELDS: dict[str, tuple[type, bool]] = {
    "prefix": (str, True), "cc": (str, True), "cflags": (list, True), "ldflags": (list, True),
    "libc": (str, True), "packages": (list, True), "proxy": (bool, False),
}
_RUN_FIELDS: dict[str, tuple[type, bool]] = {
    "kind": (str, True), "command": (list, False), "packages": (list, False),
    "counter": (str, False), "counter_scale": (int, False), "reply_timeout_s": (int, False),
}
_DEFAULTS: dict[str, Any] = {
    "psram_bytes": 0, "sdk": "", "sdk_target": "", "proxy": False, "command": [], "packages": [],
    "kernels": "portable", "counter": "none", "counter_scale": 1, "reply_timeout_s": 30, "stack_entry": "main",
    "interrupt_frame_bytes": 0, "interrupt_handlers": [],
}
# What a Cortex-M core pushes on taking an interrupt while the floating-point context is active
# (CONTROL.FPCA): 26 words, R0-R3, R12, LR, PC, xPSR, S0-S15, FPSCR and one reserved, of which lazy
# stacking reserves the whole even before it saves the registers; and the 4 B the core inserts to
# align the frame to 8 bytes (CCR.STKALIGN). Code built with a hardware float ABI may use the FPU.
CM_FPU_FRAME_BYTES = 104 + 4
_FPU_ABIS = ("-mfloat-abi=hard", "-mfloat-abi=softfp")
_C_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _check_table(table: dict, fields: dict[str, tuple[type, bool]], where: str) -> dict:
    """Unknown, missing and mistyped fields each give one line naming the field and what is allowed."""
    for key in table:
        if key not in fields:
            raise bad_input(f"{where}: unknown field '{key}' (allowed: {', '.join(fields)})")
    out = {}
    for key, (kind, required) in fields.items():
        if key not in table:
            if required:
                raise bad_input(f"{where}: missing field '{key}'")
            out[key] = _DEFAULTS[key]
            continue
        value = table[key]
        # bool is a subclass of int: do not accept true for a byte count
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise bad_input(f"{where}: field '{key}' must be a {kind.__name__}, got {value!r}")
        if kind is list and not all(isinstance(v, str) for v in value):
            raise bad_input(f"{where}: field '{key}' must be a list of strings")
        out[key] = value
    return out


def _one_of(value: str, allowed: tuple[str, ...], field: str, where: str) -> str:
    if value not in allowed:
        raise bad_input(f"{where}: {field} '{value}' is not one of {', '.join(allowed)}")
    return value


def _board_from_file(path: Path) -> Board:
    where = f"boards/{path.name}"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise bad_input(f"{where}: not valid TOML ({e})") from None
    b = _check_table(raw, _BOARD_FIELDS, where)
    t = _check_table(b["toolchain"], _TOOLCHAIN_FIELDS, f"{where} [toolchain]")
    r = _check_table(b["run"], _RUN_FIELDS, f"{where} [run]")
    if b["name"] != path.stem:
        raise bad_input(f"{where}: name '{b['name']}' must match the file name '{path.stem}'")
    for key in ("flash_bytes", "ram_bytes", "stack_bytes", "psram_bytes"):
        if b[key] < 0:
            raise bad_input(f"{where}: {key} must not be negative, got {b[key]}")
    if b["stack_bytes"] >= b["ram_bytes"]:
        raise bad_input(f"{where}: stack_bytes {b['stack_bytes']} must be less than "
                        f"ram_bytes {b['ram_bytes']}")
    _one_of(b["console"], CONSOLE_KINDS, "console", where)
    _one_of(t["libc"], LIBCS, "libc", f"{where} [toolchain]")
    _one_of(r["kind"], RUN_KINDS, "kind", f"{where} [run]")
    if r["kind"] != "none" and "{elf}" not in r["command"]:
        raise bad_input(f"{where} [run]: command must contain '{{elf}}' where the program goes")
    if r["kind"] == "qemu" and "pty" not in " ".join(r["command"]):
        raise bad_input(f"{where} [run]: a qemu command must put the console on a pty (-serial pty)")
    _one_of(r["counter"], COUNTERS, "counter", f"{where} [run]")
    if not 1 <= r["reply_timeout_s"] <= 3600:
        raise bad_input(f"{where} [run]: reply_timeout_s {r['reply_timeout_s']} is out of range (allowed: 1..3600 seconds)")
    if r["counter_scale"] < 1:
        raise bad_input(f"{where} [run]: counter_scale must be at least 1 (how many {r['counter']} one "
                        f"ta_hal_cycles unit is), got {r['counter_scale']}")
    if r["kind"] == "qemu" and r["counter"] == "instructions" and "-icount" not in r["command"]:
        raise bad_input(f"{where} [run]: counter 'instructions' needs -icount in the qemu command "
                        f"(without it the board's clocks follow the host's)")
    if b["runs_here"] and r["kind"] == "none":
        raise bad_input(f"{where}: runs_here is true but [run] kind is 'none'")
    _check_stack_fields(b, where)
    hal = tuple(REPO_ROOT / s for s in b["hal_sources"])
    for src in hal:
        if not src.is_file():
            raise bad_input(f"{where}: HAL source {src.relative_to(REPO_ROOT)} does not exist")
    script = REPO_ROOT / b["linker_script"] if b["linker_script"] else None
    if script is not None and not script.is_file():
        raise bad_input(f"{where}: linker script {b['linker_script']} does not exist")
    return Board(
        name=b["name"], description=b["description"], arch=b["arch"], cpu=b["cpu"],
        cpu_flags=tuple(b["cpu_flags"]), flash_bytes=b["flash_bytes"], ram_bytes=b["ram_bytes"],
        stack_bytes=b["stack_bytes"], psram_bytes=b["psram_bytes"], console=b["console"],
        runs_here=b["runs_here"], linker_script=script, hal_sources=hal,
        toolchain=Toolchain(
            prefix=t["prefix"], cc=t["cc"], cflags=tuple(t["cflags"]), ldflags=tuple(t["ldflags"]),
            libc=t["libc"], packages=tuple(t["packages"]), proxy=t["proxy"]),
        run=Runner(kind=r["kind"], command=tuple(a.replace("{firmware}", str(FIRMWARE_DIR)) for a in r["command"]),
                packages=tuple(r["packages"]),
                counter=r["counter"], counter_scale=r["counter_scale"], reply_timeout_s=r["reply_timeout_s"]),
        sdk=b["sdk"], sdk_target=b["sdk_target"], source=path, kernels=b["kernels"],
        stack_entry=b["stack_entry"], interrupt_frame_bytes=b["interrupt_frame_bytes"],
        interrupt_handlers=tuple(b["interrupt_handlers"]),
    )


def _check_stack_fields(b: dict, where: str) -> None:
    """The stack plan's fields: function names, a frame size that is there when handlers are, and one
    that covers the FPU's frame when the code may use the FPU (Armv7E-M with a hardware float ABI)."""
    for name in (b["stack_entry"], *b["interrupt_handlers"]):
        if not name or not set(name) <= _C_IDENT_CHARS:
            raise bad_input(f"{where}: {name!r} is not a function name (stack_entry, interrupt_handlers)")
    frame = b["interrupt_frame_bytes"]
    if frame < 0:
        raise bad_input(f"{where}: interrupt_frame_bytes must not be negative, got {frame}")
    if b["interrupt_handlers"] and frame == 0:
        raise bad_input(f"{where}: interrupt_handlers {', '.join(b['interrupt_handlers'])} need "
                        f"interrupt_frame_bytes, what the core pushes when it takes an interrupt")
    fpu = next((f for f in b["cpu_flags"] if f in _FPU_ABIS), None)
    if fpu and b["arch"].startswith("armv7e-m") and b["interrupt_handlers"] and frame < CM_FPU_FRAME_BYTES:
        raise bad_input(f"{where}: interrupt_frame_bytes {frame} is less than the {CM_FPU_FRAME_BYTES} B a "
                        f"Cortex-M with the FPU in use pushes on an interrupt (104 B of registers and 4 B of "
                        f"alignment), and {fpu} lets the code use the FPU")


def board_names(boards_dir: Path = BOARDS_DIR) -> list[str]:
    return sorted(p.stem for p in boards_dir.glob("*.toml"))


def load_board(name: str, boards_dir: Path = BOARDS_DIR) -> Board:
    """The board called `name` (boards/<name>.toml), validated."""
    path = boards_dir / f"{name}.toml"
    if "/" in name or "\\" in name or not path.is_file():
        raise bad_input(f"unknown board '{name}' (known boards: {', '.join(board_names(boards_dir))})")
    return _board_from_file(path)


def list_boards(boards_dir: Path = BOARDS_DIR) -> list[Board]:
    """Every board file, validated, sorted by name."""
    return [load_board(n, boards_dir) for n in board_names(boards_dir)]
