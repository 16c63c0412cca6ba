"""Compile and link firmware for a board, measure it, and find its deepest stack.

`compile_and_link` builds C/assembler sources plus the board's HAL with the board's compiler and
flags. Every C file is compiled with -fstack-usage and, where the compiler has it,
-fcallgraph-info=su, so `max_stack_bytes` can walk the real call graph (GCC's .ci files, VCG format)
from main and add up the frames on the deepest path. Nothing is estimated: functions whose frame
size is dynamic, callees without stack information (libc, assembler), recursion and calls through
pointers are listed, and the result says it is incomplete.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from ..errors import EXIT_BAD_INPUT, EXIT_DOES_NOT_FIT, EXIT_TOOL_MISSING, TinyAgentError
from ..fileio import make_dir, write_text
from .boards import FIRMWARE_DIR, Board

ERROR_LINES_SHOWN = 8   # compiler output lines kept in TinyAgentError.details
OBJ_SUBDIR = "obj"      # objects, .su and .ci files go to out_dir/obj
SIM_BOARD_MACRO = "TA_BOARD_SIM"  # defined for the boards built and run here (host, QEMU): a tools file's section
_CI_EXTERNAL = -1       # frame size of a node known only as a callee (no body in any .ci file)


@dataclass(frozen=True)
class SizeFigures:
    """Berkeley `size` figures of the linked program (or of the objects, for a proxy toolchain)."""
    text: int   # code and constants
    data: int   # initialised data: stored in flash and copied to RAM
    bss: int    # zeroed data

    @property
    def flash(self) -> int:
        return self.text + self.data

    @property
    def ram(self) -> int:
        return self.data + self.bss   # static RAM, without the stack


@dataclass(frozen=True)
class Artifact:
    board: str
    elf: Path | None            # the linked program (an executable for the host); None for a proxy
    map_file: Path | None
    objects: tuple[Path, ...]
    size: SizeFigures
    out_dir: Path


@dataclass(frozen=True)
class StackUsage:
    entry: str
    bytes: int                  # frames on the deepest path; a lower bound unless `complete`
    path: tuple[str, ...]       # that path, entry first
    unknown: tuple[str, ...]    # reachable callees with no stack information
    dynamic: tuple[str, ...]    # reachable functions whose frame size is not static
    recursive: tuple[str, ...]  # reachable functions on a call cycle (the cycle is counted once)
    indirect: tuple[str, ...]   # reachable functions that call through a pointer
    # stack_plan: an interrupt on top of the deepest path, the deepest of the board's handlers
    interrupt_frame: int = 0            # what the core pushes on taking it (0: no interrupt counted)
    interrupt_path: tuple[str, ...] = ()  # that handler's own deepest path
    interrupt_bytes: int = 0            # interrupt_frame + that path's frames (included in `bytes`)

    @property
    def complete(self) -> bool:
        return not (self.unknown or self.dynamic or self.recursive or self.indirect)

    def summary(self) -> str:
        via = f"via {' > '.join(self.path)}"
        if self.interrupt_frame:
            via = (f"= {self.bytes - self.interrupt_bytes} {via} + {self.interrupt_bytes} for an interrupt "
                   f"({self.interrupt_frame} pushed by the core + {self.interrupt_bytes - self.interrupt_frame} "
                   f"via {' > '.join(self.interrupt_path)})")
        line = f"stack from {self.entry}: {self.bytes} bytes {via}"
        gaps = [(self.unknown, "no stack info for"), (self.dynamic, "dynamic frames in"),
                (self.recursive, "recursion in"), (self.indirect, "indirect calls in")]
        notes = [f"{what} {', '.join(names)}" for names, what in gaps if names]
        return line + (f" (at least; {'; '.join(notes)})" if notes else "")


# ---- sanitizers (host board only) ----

SANITIZE_ENV = "TA_HOST_SANITIZE"   # set to 1: build the host board with ASan and UBSan
SANITIZE_CFLAGS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-g", "-O1")
SANITIZE_LDFLAGS = ("-fsanitize=address,undefined",)


def host_sanitize() -> bool:
    """True when TA_HOST_SANITIZE asks for sanitized host builds (any value but "", "0", "no")."""
    return os.environ.get(SANITIZE_ENV, "").strip().lower() not in ("", "0", "no", "false")


def with_sanitizers(board: Board) -> Board:
    """`board` with ASan/UBSan added to its compile and link flags, if TA_HOST_SANITIZE is set and
    it is the host board (a process on this machine); any other board is returned unchanged. The
    flags come after the board's own, so -O1 replaces its -O2."""
    if not host_sanitize() or board.run.kind != "process":
        return board
    tc = dataclasses.replace(board.toolchain, cflags=(*board.toolchain.cflags, *SANITIZE_CFLAGS),
                             ldflags=(*board.toolchain.ldflags, *SANITIZE_LDFLAGS))
    return dataclasses.replace(board, toolchain=tc)


