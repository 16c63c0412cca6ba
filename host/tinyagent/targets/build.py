"""`tinyagent build`: generate C for a board, plan its memory, compile, and report.

The memory plan is static. Before compiling, what the model alone needs (weights, tables, tokenizer,
the arena with its KV cache) is held against the board's budget, and a model that cannot fit fails
here with a table of what takes the space and what would fit. After compiling, the plan is completed
from the real objects (code, console buffers, HAL and libc statics) and the deepest stack, checked
again (the stack also against the board's stack reservation), and compared with the linker's
`size`. The stack is an upper bound from GCC's call graph: the deepest path from the board's
stack_entry (its reset handler's frame included), plus the frame the core pushes for an interrupt and
the deepest interrupt handler's path (boards/*.toml), with the timer callbacks the program arms as
what ta_hal_poll calls.
"""
from __future__ import annotations

import fcntl
import functools
import json
import os
import re
import shutil
import stat
import subprocess
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..codegen.arena import arena_bytes, arena_layout, choose_prefill_block, prefill_block_bytes
from ..errors import EXIT_DOES_NOT_FIT, TinyAgentError, bad_input
from ..fileio import cannot_write, make_dir, read_json, write_json
from ..integer.config import ModelConfig
from .boards import Board, list_boards, load_board

MANIFEST = "tinyagent-build.json"  # written last: the folder holds a complete build
PARTIAL = "tinyagent-build.partial.json"  # written before generating: a build of this model was started here
LOCK_FILE = ".tinyagent-build.lock"  # flock'ed while a build writes the folder; holds the builder's pid
MANIFEST_FORMAT = 1  # "format" in the manifest; a newer one is refused
MEMORY_FILE = "memory.json"
FIRMWARE_NAME = "firmware"
RUNTIME_RAM_ESTIMATE = 4096  # console buffers, stack and statics, for suggestions before compiling
STACK_ITEM = "stack (deepest call path)"  # the RAM item of the plan that is the stack


@dataclass
class MemoryPlan:
    board: str
    flash_budget: int
    ram_budget: int
    flash: dict[str, int] = field(default_factory=dict)  # item -> bytes
    ram: dict[str, int] = field(default_factory=dict)
    linker: dict[str, int] = field(default_factory=dict)  # size's text/data/bss, when linked
    stack_note: str = ""
    proxy_note: str = ""
    stack_budget: int = 0  # the board's stack reservation (stack_bytes); 0: the stack is not measured here
    tools_note: str = ""  # the tools file could not be compiled here (it includes an SDK's header)
    kv_bytes_per_token: int = 0  # KV cache bytes per token of context (ModelConfig.kv_bytes_per_token); 0: unknown
    ctx: int = 0  # the model's context, in tokens
    prefill_block: int = 0  # prompt tokens per pass of ta_engine_feed (TA_PREFILL_BLOCK); 0: unknown
    prefill_bytes: int = 0  # what that block adds to the activations of a block of 1
    sdk_note: str = ""  # after a real SDK build: its product, and whose figures the linker line is

    @property
    def flash_total(self) -> int:
        return sum(self.flash.values())

    @property
    def ram_total(self) -> int:
        return sum(self.ram.values())

    @property
    def stack_total(self) -> int:
        return self.ram.get(STACK_ITEM, 0)

    def stack_fits(self) -> bool:
        return not self.stack_budget or self.stack_total <= self.stack_budget

    def fits(self) -> bool:
        return self.flash_total <= self.flash_budget and self.ram_total <= self.ram_budget and self.stack_fits()

    def table(self) -> str:
        lines = [f"memory plan for {self.board}:"]
        for kind, items, budget in (("flash", self.flash, self.flash_budget), ("RAM", self.ram, self.ram_budget)):
            total = sum(items.values())
            for name, n in items.items():
                lines.append(f"  {kind:5} {name:34} {n:>10,} B  {100 * n / budget:6.2f}%")
            mark = "ok" if total <= budget else f"OVER by {total - budget:,} B"
            lines.append(f"  {kind:5} {'total':34} {total:>10,} B  {100 * total / budget:6.2f}% of "
                         f"{budget:,} B  {mark}")
        if self.stack_budget:
            mark = "ok" if self.stack_fits() else f"OVER by {self.stack_total - self.stack_budget:,} B"
            lines.append(f"  {'stack':5} {'deepest call path (in RAM above)':34} {self.stack_total:>10,} B  "
                         f"{100 * self.stack_total / self.stack_budget:6.2f}% of the {self.stack_budget:,} B "
                         f"reserved  {mark}")
        if self.kv_bytes_per_token:
            lines.append(f"  KV cache per token of context: {self.kv_bytes_per_token:,} B "
                         f"(x {self.ctx} tokens = {self.kv_bytes_per_token * self.ctx:,} B)")
        if self.prefill_block:
            lines.append(f"  prefill block: {self.prefill_block} tokens per pass, {self.prefill_bytes:,} B of the "
                         f"activations above (more than feeding 1 at a time)")
        if self.linker:
            lk = self.linker
            lines.append(f"  linker size: text {lk['text']:,} data {lk['data']:,} bss {lk['bss']:,} -> flash "
                         f"{lk['text'] + lk['data']:,} B, static RAM {lk['data'] + lk['bss']:,} B")
        for note in (self.stack_note, self.proxy_note, self.tools_note, self.sdk_note):
            if note:
                lines.append(f"  {note}")
        return "\n".join(lines)


@dataclass
class BuildResult:
    board: str
    out: Path
    artifact: Path | None
    plan: MemoryPlan
    model_hash: str
    generated_only: bool = False
    project: Path | None = None
    naming_note: str = ""  # phrasings whose words name no tool (naming.unnamed_note): the device asks


# ---- what the model needs, known before compiling --------------------------------------------------

def model_needs(im, bpe, block: int = 1) -> tuple[dict[str, int], dict[str, int]]:
    """(flash items, RAM items) the model itself needs: exact sizes of the generated arrays, the arena's
    activations for a prefill block of `block` tokens."""
    weights = sum(a.nbytes for k, a in im.tensors.items() if a.dtype.itemsize == 1 and a.ndim == 2)
    tables = sum(a.nbytes for k, a in im.tensors.items() if not (a.dtype.itemsize == 1 and a.ndim == 2))
    tok = 2 * 256 + 6 * len(bpe.merges) + sum(len(b) for b in bpe.token_bytes) + 2 * (bpe.vocab_size + 1)
    layout = arena_layout(im.cfg, block=block)
    kv = sum(b.bytes for b in layout if b.name.endswith("_cache"))
    return ({"weights (int8)": weights, "quant tables (multipliers, LUTs)": tables, "tokenizer tables": tok},
            {"KV cache": kv, "activations and scratch": arena_bytes(layout) - kv})


def turn_tokens(run_info: dict) -> int:
    """The longest held-out transcript of the run's corpus (run.json's statistics), in tokens; 0 if the
    run does not say. A context shorter than that cuts turns of this agent short."""
    corpus = run_info.get("corpus") or {}
    splits = [corpus.get(k) for k in ("val", "heldout")]
    return max((int(v.get("max_tokens") or 0) for v in splits if isinstance(v, dict)), default=0)