# ---- compiler discovery ----

def _require_tool(board: Board, tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        packages = " ".join(board.toolchain.packages) or "the compiler"
        raise TinyAgentError(
            f"{tool} not found (needed for board {board.name}): install it with "
            f"`sudo apt-get install {packages}`", EXIT_TOOL_MISSING)
    return path


@functools.lru_cache(maxsize=None)
def _accepts_flag(compiler: str, flag: str) -> bool:
    # in a scratch directory: -fstack-usage and friends write files next to the object
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text("int f(void) { return 0; }\n")
        probe = subprocess.run([compiler, flag, "-c", str(src), "-o", str(Path(tmp) / "probe.o")],
                               capture_output=True, cwd=tmp)
    return probe.returncode == 0


def _stack_flags(compiler: str) -> list[str]:
    return [f for f in ("-fstack-usage", "-fcallgraph-info=su") if _accepts_flag(compiler, f)]


# ---- compile and link ----

_ERROR_RE = re.compile(r"(?:^|: )(?:fatal )?error: ")
_LD_PATH_RE = re.compile(r"^\S*/ld(?:\.bfd)?: ")
_LD_ERROR_RE = re.compile(r"undefined reference|multiple definition|cannot find|cannot open output|"
                          r"No space left|Read-only file system|Permission denied")


def _first_errors(stderr: str) -> tuple[str, str]:
    """(the line that says what went wrong, the first ERROR_LINES_SHOWN lines) of compiler output.

    A linker's "region overflowed by N bytes" beats the compiler's first "error:", which beats the
    linker's own complaint (an undefined reference, a write that failed), which beats any other linker
    line ("in function `main':" only says where); collect2's "ld returned 1 exit status" is skipped."""
    lines = [_LD_PATH_RE.sub("ld: ", ln).rstrip() for ln in stderr.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith("collect2:")]
    first = (next((ln for ln in useful if "overflowed by" in ln), None)
             or next((ln for ln in useful if _ERROR_RE.search(ln)), None)
             or next((ln for ln in useful if _LD_ERROR_RE.search(ln)), None)
             or next((ln for ln in useful if ln.startswith("ld: ")), None)
             or (lines[0] if lines else "no output"))
    return first.strip(), "\n".join(lines[:ERROR_LINES_SHOWN])


def _object_names(sources: list[Path]) -> list[str]:
    """Object file stems: the source's stem, made unique with its parent folder's name if needed."""
    stems = [s.stem for s in sources]
    return [f"{s.parent.name}_{s.stem}" if stems.count(s.stem) > 1 else s.stem for s in sources]


def _define_flags(board: Board, defines: Mapping[str, object] | None) -> list[str]:
    merged: dict[str, object] = {"TA_BOARD_NAME": f'"{board.name}"'}
    if not board.sdk:   # built and run here; an SDK board's build says which SDK (sdk_projects.BOARD_MACROS)
        merged[SIM_BOARD_MACRO] = 1
    merged.update(defines or {})
    return [f"-D{k}" if v is None else f"-D{k}={v}" for k, v in merged.items()]


def _compile_one(cmd: list[str], src: Path, board: Board) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        first, shown = _first_errors(done.stderr)
        raise TinyAgentError(f"compiling {src.name} for {board.name} failed: {first}",
                             EXIT_BAD_INPUT, details=shown)


def _link(board: Board, compiler: str, objects: list[Path], elf: Path, map_file: Path) -> None:
    cmd = [compiler, *board.cpu_flags, *board.toolchain.ldflags]
    if board.linker_script is not None:
        cmd += ["-T", str(board.linker_script), "-L", str(FIRMWARE_DIR / "boards"),
                f"-Wl,--defsym=__min_stack={board.stack_bytes}"]
    cmd += [f"-Wl,-Map={map_file}", *map(str, objects), "-o", str(elf)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        # the linker's report can run to pages: one line here, the whole of it in a log beside the program
        first, _ = _first_errors(done.stderr)
        log = elf.parent / f"{elf.name}.link.log"
        try:
            write_text(log, " ".join(cmd) + "\n\n" + done.stderr)
            where = f"full log: {log}"
        except TinyAgentError:  # the folder is full or read-only: the line still says what failed
            where = f"no log: {log} could not be written"
        if "overflow" in done.stderr or "will not fit" in done.stderr:
            raise TinyAgentError(
                f"the program does not fit {board.name} ({board.flash_bytes} bytes flash, "
                f"{board.ram_bytes} bytes RAM of which {board.stack_bytes} stack): {first} ({where})",
                EXIT_DOES_NOT_FIT)
        raise TinyAgentError(f"linking for {board.name} failed: {first} ({where})", EXIT_BAD_INPUT)


def _size(board: Board, files: list[Path]) -> SizeFigures:
    tool = _require_tool(board, board.toolchain.size_tool)
    done = subprocess.run([tool, "--format=berkeley", *map(str, files)],
                          capture_output=True, text=True, check=True)
    text = data = bss = 0
    for line in done.stdout.splitlines()[1:]:   # header: text data bss dec hex filename
        fields = line.split()
        text, data, bss = text + int(fields[0]), data + int(fields[1]), bss + int(fields[2])
    return SizeFigures(text=text, data=data, bss=bss)


def compile_and_link(board: Board, sources: Iterable[Path], include_dirs: Iterable[Path],
                     out_dir: Path, defines: Mapping[str, object] | None = None,
                     extra_cflags: Iterable[str] = (), name: str = "firmware") -> Artifact:
    """Build `sources` plus the board's HAL into out_dir/<name>.elf (out_dir/<name> on the host).

    firmware/ (for ta_hal.h) is always on the include path, TA_BOARD_NAME is defined as the
    board's name in quotes, and TA_BOARD_SIM for a board without an SDK (a tools file's section,
    docs/real-boards.md). A proxy toolchain (real boards built with their SDK elsewhere) only
    compiles; its Artifact has no elf and sizes the objects.
    """
    compiler = _require_tool(board, board.toolchain.compiler)
    out_dir = Path(out_dir)
    obj_dir = make_dir(out_dir / OBJ_SUBDIR)
    for stale in obj_dir.glob("*"):
        if stale.suffix in (".o", ".su", ".ci"):
            stale.unlink()

    all_sources = list(dict.fromkeys(Path(s).resolve() for s in [*sources, *board.hal_sources]))
    for src in all_sources:
        if not src.is_file():
            raise TinyAgentError(f"source file {src} does not exist", EXIT_BAD_INPUT)
    includes = [f"-I{d}" for d in [FIRMWARE_DIR, *include_dirs]]
    base = [compiler, *board.cpu_flags, *board.toolchain.cflags, *_stack_flags(compiler),
            *includes, *_define_flags(board, defines), *extra_cflags]
    objects = [obj_dir / f"{stem}.o" for stem in _object_names(all_sources)]
    jobs = [([*base, "-c", str(src), "-o", str(obj)], src) for src, obj in zip(all_sources, objects)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for future in [pool.submit(_compile_one, cmd, src, board) for cmd, src in jobs]:
            future.result()

    if board.toolchain.proxy:
        return Artifact(board=board.name, elf=None, map_file=None, objects=tuple(objects),
                        size=_size(board, objects), out_dir=out_dir)
    elf = out_dir / (name if board.run.kind == "process" else f"{name}.elf")
    map_file = out_dir / f"{name}.map"
    _link(board, compiler, objects, elf, map_file)
    return Artifact(board=board.name, elf=elf, map_file=map_file, objects=tuple(objects),
                    size=_size(board, [elf]), out_dir=out_dir)


# ---- stack depth from the call graph ----

_NODE_RE = re.compile(r'node:\s*\{\s*title:\s*"([^"]*)"\s*label:\s*"([^"]*)"')
_EDGE_RE = re.compile(r'edge:\s*\{\s*sourcename:\s*"([^"]*)"\s*targetname:\s*"([^"]*)"')
_FRAME_RE = re.compile(r"(\d+) bytes \(([a-z,]+)\)")
_INDIRECT = "__indirect_call"


@dataclass
class _Graph:
    frame: dict[str, int]        # title -> frame bytes, or _CI_EXTERNAL
    dynamic: set[str]            # titles whose frame is "dynamic" (unbounded)
    name: dict[str, str]         # title -> function name (static functions' titles carry the file)
    calls: dict[str, list[str]]  # title -> callee titles


def _read_call_graph(ci_files: list[Path]) -> _Graph:
    g = _Graph(frame={}, dynamic=set(), name={}, calls={})
    for ci in ci_files:
        text = ci.read_text(encoding="utf-8", errors="replace")
        for title, label in _NODE_RE.findall(text):
            parts = label.split("\\n")
            m = _FRAME_RE.search(parts[-1]) if len(parts) >= 3 else None
            if m is None:
                g.frame.setdefault(title, _CI_EXTERNAL)   # a callee; its body may be in another file
                g.name.setdefault(title, parts[0])
                continue
            g.frame[title] = int(m.group(1))
            g.name[title] = parts[0]
            if m.group(2) == "dynamic":          # "dynamic,bounded" is an upper bound: fine
                g.dynamic.add(title)
        for src, dst in _EDGE_RE.findall(text):
            callees = g.calls.setdefault(src, [])
            if dst not in callees:
                callees.append(dst)
    return g


# ---- frames of what GCC's call graph does not describe (Arm: assembly, libgcc, the C library) ----

_FN_RE = re.compile(r"^[0-9a-f]+ <([^>]+)>:$")
_PUSH_RE = re.compile(r"\t(?:push|stmdb)(?:\.w)?\t(?:sp!, )?\{([^}]*)\}")
_SUB_SP_RE = re.compile(r"\tsub(?:s|\.w)?\tsp, (?:sp, )?#(\d+)")
_BRANCH_RE = re.compile(r"\tb(?:l|lx|\.w|\.n)?\t[0-9a-f]+ <([^>+]+)>")


def _pushed_registers(reglist: str) -> int:
    n = 0
    for part in reglist.split(","):
        lo, _, hi = part.strip().partition("-")
        n += int(hi.lstrip("r")) - int(lo.lstrip("r")) + 1 if hi else 1
    return n


def arm_frames(elf: Path, objdump: str) -> dict[str, tuple[int, tuple[str, ...]]]:
    """function -> (stack bytes, functions it calls or branches to) from the ELF's disassembly: every
    PUSH/STMDB SP! and SUB SP, #n in its body added up (an upper bound when paths push differently),
    and every BL, BLX or B to another function's start. For the functions -fstack-usage never sees:
    assembly (ta_m0_dot3), libgcc (__aeabi_lmul), the C library (memset)."""
    try:
        text = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(elf)], capture_output=True,
                              text=True, check=True).stdout
        table = subprocess.run([objdump, "-t", str(elf)], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    aliases: dict[int, list[str]] = {}  # one address, several names (__aeabi_idiv is __divsi3)
    for line in table.splitlines():
        f = line.split()
        if len(f) >= 6 and "F" in f[2:-3] and re.fullmatch(r"[0-9a-f]+", f[0]):
            aliases.setdefault(int(f[0], 16) & ~1, []).append(f[-1])
    addr = {m.group(2): int(m.group(1), 16) for m in re.finditer(r"(?m)^([0-9a-f]+) <([^>]+)>:$", text)}
    out: dict[str, tuple[int, tuple[str, ...]]] = {}
    name, size, calls = "", 0, []
    for line in text.splitlines() + [""]:
        m = _FN_RE.match(line)
        if m or not line:
            if name:
                out[name] = (size, tuple(dict.fromkeys(c for c in calls if c != name)))
            name, size, calls = (m.group(1), 0, []) if m else ("", 0, [])
            continue
        if not name:
            continue
        if (p := _PUSH_RE.search(line)) and "sp" not in p.group(1):
            size += 4 * _pushed_registers(p.group(1))
        elif s := _SUB_SP_RE.search(line):
            size += int(s.group(1))
        elif b := _BRANCH_RE.search(line):
            calls.append(b.group(1))
    for fn, a in addr.items():
        for other in aliases.get(a, ()):
            out.setdefault(other, out[fn])
    for names in aliases.values():  # defined but not disassembled (a zero-size alias): nothing known
        for n in names:
            out.setdefault(n, (-1, ()))
    return out


def _add_disassembled(g: _Graph, frames: Mapping[str, tuple[int, tuple[str, ...]]]) -> None:
    """Give the graph's functions without a frame (externals) the one their disassembly shows, and its
    calls; the callees they reach are added the same way."""
    if not frames:
        return
    todo = [t for t, f in g.frame.items() if f == _CI_EXTERNAL]  # an external's title is its symbol
    while todo:
        t = todo.pop()
        if g.frame.get(t) != _CI_EXTERNAL:
            continue
        size, callees = frames.get(t, (0, ()))  # not in the program at all: nothing links to it
        if size < 0:
            continue
        g.frame[t], g.name[t], g.calls[t] = size, t, list(callees)
        for c in callees:
            if c not in g.frame:
                g.frame[c], g.name[c] = _CI_EXTERNAL, c
            if g.frame[c] == _CI_EXTERNAL:
                todo.append(c)


def max_stack_bytes(out_dir: Path, entry: str = "main",
                    indirect_targets: Mapping[str, Iterable[str]] | None = None) -> StackUsage:
    """The deepest call path from `entry` in the program built in out_dir, from GCC's .ci files.

    indirect_targets: function -> the functions its calls through a pointer can reach (for
    ta_hal_poll: the timer callbacks the program arms); those calls are then followed, not flagged."""
    ci_files = sorted(Path(out_dir).rglob("*.ci"))
    g = _read_call_graph(ci_files)
    if g.frame.get(entry, _CI_EXTERNAL) == _CI_EXTERNAL:
        raise TinyAgentError(
            f"no call graph for '{entry}' in {out_dir} ({len(ci_files)} .ci files; the compiler "
            f"must support -fcallgraph-info=su, which GCC does and clang does not)", EXIT_BAD_INPUT)
    return _deepest_path(g, entry, indirect_targets or {})


def stack_plan(out_dir: Path, board: Board,
               indirect_targets: Mapping[str, Iterable[str]] | None = None) -> StackUsage:
    """What the board's stack must hold: the deepest path from board.stack_entry (the function its
    startup enters with the stack empty, whose frame counts), plus the board's interrupt frame and
    the deepest of its interrupt handlers (they do not preempt one another; boards/*.toml)."""
    ci_files = sorted(Path(out_dir).rglob("*.ci"))
    g = _read_call_graph(ci_files)
    where = f"boards/{board.name}.toml"
    for name, what in [(board.stack_entry, "stack_entry"), *((h, "interrupt_handlers") for h in
                                                            board.interrupt_handlers)]:
        if g.frame.get(name, _CI_EXTERNAL) == _CI_EXTERNAL:
            if not ci_files:
                return max_stack_bytes(out_dir, name)   # says the call graph is missing
            raise TinyAgentError(f"{where}: {what} names {name}, which the program built in {out_dir} "
                                 f"does not define (in C, with a call graph)", EXIT_BAD_INPUT)
    if board.arch.startswith("armv"):
        elves = sorted(Path(out_dir).glob("*.elf"))
        if elves:
            _add_disassembled(g, arm_frames(elves[0], board.toolchain.prefix + "objdump"))
    targets = indirect_targets or {}
    base = _deepest_path(g, board.stack_entry, targets)
    if not board.interrupt_handlers:
        return base
    handlers = [_deepest_path(g, h, targets) for h in board.interrupt_handlers]
    worst = max(handlers, key=lambda u: u.bytes)
    merged = {k: tuple(sorted({n for u in (base, *handlers) for n in getattr(u, k)}))
              for k in ("unknown", "dynamic", "recursive", "indirect")}
    irq = board.interrupt_frame_bytes + worst.bytes
    return dataclasses.replace(base, bytes=base.bytes + irq, interrupt_frame=board.interrupt_frame_bytes,
                               interrupt_path=worst.path, interrupt_bytes=irq, **merged)


def _deepest_path(g: _Graph, entry: str, indirect_targets: Mapping[str, Iterable[str]]) -> StackUsage:
    by_name: dict[str, list[str]] = {}
    for title, name in g.name.items():
        if g.frame.get(title, _CI_EXTERNAL) != _CI_EXTERNAL:
            by_name.setdefault(name, []).append(title)

    unknown: set[str] = set()
    recursive: set[str] = set()
    indirect: set[str] = set()
    best: dict[str, tuple[int, tuple[str, ...]]] = {}
    on_path: set[str] = set()

    def deepest(title: str) -> tuple[int, tuple[str, ...]]:
        if title in best:
            return best[title]
        on_path.add(title)
        below: tuple[int, tuple[str, ...]] = (0, ())
        callees = list(g.calls.get(title, []))
        if _INDIRECT in callees and g.name[title] in indirect_targets:
            callees.remove(_INDIRECT)
            for target in indirect_targets[g.name[title]]:
                callees += by_name.get(target, [target])   # not defined in C: no stack info, below
        for callee in callees:
            if callee == _INDIRECT:
                indirect.add(g.name[title])
            elif callee in on_path:
                recursive.add(g.name[callee])
            elif g.frame.get(callee, _CI_EXTERNAL) == _CI_EXTERNAL:
                unknown.add(callee)   # an external's title is its symbol (strlen, not __builtin_strlen)
            else:
                below = max(below, deepest(callee), key=lambda t: t[0])
        on_path.discard(title)
        best[title] = (g.frame[title] + below[0], (g.name[title], *below[1]))
        return best[title]

    total, path = deepest(entry)
    reached = {g.name[t] for t in best}
    return StackUsage(entry=entry, bytes=total, path=path, unknown=tuple(sorted(unknown)),
                      dynamic=tuple(sorted(g.name[t] for t in g.dynamic if g.name[t] in reached)),
                      recursive=tuple(sorted(recursive)), indirect=tuple(sorted(indirect)))