def _fit_suggestion(cfg: ModelConfig, board: Board, other_flash: int, other_ram: int, need_ctx: int = 0,
                    totals: tuple[int, int] | None = None) -> str:
    """What would fit: the longest context with this model if it still holds a turn (`need_ctx`
    tokens), else a smaller model; and the boards whose memory holds this plan's totals."""
    weights_ok = other_flash <= board.flash_bytes
    longest = 0
    for ctx in range(cfg.ctx, 7, -8):
        c = ModelConfig(**{**cfg.to_dict(), "ctx": ctx})
        if weights_ok and arena_bytes(arena_layout(c, block=1)) + other_ram <= board.ram_bytes:  # the build picks the block
            longest = ctx
            break
    if longest and longest >= need_ctx:
        return f"this model would fit with a context of {longest} tokens (now {cfg.ctx})"
    said = []
    if longest:
        said.append(f"the longest context that fits, {longest} tokens, is shorter than this agent's turns "
                    f"(up to {need_ctx} tokens)")
    small_ctx = max(32, -(-need_ctx // 8) * 8)
    for dim in range(cfg.dim - 16, 15, -16):
        c = ModelConfig(**{**cfg.to_dict(), "dim": dim, "ctx": small_ctx, "ffn_dim": 2 * dim,
                           "head_dim": max(8, dim // max(cfg.n_heads, 1))})
        flash = c.n_params() * 1.1
        if flash <= board.flash_bytes and arena_bytes(arena_layout(c, block=1)) + other_ram <= board.ram_bytes:
            said.append(f"a smaller model fits: e.g. dim {dim}, ffn {2 * dim}, context {small_ctx} "
                        f"(~{c.n_params() // 1000}k parameters)")
            break
    else:
        said.append("no transformer of this shape that holds a turn fits this board's RAM")
    if totals is not None:
        roomy = [b.name for b in list_boards() if b.flash_bytes >= totals[0] and b.ram_bytes >= totals[1]]
        if roomy:
            said.append(f"boards with room for this plan: {', '.join(roomy)}")
    return "; ".join(said)


def _does_not_fit(plan: MemoryPlan, suggestion: str) -> TinyAgentError:
    over = []
    if plan.flash_total > plan.flash_budget:
        over.append(f"flash {plan.flash_total:,} B > {plan.flash_budget:,} B")
    if plan.ram_total > plan.ram_budget:
        over.append(f"RAM {plan.ram_total:,} B > {plan.ram_budget:,} B")
    if not plan.stack_fits():
        over.append(f"stack {plan.stack_total:,} B > the {plan.stack_budget:,} B the board reserves for it")
    what = "the model" if len(over) > 1 or plan.stack_fits() else "the program"
    return TinyAgentError(f"{what} does not fit board '{plan.board}': {', '.join(over)}; {suggestion}",
                          EXIT_DOES_NOT_FIT, details=plan.table())


def _stack_suggestion(board: Board, stack) -> str:
    return (f"its deepest stack path is {' > '.join(stack.path)}; raise stack_bytes in boards/{board.name}.toml "
            f"to at least {stack.bytes:,} (the link then checks that RAM leaves that much), or shorten the path")


_TIMER_START = re.compile(r"\bta_hal_timer_start\s*\(")
_C_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_DECLARED = re.compile(r"\b(?:int|extern|static)\s*$")
_C_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _call_args(text: str, start: int) -> list[str] | None:
    """The top-level arguments of the call whose '(' ends just before text[start]; None if unbalanced."""
    depth, args, arg_start = 0, [], start
    for i in range(start, len(text)):
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                return [*args, text[arg_start:i]]
            depth -= 1
        elif c == "," and depth == 0:
            args.append(text[arg_start:i])
            arg_start = i + 1
    return None


def timer_callbacks(sources) -> tuple[str, ...] | None:
    """The functions a program arms as timer callbacks, which are what ta_hal_poll calls through its
    pointer: the third argument of every ta_hal_timer_start call in the program's C files, when it
    is a function's name (a cast to ta_hal_timer_fn or a & in front is fine). None when one is not
    (a variable, an expression): then the stack plan says it could not follow that call."""
    names: set[str] = set()
    for src in sources:
        if Path(src).suffix != ".c":
            continue
        text = _C_COMMENTS.sub(" ", Path(src).read_text(errors="replace"))
        for m in _TIMER_START.finditer(text):
            if _DECLARED.search(text[max(0, m.start() - 16):m.start()]):
                continue   # the function's own definition or a declaration
            args = _call_args(text, m.end())
            if args is None or len(args) != 4:
                return None
            fn = re.sub(r"^\(\s*ta_hal_timer_fn\s*\)|^&", "", args[2].strip()).strip()
            if fn in ("0", "NULL"):
                continue   # refused by ta_hal_timer_start: arms nothing
            if not _C_NAME.fullmatch(fn):
                return None
            names.add(fn)
    return tuple(sorted(names))


# ---- after compiling: the real objects ---------------------------------------------------------------

_SECTION = re.compile(r"^\.?(text|rodata|data|bss|sdata|sbss|srodata|literal)")


def object_sections(board: Board, obj: Path) -> dict[str, int]:
    """Bytes per kind (text, rodata, data, bss) of one object, from `size -A`."""
    out = subprocess.run([board.toolchain.size_tool, "-A", str(obj)], capture_output=True, text=True, check=True).stdout
    kinds = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    for line in out.splitlines()[2:]:
        parts = line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            continue
        m = _SECTION.match(parts[0])
        if not m:
            continue
        k = {"sdata": "data", "sbss": "bss", "srodata": "rodata", "literal": "text"}.get(m.group(1), m.group(1))
        kinds[k] += int(parts[1])
    return kinds


def measured_plan(board: Board, artifact, stack_bytes: int, stack_note: str) -> MemoryPlan:
    per = {Path(o).stem: object_sections(board, Path(o)) for o in artifact.objects}
    model = per.get("ta_model", {})
    vocab = per.get("ta_vocab", {})
    tools = per.get("ta_tools", {})
    code = sum(s["text"] for s in per.values())
    consts = sum(s["rodata"] + s["data"] for n, s in per.items() if n not in ("ta_model", "ta_vocab", "ta_tools"))
    plan = MemoryPlan(board.name, board.flash_bytes, board.ram_bytes)
    plan.flash = {"weights and quant tables": model.get("rodata", 0) + model.get("data", 0),
                  "tokenizer tables": vocab.get("rodata", 0) + vocab.get("data", 0),
                  "tool grammar and dispatch": tools.get("rodata", 0) + tools.get("data", 0),
                  "code (engine, agent, console, HAL)": code,
                  "other constants (strings)": consts}
    buffers = sum(s["data"] + s["bss"] for n, s in per.items() if n in ("ta_console", "ta_agent", "ta_tokenizer"))
    hal = sum(s["data"] + s["bss"] for n, s in per.items()
              if n not in ("ta_model", "ta_console", "ta_agent", "ta_tokenizer"))
    plan.ram = {"arena (KV cache, activations)": model.get("bss", 0) + model.get("data", 0),
                "console and agent buffers": buffers,
                "HAL, engine and runtime statics": hal,
                STACK_ITEM: stack_bytes}
    if artifact.elf is not None:
        sz = artifact.size
        plan.linker = {"text": sz.text, "data": sz.data, "bss": sz.bss}
        libc_flash = max(sz.text + sz.data - plan.flash_total, 0)
        libc_ram = max(sz.data + sz.bss - (plan.ram_total - stack_bytes), 0)
        plan.flash["libc, startup and alignment"] = libc_flash
        plan.ram["libc statics and alignment"] = libc_ram
    plan.stack_note = stack_note
    return plan


# ---- the build --------------------------------------------------------------------------------------

@dataclass
class BuildInfo:
    board: Board
    artifact: Path
    manifest: dict


def read_manifest(out: str | Path, board: str | None = None) -> dict:
    """The build manifest in `out`, checked: one bad_input line for a folder that is missing, not a
    folder, holds no build, or holds a corrupt manifest or one from a newer tinyagent."""
    out = Path(out)
    if board:
        load_board(board)  # an unknown board: one line listing the known ones
    path = out / MANIFEST
    hint = f"tinyagent build --board {board} --out {out}" if board else "tinyagent build --board BOARD"
    if out.exists() and not out.is_dir():
        raise bad_input(f"{out} is a file, not a build folder (give the --out of `{hint}`)")
    try:
        manifest = read_json(path, "build manifest", "; rebuild with --replace")
    except FileNotFoundError:
        raise bad_input(f"{out}: no build here (run `{hint}` first)") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("board"), str):
        raise bad_input(f"{path}: not a tinyagent build manifest (no board; rebuild with --replace)")
    fmt = manifest.get("format", 1)  # builds from before the field existed are format 1
    if type(fmt) is not int or fmt > MANIFEST_FORMAT or fmt < 1:
        raise bad_input(f"{path}: build manifest format {json.dumps(fmt)} is not supported (this tinyagent reads "
                        f"format {MANIFEST_FORMAT}; rebuild with --replace, or upgrade tinyagent)")
    for k in ("model_hash", "run", "artifact"):
        if k in manifest and not isinstance(manifest[k], str) and not (k == "artifact" and manifest[k] is None):
            raise bad_input(f"{path}: {k} is {json.dumps(manifest[k])[:40]} (allowed: a string; rebuild with "
                            "--replace)")
    art = manifest.get("artifact")
    if art and not (out / art).resolve().is_relative_to(out.resolve()):
        raise bad_input(f"{path}: artifact {art!r} is outside the build folder {out} (allowed: the program "
                        "the build linked, inside the folder; rebuild with --replace)")
    return manifest


# The first bytes of a linked program: ELF, and Mach-O for a host build on macOS
_PROGRAM_MAGIC = (b"\x7fELF", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")


def check_program(path: Path, board: Board) -> None:
    """The build's program, before anything runs it: a non-empty regular file that starts as a linked
    program does, and executable where the board runs it as a process. (A missing one is left to the
    transport, which says to build it.)"""
    if not path.exists():
        return
    fix = "rebuild with `tinyagent build --replace`"
    if not path.is_file():
        raise bad_input(f"{path}: the build's program is not a file; {fix}")
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise bad_input(f"{path}: the build's program is empty (a build cut short?); {fix}")
    if head not in _PROGRAM_MAGIC:
        raise bad_input(f"{path}: the build's program is not a linked program (no ELF header); {fix}")
    if board.run.kind == "process" and not os.access(path, os.X_OK):
        raise bad_input(f"{path}: the build's program is not executable (mode "
                        f"{stat.S_IMODE(path.stat().st_mode):o}); {fix}")


def load_build(out: str | Path, board: str | None = None) -> BuildInfo:
    out = Path(out)
    manifest = read_manifest(out, board)
    if board and manifest.get("board") != board:
        raise bad_input(f"{out} holds a build for board '{manifest.get('board')}', not '{board}' "
                        f"(use --board {manifest.get('board')} or another --out)")
    if not manifest.get("artifact") or manifest.get("sdk"):  # an SDK build's artifact is for the board
        raise bad_input(f"{out}: the build for '{manifest.get('board')}' produced no program to run here "
                        f"(it is a generated SDK project; flash it with `tinyagent flash`)")
    board_info = load_board(manifest["board"])
    check_program(out / manifest["artifact"], board_info)
    return BuildInfo(board_info, out / manifest["artifact"], manifest)


def _json_object(path: Path) -> dict | None:
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) else None


def _check_out_dir(out: Path, board: str, model_hash: str, replace: bool) -> None:
    """May this build write `out`? An empty folder, a build of this model for this board (complete, or
    started and cut short: the PARTIAL marker), or anything with --replace; not another model's build
    or a folder of something else."""
    if out.exists() and not out.is_dir():
        raise bad_input(f"--out {out} is a file, not a folder (choose a folder for the build)")
    if not out.exists() or not any(p.name != LOCK_FILE for p in out.iterdir()):
        return
    m = _json_object(out / MANIFEST)
    if m is None:
        m = _json_object(out / PARTIAL)  # interrupted, or failed to compile: redo it without asking
        if m is not None and (m.get("model_hash") != model_hash or m.get("board") != board) and not replace:
            raise bad_input(f"{out} holds an unfinished build of model {str(m.get('model_hash'))[:12]} for "
                            f"board '{m.get('board')}' (this is model {model_hash[:12]} for '{board}'); use "
                            f"--replace to overwrite it, or another --out")
    if m is None:
        if replace:
            return
        raise bad_input(f"{out} is not empty and is not a tinyagent build (choose another --out, or "
                        f"--replace to overwrite it)")
    if (m.get("model_hash") != model_hash or m.get("board") != board) and not replace:
        raise bad_input(f"{out} holds a build of model {str(m.get('model_hash'))[:12]} for board "
                        f"'{m.get('board')}' (this is model {model_hash[:12]} for '{board}'); use "
                        f"--replace to overwrite it, or another --out")


@contextmanager
def _build_folder_lock(out: Path):
    """Hold an exclusive flock on out/LOCK_FILE (made with the folder if need be): a second build into
    the same folder fails at once, naming the first one's pid. A build that fails before it marked the
    folder as a build takes away the lock file it made (and the folder, if it made that too)."""
    if out.exists() and not out.is_dir():
        raise bad_input(f"--out {out} is a file, not a folder (choose a folder for the build)")
    made = not out.exists()
    make_dir(out)
    path = out / LOCK_FILE
    made_lock = not path.exists()
    try:
        f = open(path, "a+")
    except OSError as e:
        raise cannot_write(path, e) from None
    ok = False
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "?"
            raise bad_input(f"build folder {out} is in use by another build (pid {pid}); wait for it to "
                            "finish, or build into another --out") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield
        ok = True
    finally:
        f.close()  # releases the lock
        if not ok and made_lock and not (out / PARTIAL).exists() and not (out / MANIFEST).exists():
            try:  # bad input: leave the folder as it was
                path.unlink(missing_ok=True)
                if made and not any(out.iterdir()):
                    out.rmdir()
            except OSError:
                pass


def _clear(out: Path) -> None:
    """--replace: empty the folder, all but the lock this build holds."""
    for p in out.iterdir():
        if p.name == LOCK_FILE:
            continue
        try:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        except OSError as e:
            raise cannot_write(out, e, out, verb="replace") from None


def _finish(out: Path, manifest: dict) -> None:
    """The build is complete (or its project generated): the manifest says so, the marker goes."""
    write_json(out / MANIFEST, manifest)
    (out / PARTIAL).unlink(missing_ok=True)


def _holding_the_build_folder(fn):
    @functools.wraps(fn)
    def locked(board_name: str, out: str | Path, *args, **kwargs):
        with _build_folder_lock(Path(out)):
            return fn(board_name, out, *args, **kwargs)
    return locked


@_holding_the_build_folder
def build(board_name: str, out: str | Path, run: str | Path, *, tools_c: str | None = None,
          replace: bool = False, generate_only: bool = False, micropython: bool = False) -> BuildResult:
    """Build for `board_name` into the folder `out`, holding its lock. Before anything is generated the
    folder gets the PARTIAL marker (this model, this board) and loses an old manifest; the manifest is
    written when the build is complete. A build that was interrupted or failed is redone by the next
    build of the same model without --replace."""
    from ..agent.conversation import load_min_margin
    from ..agent.naming import unnamed_note
    from ..agent.spec import load_spec
    from ..agent.tokenizer import load_tokenizer
    from ..codegen.generate import generate_sources, model_hash
    from ..integer.intmodel import load_int_model
    from ..training.run import check_run_file
    from .toolchain import compile_and_link, stack_plan, with_sanitizers

    board = with_sanitizers(load_board(board_name))  # TA_HOST_SANITIZE: ASan/UBSan, host only
    run, out = Path(run), Path(out)
    need_ctx = turn_tokens(check_run_file(run))
    if tools_c is not None and not Path(tools_c).is_file():
        what = "is a folder" if Path(tools_c).is_dir() else "does not exist"
        raise bad_input(f"--tools {tools_c} {what} (give the C file with your tool handlers)")
    im = load_int_model(run / "int8")
    bpe = load_tokenizer(run / "tokenizer.json")
    spec = load_spec(run / "spec.toml")
    min_margin = load_min_margin(run / "int8")
    digest = model_hash(im, bpe, spec, min_margin)
    _check_out_dir(out, board.name, digest, replace)

    # 1. what the model needs, before anything is generated or compiled; the prefill block is the
    # largest (up to 8 tokens) whose arena leaves the runtime its estimate
    block = min(choose_prefill_block(im.cfg, board.ram_bytes - RUNTIME_RAM_ESTIMATE), im.cfg.ctx)
    mflash, mram = model_needs(im, bpe, block)
    pre = MemoryPlan(board.name, board.flash_bytes, board.ram_bytes, dict(mflash), dict(mram),
                     kv_bytes_per_token=im.cfg.kv_bytes_per_token(), ctx=im.cfg.ctx,
                     prefill_block=block, prefill_bytes=prefill_block_bytes(im.cfg, block))
    if not pre.fits():
        raise _does_not_fit(pre, _fit_suggestion(im.cfg, board, pre.flash_total, RUNTIME_RAM_ESTIMATE,
                                                 need_ctx, (pre.flash_total, pre.ram_total)))

    if replace:
        _clear(out)
    write_json(out / PARTIAL, {"format": MANIFEST_FORMAT, "board": board.name, "model_hash": digest,
                               "run": str(run.resolve()), "pid": os.getpid()})
    try:
        (out / MANIFEST).unlink(missing_ok=True)  # until this build is complete, the folder holds none
    except OSError as e:
        raise cannot_write(out / MANIFEST, e) from None
    src_dir = out / "src"
    sources = generate_sources(im, bpe, spec, board.name, src_dir, user_tools_c=tools_c,
                               kernels=board.kernels, min_margin=min_margin, prefill_block=block)
    result = BuildResult(board.name, out, None, pre, digest)
    result.naming_note = unnamed_note(spec)
    manifest = {"format": MANIFEST_FORMAT, "board": board.name, "model_hash": digest, "run": str(run.resolve()),
                "artifact": None, "tool": "tinyagent"}
    if board.toolchain.cflags != load_board(board_name).toolchain.cflags:
        manifest["sanitizers"] = True  # TA_HOST_SANITIZE: the memory figures include ASan/UBSan

    if board.sdk or micropython:  # a real board's SDK project (ESP-IDF, pico-sdk) or the MicroPython module
        from .sdk_projects import generate_project, proxy_compile, sdk_build, sdk_image

        art = proxy_compile(board, sources, out / "proxy", kind="micropython" if micropython else None)
        plan = measured_plan(board, art, 0, "stack: measured by the SDK build (not available here)")
        plan.proxy_note = getattr(art, "note", "") or f"figures from the proxy compiler {board.toolchain.compiler}"
        plan.tools_note = art.tools_note
        plan.kv_bytes_per_token, plan.ctx = pre.kv_bytes_per_token, pre.ctx
        plan.prefill_block, plan.prefill_bytes = pre.prefill_block, pre.prefill_bytes
        result.plan = plan
        write_json(out / MEMORY_FILE, _plan_json(plan))
        if not plan.fits():
            raise _does_not_fit(plan, _fit_suggestion(im.cfg, board, 0, 0, need_ctx,
                                                      (plan.flash_total, plan.ram_total)))
        project = generate_project(board, sources, out / "project",
                                   model_info={"model_hash": digest, "flash_bytes": art.size.flash,
                                               "agent": spec.name},
                                   kind="micropython" if micropython else None)
        result.project = out / "project"
        manifest["sdk"] = project.sdk
        _finish(out, manifest)
        if not generate_only:
            product = sdk_build(project)
            if product is not None:
                _record_sdk_image(out, sdk_image(board, product), plan, manifest, result)
        result.generated_only = generate_only
        return result

    if generate_only:
        _finish(out, manifest)
        result.generated_only = True
        return result

    # 2. compile, measure the real objects and the deepest stack, check again, link
    art = compile_and_link(board, sources, [src_dir], out / "obj", name=FIRMWARE_NAME)
    callbacks = timer_callbacks([*sources, *board.hal_sources])
    stack = stack_plan(out / "obj", board, None if callbacks is None else {"ta_hal_poll": callbacks})
    note = f"stack: {stack.summary()}"
    if manifest.get("sanitizers"):
        note += ("; sanitized build (TA_HOST_SANITIZE): code, globals and frames include ASan/UBSan "
                 "instrumentation, the runtime is a shared library")
    plan = measured_plan(board, art, stack.bytes, note)
    plan.stack_budget = board.stack_bytes
    plan.kv_bytes_per_token, plan.ctx = pre.kv_bytes_per_token, pre.ctx
    plan.prefill_block, plan.prefill_bytes = pre.prefill_block, pre.prefill_bytes
    result.plan, result.artifact = plan, art.elf
    write_json(out / MEMORY_FILE, _plan_json(plan))
    if not plan.fits():
        only_stack = plan.flash_total <= plan.flash_budget and plan.ram_total <= plan.ram_budget
        raise _does_not_fit(plan, _stack_suggestion(board, stack) if only_stack else
                            _fit_suggestion(im.cfg, board, plan.flash_total, plan.ram_total - mram["KV cache"],
                                            need_ctx, (plan.flash_total, plan.ram_total)))
    manifest["artifact"] = str(Path(art.elf).resolve().relative_to(out.resolve()))
    _finish(out, manifest)
    return result


def _record_sdk_image(out: Path, image, plan: MemoryPlan, manifest: dict, result: BuildResult) -> None:
    """After a real SDK build: the manifest's artifact is its product (the .uf2 / app .bin, a path
    inside the build folder; MicroPython's firmware, in MICROPY_DIR, is named by "product" only), and
    "image" holds the product's bytes and the Berkeley figures of the ELF the SDK linked, which the
    memory plan prints as its linker line."""
    def inside(p: Path) -> str | None:
        try:
            return str(p.resolve().relative_to(out.resolve()))
        except ValueError:
            return None

    rel = inside(image.product)
    manifest["artifact"] = rel
    manifest["product"] = str(image.product.resolve())
    elf = (inside(image.elf) or str(image.elf.resolve())) if image.elf else None
    manifest["image"] = {"bytes": image.image_bytes, "elf": elf}
    where = rel or str(image.product)
    note = f"SDK build: {where}, {image.image_bytes:,} B"
    if image.size is not None:
        sz = image.size
        manifest["image"].update(text=sz.text, data=sz.data, bss=sz.bss, size_tool=image.size_tool)
        plan.linker = {"text": sz.text, "data": sz.data, "bss": sz.bss}
        note += f"; the linker size line is {image.size_tool} of the SDK's {elf}"
    else:
        note += f"; {image.note}"
    plan.sdk_note = note
    result.artifact, result.plan = image.product, plan
    write_json(out / MEMORY_FILE, _plan_json(plan))
    write_json(out / MANIFEST, manifest)


def _plan_json(plan: MemoryPlan) -> dict:
    d = asdict(plan)
    d.update(flash_total=plan.flash_total, ram_total=plan.ram_total, fits=plan.fits())
    return d


def print_report(r: BuildResult) -> None:
    import click

    if r.artifact:
        click.echo(f"built {r.artifact} for {r.board} (model {r.model_hash[:12]})")
    elif r.project:
        click.echo(f"generated {r.project} for {r.board} (model {r.model_hash[:12]})")
    else:
        click.echo(f"generated sources in {r.out / 'src'} for {r.board} (model {r.model_hash[:12]})")
    click.echo(r.plan.table())
    if r.naming_note:
        click.echo(f"note: {r.naming_note}")


def print_boards(run: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..agent.tokenizer import load_tokenizer
    from ..integer.intmodel import load_int_model

    im = load_int_model(run / "int8")
    mflash, mram = model_needs(im, load_tokenizer(run / "tokenizer.json"))
    need_f, need_r = sum(mflash.values()), sum(mram.values())
    kv = im.cfg.kv_bytes_per_token()
    t = Table(title=f"boards (model {run.name}: needs {need_f:,} B flash + {need_r:,} B RAM before code; "
                    f"KV cache {kv:,} B per token of context, {mram['KV cache']:,} B for {im.cfg.ctx})")
    for col in ("board", "arch", "flash", "RAM", "runs here", "default model fits"):
        t.add_column(col)
    for b in list_boards():
        fits = need_f <= b.flash_bytes and need_r <= b.ram_bytes
        t.add_row(b.name, b.arch, f"{b.flash_bytes // 1024:,} KiB", f"{b.ram_bytes // 1024:,} KiB",
                  "yes" if b.runs_here else "no (SDK project)", "yes" if fits else "no")
    Console().print(t)
