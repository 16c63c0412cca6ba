"""`tinyagent bench`: speed, instructions, memory, quality and TFLM figures in one JSON (docs/benchmarks.md).

Rows, each measured in this process (one thing at a time, so a busy machine skews them less):
  host speed     time to first token and tokens/s of the generated C engine (`!run` over its pty), the
                 numpy integer reference (Reference.step) and the float GPT in torch (no KV cache)
  instructions   per token inside ta_engine_step, from callgrind on the host build (exact, repeatable),
                 and per token on each emulated board, from the console's `!bench` (ta_hal_cycles across
                 the steps, in instructions under QEMU -icount: the board file's [run] counter), each
                 next to ModelConfig.macs_per_token
  memory         flash and RAM per board from the memory plan and the linker's `size`
  quality        evaluate.evaluate rows (trained model only)
  tflm           tflm.compare_with_tflm on the default int8 folder
  pipeline       per-stage seconds from run.json, when the run recorded them
A section that cannot run records {"error": "..."} and the rest go on.
"""
from __future__ import annotations

import bisect
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..device import protocol
from ..errors import TinyAgentError
from ..fileio import make_dir, write_bytes, write_json
from ..integer.config import STUDENT, TINY, ModelConfig

RESULTS_FILE = "bench.json"
REPO = Path(__file__).resolve().parents[3]
DEFAULT_RUN = REPO / "models" / "default"
MEMORY_BOARDS = ("host", "mps2-an386", "riscv32-virt", "lx106-sim", "microbit")
# Other sizes, random weights: speed and memory only (the quality of random weights means nothing).
WIDE = ModelConfig(dim=128, n_layers=4, n_heads=4, head_dim=32, ffn_dim=256)
SIZES = {"tiny": TINY, "wide": WIDE}
RUN_TIMEOUT_S = 600.0  # one `!run` of the full context under callgrind


# ---- the machine and the models ------------------------------------------------------------------

def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True,
                                    text=True).stdout.strip())
    except OSError:
        commit, dirty = "", False
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
            "git_commit": commit, "git_dirty": dirty, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def trained(run: Path) -> bool:
    return (run / "run.json").is_file() and (run / "int8" / "model.int.json").is_file()


def random_run(folder: Path, cfg: ModelConfig, like: Path, seed: int = 0):
    """A run folder with a random (calibrated, exported) model of `cfg`, the spec and tokenizer of `like`.
    Returns (folder, float GPT). Good for speed and memory rows only."""
    import torch

    from ..training import intexport
    from ..training.model import GPT

    torch.manual_seed(seed)
    m = GPT(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(3.0)  # as tests/conftest.py: attention and norms are not trivial
    batches = [torch.randint(0, cfg.vocab_size, (4, min(cfg.ctx, 32))) for _ in range(2)]
    m.qat = intexport.calibrate(m, batches)
    m.eval()
    make_dir(folder)
    intexport.export_int_model(m).save(folder / "int8")
    for name in ("spec.toml", "tokenizer.json"):
        write_bytes(folder / name, (like / name).read_bytes())
    write_json(folder / "run.json", {"format": 1, "note": "random weights, written by tinyagent bench",
                                     "model": cfg.to_dict()})
    return folder, m


def _template_run(run: Path) -> Path:
    """A folder with spec.toml and tokenizer.json to borrow for random models."""
    for cand in (run, *sorted((REPO / "runs").glob("*"))):
        if (cand / "spec.toml").is_file() and (cand / "tokenizer.json").is_file():
            return cand
    raise TinyAgentError("bench: no spec.toml + tokenizer.json to build random models with "
                         "(train a run first: `tinyagent train`)")


# ---- speed ---------------------------------------------------------------------------------------

def _ids(cfg: ModelConfig, n: int, seed: int = 0) -> list[int]:
    return np.random.default_rng(seed).integers(0, cfg.vocab_size, n).tolist()


def time_c_engine(board_name: str, elf: Path, ids: list[int], repeats: int) -> dict:
    """`!run ids` over the console: first token = first `step 0` line, then steady tokens/s."""
    from ..device.protocol import ask, sync
    from ..device.transport import open_console
    from ..targets.boards import load_board

    best = None
    with open_console(load_board(board_name), artifact=Path(elf)) as con:
        sync(con)
        for _ in range(repeats):
            # the console may flush all step lines at once, so: one token alone, then all of them
            t0 = time.perf_counter()
            ask(con, f"!run {ids[0]}", timeout=RUN_TIMEOUT_S)
            t1 = time.perf_counter()
            text = ask(con, "!run " + " ".join(map(str, ids)), timeout=RUN_TIMEOUT_S)
            t2 = time.perf_counter()
            if "error" in text:
                raise TinyAgentError(f"{board_name}: !run refused: {text.strip()[:120]}")
            r = (t1 - t0, len(ids) / (t2 - t1))
            best = r if best is None or r[0] < best[0] else best
    return {"ttft_ms": round(1e3 * best[0], 3), "tokens_per_s": round(best[1], 1),
            "note": "whole !run round trips over the pty, step lines included"}


def time_reference(im, ids: list[int], repeats: int) -> dict:
    from ..integer.reference import Reference

    ttft, rate = [], []
    Reference(im).step(ids[0])  # untimed warm-up, as for torch
    for _ in range(repeats):
        ref = Reference(im)
        t0 = time.perf_counter()
        ref.step(ids[0])
        t1 = time.perf_counter()
        for t in ids[1:]:
            ref.step(t)
        t2 = time.perf_counter()
        ttft.append(t1 - t0)
        rate.append((len(ids) - 1) / (t2 - t1))
    return {"ttft_ms": round(1e3 * min(ttft), 3), "tokens_per_s": round(max(rate), 1)}


def time_torch(model, ids: list[int], repeats: int) -> dict:
    """The float GPT as trained: each token recomputes its whole prefix (the model has no KV cache)."""
    import torch

    idx = torch.tensor([ids])
    ttft, rate = [], []
    with torch.no_grad():
        model(idx)  # untimed: torch's first call pays its lazy set-up (about 20 ms here)
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(idx[:, :1])
            t1 = time.perf_counter()
            for i in range(2, len(ids) + 1):
                model(idx[:, :i])
            t2 = time.perf_counter()
            ttft.append(t1 - t0)
            rate.append((len(ids) - 1) / (t2 - t1))
    return {"ttft_ms": round(1e3 * min(ttft), 3), "tokens_per_s": round(max(rate), 1),
            "torch_threads": torch.get_num_threads(), "note": "no KV cache: prefix recomputed per token"}


# ---- instructions --------------------------------------------------------------------------------

def _callgrind_host(out_file: Path, *options: str):
    """The host board with its program run under callgrind, which writes out_file when it exits."""
    from ..targets.boards import load_board

    board = load_board("host")
    return replace(board, run=replace(board.run, command=(
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", *options, "{elf}")))


def callgrind_instructions(elf: Path, ids: list[int], workdir: Path) -> dict:
    """Instructions executed inside ta_engine_step for `!run ids`, from callgrind (--toggle-collect)."""
    from ..device.protocol import sync
    from ..device.transport import open_console

    if not shutil.which("valgrind"):
        return {"error": "valgrind not installed (apt-get install valgrind)"}
    out_file = workdir / "callgrind.out"
    con = open_console(_callgrind_host(out_file, "--toggle-collect=ta_engine_step"), artifact=Path(elf))
    try:
        sync(con)
        con.write_line("!run " + " ".join(map(str, ids)))
        con.read_until(f"step {len(ids) - 1} ", timeout=RUN_TIMEOUT_S)
        con.read_until("\n> ", timeout=RUN_TIMEOUT_S)
    finally:
        con.hang_up(timeout=60)  # the host program exits when its pty closes; callgrind then writes its file
    text = out_file.read_text() if out_file.is_file() else ""
    m = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
    if not m:
        return {"error": "callgrind wrote no totals (did the program exit cleanly?)"}
    total = int(m.group(1))
    return {"instructions_total": total, "tokens": len(ids), "instructions_per_token": round(total / len(ids))}


def mean_macs(cfg: ModelConfig, n: int) -> float:
    return sum(cfg.macs_per_token(p) for p in range(n)) / n


def _count_ids(cfg: ModelConfig, quick: bool) -> list[int]:
    """The ids every instruction count runs: the whole context (mean position ctx/2, as in
    macs_per_token's default), or its first 32 with --quick."""
    return _ids(cfg, cfg.ctx if not quick else min(cfg.ctx, 32), seed=1)


def board_instructions(board_name: str, elf: Path, ids: list[int], macs: float) -> dict:
    """`!bench ids` on a board that runs here. In instructions when its board file says ta_hal_cycles
    counts them under its run command ([run] counter = "instructions", counter_scale per unit);
    otherwise the raw units, with a note saying what they are."""
    from ..device.protocol import sync
    from ..device.transport import open_console
    from ..targets.boards import load_board

    board = load_board(board_name)
    with open_console(board, artifact=Path(elf)) as con:
        sync(con)
        b = protocol.bench(con, ids)
    if b["steps"] != len(ids):
        raise TinyAgentError(f"{board_name}: !bench ran {b['steps']} steps, not {len(ids)}")
    row = {"board": board_name, "counter": board.run.counter, "counter_scale": board.run.counter_scale,
           "tokens": len(ids), "cycles_total": b["cycles"], "last_step": [b["argmax"], b["hash"]],
           "macs_per_token": round(macs)}
    if board.run.counter != "instructions":
        row["cycles_per_token"] = round(b["cycles"] / len(ids))
        row["note"] = f"ta_hal_cycles here counts '{board.run.counter}', not instructions (boards/{board_name}.toml)"
        return row
    total = b["cycles"] * board.run.counter_scale
    row.update(instructions_total=total, instructions_per_token=round(total / len(ids)),
               instructions_per_mac=round(total / len(ids) / macs, 3),
               resolution_instructions=board.run.counter_scale)
    return row


# ---- prefill: the engine alone, step by step against ta_engine_feed ---------------------------------

PROBE_MAIN = REPO / "firmware" / "test" / "prefill_main.c"
PROBE_HOST_HAL = (REPO / "firmware" / "test" / "hal_stdio.c", REPO / "firmware" / "boards" / "common" / "hal_timers.c")
PREFILL_TOKENS = 24  # a typical request's prompt


def build_prefill_probe(im, bpe, spec, board_name: str, out: Path, prefill_block: int | None = None) -> Path:
    """firmware/test/prefill_main.c with the generated model, the engine and the board's kernels (host:
    the stdin/stdout HAL; an emulated board: its own HAL and toolchain). Returns the program."""
    from ..codegen import arena
    from ..codegen.generate import KERNELS, generate_sources
    from ..targets.boards import load_board
    from ..targets.toolchain import compile_and_link

    board = load_board(board_name)
    block = arena.DEFAULT_PREFILL_BLOCK if prefill_block is None else prefill_block
    out = make_dir(out)
    gen = generate_sources(im, bpe, spec, board.name, out / "src", kernels=board.kernels, prefill_block=block)
    keep = {"ta_model.c", "ta_engine.c", "ta_status.c", KERNELS[board.kernels]}
    sources = [PROBE_MAIN, *(s for s in gen if s.name in keep)]
    if board.run.kind == "qemu":
        return compile_and_link(board, sources, [out / "src"], out / "obj", name="prefill").elf
    import os

    exe = out / "prefill"
    cc = ["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{out / 'src'}", f"-I{REPO / 'firmware'}"]
    done = subprocess.run([*cc, *map(str, [*sources, *PROBE_HOST_HAL]), "-o", str(exe)], capture_output=True,
                          text=True, env={**os.environ})
    if done.returncode != 0:
        raise TinyAgentError(f"prefill probe did not compile: {done.stderr.strip()[:400]}")
    return exe


class PrefillProbe:
    """The probe program over pipes: the host build as a process, an emulated board's under QEMU
    (-icount shift=0, so its ta_hal_cycles count instructions as the board file says)."""

    def __init__(self, program: Path, board_name: str = "host"):
        from ..targets.boards import load_board

        board = load_board(board_name)
        if board.run.kind == "qemu":
            cmd = [c.replace("{elf}", str(program)) for c in board.run.command]
            cmd = [("stdio" if c == "pty" and cmd[i - 1] == "-serial" else c) for i, c in enumerate(cmd)]
            cmd += ["-display", "none", "-monitor", "none"]
        else:
            cmd = [str(program)]
        self.board = board
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def ask(self, line: str, timeout: float = RUN_TIMEOUT_S) -> str:
        import os
        import select

        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        buf, fd, deadline = b"", self.proc.stdout.fileno(), time.monotonic() + timeout
        while True:
            if b"\n" in buf.lstrip(b"\r\n"):
                break
            ready = select.select([fd], [], [], max(deadline - time.monotonic(), 0))[0]
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                raise TinyAgentError(f"prefill probe: no answer to {line[:60]!r} (exit {self.proc.poll()})")
            buf += chunk
        text = buf.lstrip(b"\r\n").decode()
        reply, rest = text.split("\n", 1)
        if rest.strip():
            raise TinyAgentError(f"prefill probe: more than one line for {line[:60]!r}: {rest[:80]!r}")
        return reply.rstrip("\r")

    def run(self, how: str, pos: int, ids: list[int]) -> str:
        return self.ask(f"{how} {pos} " + " ".join(map(str, ids)))

    def cycles(self, how: str, pos: int, ids: list[int]) -> int:
        reply = self.ask(f"b {how} {pos} " + " ".join(map(str, ids)))
        if not reply.startswith("cycles "):
            raise TinyAgentError(f"prefill probe: {reply[:80]!r} for a timed run")
        return int(reply.split()[1])

    def close(self) -> int:
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # QEMU goes on when its serial input closes
            self.proc.kill()
            return self.proc.wait()
        finally:
            self.proc.stdout.close()


def prefill_instructions(run: Path, board_name: str, workdir: Path, n_tokens: int = PREFILL_TOKENS) -> dict:
    """Instructions per prompt token on `board_name` (an emulated board that counts instructions), for
    a prompt of n_tokens fed step by step (ta_engine_step) and by ta_engine_feed, the same logits both ways."""
    from ..agent.spec import load_spec
    from ..agent.tokenizer import load_tokenizer
    from ..integer.intmodel import load_int_model
    from ..targets.boards import load_board

    board = load_board(board_name)
    im = load_int_model(run / "int8")
    ids = _ids(im.cfg, min(n_tokens, im.cfg.ctx), seed=2)
    elf = build_prefill_probe(im, load_tokenizer(run / "tokenizer.json"), load_spec(run / "spec.toml"), board_name,
                              workdir)
    probe = PrefillProbe(elf, board_name)
    try:
        block = int(probe.ask("i").split()[1])
        probe.ask("r")
        step = probe.cycles("s", 0, ids)
        step_logits = probe.ask("l")
        probe.ask("r")
        feed = probe.cycles("f", 0, ids)
        same = probe.ask("l") == step_logits
    finally:
        probe.close()
    if not same:
        raise TinyAgentError(f"{board_name}: ta_engine_feed's logits differ from step by step")
    scale = board.run.counter_scale if board.run.counter == "instructions" else 1
    macs = sum(im.cfg.macs_per_token(p) for p in range(len(ids))) / len(ids)
    row = {"board": board_name, "counter": board.run.counter, "tokens": len(ids), "prefill_block": block,
           "step_instructions_per_token": round(step * scale / len(ids)),
           "feed_instructions_per_token": round(feed * scale / len(ids)),
           "speedup": round(step / feed, 2), "macs_per_token_step": round(macs),
           "step_instructions_per_mac": round(step * scale / len(ids) / macs, 3),
           "feed_instructions_per_mac": round(feed * scale / len(ids) / macs, 3),
           "note": "macs_per_token_step counts every position's logits; the feed computes only the last one's"}
    return row


def decode_instructions(board_name: str, elf: Path, cfg: ModelConfig, spans=((16, 48), (200, 250))) -> dict:
    """Instructions per generated token at positions a..b on an emulated board, from the firmware's
    `!bench`: (ids 0..b minus ids 0..a) / (b - a), so the shared start and the fixed overhead cancel.
    The ids are below 100, so that 250 of them fit the console's line."""
    from ..device.protocol import sync
    from ..device.transport import open_console
    from ..targets.boards import load_board

    board = load_board(board_name)
    scale = board.run.counter_scale if board.run.counter == "instructions" else 1
    ids = _ids(replace(cfg, vocab_size=min(cfg.vocab_size, 100)), cfg.ctx, seed=3)
    rows = {}
    with open_console(board, artifact=Path(elf)) as con:
        sync(con)
        for a, b in spans:
            if b > cfg.ctx:
                continue
            lo, hi = protocol.bench(con, ids[:a]), protocol.bench(con, ids[:b])
            per = (hi["cycles"] - lo["cycles"]) * scale / (b - a)
            macs = sum(cfg.macs_per_token(p) for p in range(a, b)) / (b - a)
            rows[f"{a}-{b}"] = {"instructions_per_token": round(per), "macs_per_token": round(macs),
                                "instructions_per_mac": round(per / macs, 3)}
    return {"board": board_name, "counter": board.run.counter, "config": cfg.to_dict(), "positions": rows}


def run_prefill_bench(out: str | Path = "bench/results", run: str | Path | None = None,
                      board: str = "mps2-an386", name: str = "prefill.json") -> dict:
    """Prefill (step by step vs ta_engine_feed) for the shipped model, and decode per token at
    positions 16-48 and 200-250 for a random model of ctx 256 (2 kv heads, ffn 96): out/name."""
    from ..integer.intmodel import load_int_model
    from ..targets.build import build

    out = make_dir(out)
    run = Path(run) if run else DEFAULT_RUN
    work = Path(tempfile.mkdtemp(prefix="bench-prefill-", dir=out))
    res: dict = {"machine": machine()}
    try:
        _section(res, "prefill", prefill_instructions, run, board, work / "probe")
        long_cfg = replace(STUDENT, ctx=256, n_kv_heads=2, ffn_dim=96)
        rf, _ = random_run(work / "ctx256-random", long_cfg, _template_run(run))
        art = build(board, work / "build-ctx256", rf, replace=True).artifact
        _section(res, "decode_ctx256", decode_instructions, board, art, long_cfg)
        art = build(board, work / "build-default", run, replace=True).artifact
        _section(res, "decode_default", decode_instructions, board, art, load_int_model(run / "int8").cfg,
                 ((16, 48),))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_json(out / name, res)
    return res


# ---- whole turns: prefill and decode of real requests ------------------------------------------------

TURN_REQUESTS = REPO / "tests" / "handwritten" / "default.tsv"
RP2040_HZ = 125_000_000


def _turn_stats(con, requests: list[str]) -> list[dict]:
    """Each request as its own conversation on an open console (`!new`, the request, `!stats`): the
    `!stats` of each turn."""
    from ..device.protocol import ask, stats, sync

    sync(con)
    turns = []
    for r in requests:
        ask(con, "!new", timeout=RUN_TIMEOUT_S)
        ask(con, r, timeout=max(getattr(con, "reply_timeout_s", 30), RUN_TIMEOUT_S))
        turns.append(stats(con, timeout=RUN_TIMEOUT_S))
    return turns


def turn_costs(board_name: str, elf: Path, requests: list[str]) -> dict:
    """Each request as its own conversation (`!new`, the request, `!stats`) on an emulated board: what
    its prefill (tokens fed in blocks), its decode (tokens chosen one at a time) and the whole turn
    cost, summed over the turns; in instructions on a board whose counter counts them, else in its
    cycles. Time to the first output byte per turn, and on rp2040js in ms at 125 MHz."""
    from ..device.transport import open_console
    from ..targets.boards import load_board

    board = load_board(board_name)
    instr = board.run.counter == "instructions"
    scale = board.run.counter_scale if instr else 1
    unit = "instructions" if instr else board.run.counter
    with open_console(board, artifact=Path(elf)) as con:
        turns = _turn_stats(con, requests)
    tot = {k: sum(t[k] for t in turns) for k in turns[0]}
    macs = tot["fed_macs"] + tot["chosen_macs"]
    firsts = sorted(t["first_cycles"] * scale for t in turns)
    row = {"board": board_name, "unit": unit, "turns": len(turns),
           "prefill": {"tokens": tot["fed"], "macs": tot["fed_macs"], unit: tot["fed_cycles"] * scale,
                       f"{unit}_per_mac": round(tot["fed_cycles"] * scale / max(tot["fed_macs"], 1), 3)},
           "decode": {"tokens": tot["chosen"], "macs": tot["chosen_macs"], unit: tot["chosen_cycles"] * scale,
                      f"{unit}_per_mac": round(tot["chosen_cycles"] * scale / max(tot["chosen_macs"], 1), 3)},
           "turn": {"macs": macs, unit: tot["cycles"] * scale,
                    f"{unit}_per_mac": round(tot["cycles"] * scale / max(macs, 1), 3),
                    "mean_of_turns_per_mac": round(sum(t["cycles"] / max(t["fed_macs"] + t["chosen_macs"], 1)
                                                       for t in turns) * scale / len(turns), 3)},
           "first_output": {"median": firsts[len(firsts) // 2], "mean": round(sum(firsts) / len(firsts)),
                            "max": firsts[-1], "unit": unit},
           "per_turn": [dict(t, request=r) for t, r in zip(turns, requests)]}
    if board_name == "rp2040js":
        row["first_output"]["ms_at_125_mhz"] = {k: round(row["first_output"][k] / RP2040_HZ * 1000, 1)
                                                for k in ("median", "mean", "max")}
    return row


def _inclusive_ir(out_file: Path, functions: tuple[str, ...]) -> dict[str, int]:
    """Each function's inclusive instruction count (itself and all it calls) from a callgrind file."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out_file)],
                          capture_output=True, text=True, check=True).stdout
    found: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+\S*?:?(\w+)(?: \[|$)", line)
        if m and m.group(2) in functions and m.group(2) not in found:
            found[m.group(2)] = int(m.group(1).replace(",", ""))
    return found


def host_turn_costs(elf: Path, requests: list[str], workdir: Path) -> dict:
    """turn_costs on the x86-64 host build, in instructions from callgrind: the same conversation per
    request (`!new`, the request, `!stats`), the MACs from `!stats`, and the instructions executed inside
    ta_engine_feed (prefill), ta_engine_step (decode) and ta_agent_turn (the whole turn), each inclusive
    of what it calls. The host board's own counter is CPU time, so its `!stats` cycles are not used."""
    from ..device.transport import open_console

    if not shutil.which("valgrind") or not shutil.which("callgrind_annotate"):
        raise TinyAgentError("valgrind is not installed (apt-get install valgrind)")
    out_file = Path(workdir) / "callgrind-turns.out"
    con = open_console(_callgrind_host(out_file), artifact=Path(elf))
    try:
        turns = _turn_stats(con, requests)
    finally:
        con.hang_up(timeout=60)  # the host program exits when its pty closes; callgrind then writes its file
    if not out_file.is_file():
        raise TinyAgentError("callgrind wrote no file (did the program exit cleanly?)")
    ir = _inclusive_ir(out_file, ("ta_engine_feed", "ta_engine_step", "ta_agent_turn"))
    decoded = sum(t["chosen"] for t in turns)
    needed = ("ta_engine_feed", "ta_agent_turn") + (("ta_engine_step",) if decoded else ())
    missing = [f for f in needed if f not in ir]
    if missing:
        raise TinyAgentError(f"callgrind_annotate lists no {', '.join(missing)} in {out_file}")
    fed_macs = sum(t["fed_macs"] for t in turns)
    chosen_macs = sum(t["chosen_macs"] for t in turns)
    feed, step, turn = ir["ta_engine_feed"], ir.get("ta_engine_step", 0), ir["ta_agent_turn"]
    return {"board": "host", "unit": "instructions", "counter": "callgrind (x86-64, -O2)", "turns": len(turns),
            "prefill": {"tokens": sum(t["fed"] for t in turns), "macs": fed_macs, "instructions": feed,
                        "instructions_per_mac": round(feed / max(fed_macs, 1), 3)},
            "decode": {"tokens": decoded, "macs": chosen_macs, "instructions": step,
                       "instructions_per_mac": round(step / max(chosen_macs, 1), 3)},
            "turn": {"macs": fed_macs + chosen_macs, "instructions": turn,
                     "instructions_per_mac": round(turn / max(fed_macs + chosen_macs, 1), 3)}}


def run_turn_bench(out: str | Path = "bench/results", run: str | Path | None = None,
                   boards: tuple[str, ...] = ("mps2-an386", "rp2040js", "host"), requests: str | Path = TURN_REQUESTS,
                   n: dict | None = None, name: str = "turns.json") -> dict:
    """Whole turns of the hand-written requests (tests/handwritten/default.tsv) on each board, the
    shipped model with its gate: out/name. "host" is the x86-64 build under callgrind
    (host_turn_costs). `n` limits the requests per board ({"rp2040js": 60}: the JavaScript emulator
    runs a turn in seconds)."""
    from ..targets.build import build
    from ..training.evaluate import load_requests

    out = make_dir(out)
    run = Path(run) if run else DEFAULT_RUN
    texts = [r.text for r in load_requests(requests)]
    work = Path(tempfile.mkdtemp(prefix="bench-turns-", dir=out))
    res: dict = {"machine": machine(), "requests": str(requests)}
    try:
        for board in boards:
            k = (n or {}).get(board, len(texts))
            art = build(board, work / board, run, replace=True).artifact
            if board == "host":  # its counter is CPU time: instructions from callgrind instead
                _section(res, board, host_turn_costs, art, texts[:k], work)
            else:
                _section(res, board, turn_costs, board, art, texts[:k])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_json(out / name, res)
    return res


# ---- where the RP2040's cycles go -------------------------------------------------------------------

def rp2040_profile(elf: Path, requests: list[str], top: int = 20) -> dict:
    """Cycles per function over whole turns of `requests` on rp2040js: run.mjs with TA_RP2040_PROFILE
    adds up every instruction's cycles by address; the ELF's symbols (objdump -t) map them to functions.
    Waiting for input (`ta_hal_poll`) is counted too, apart."""
    from ..targets.boards import load_board

    board = load_board("rp2040js")
    with tempfile.TemporaryDirectory() as tmp:
        prof = Path(tmp) / "profile.json"
        cmd = [board.run.command[0], board.run.command[1], str(elf)]
        subprocess.run(cmd, input="".join(f"{r}\n" for r in requests).encode(), capture_output=True,
                       env={**os.environ, "TA_RP2040_PROFILE": str(prof)}, timeout=RUN_TIMEOUT_S,
                       check=True)
        cycles = {int(a): c for a, c in json.loads(prof.read_text()).items()}
    table = subprocess.run([board.toolchain.prefix + "objdump", "-t", str(elf)], capture_output=True, text=True,
                           check=True).stdout
    funcs = sorted((int(m.group(1), 16) & ~1, int(m.group(3), 16), m.group(4)) for m in
                   re.finditer(r"(?m)^([0-9a-f]{8}) (.{7}) \S+\t([0-9a-f]{8}) +(?:\.hidden +)?(\S+)$", table)
                   if "F" in m.group(2))
    starts = [f[0] for f in funcs]
    per: dict[str, int] = {}
    for addr, c in cycles.items():
        i = bisect.bisect_right(starts, addr) - 1
        name = funcs[i][2] if i >= 0 and addr < funcs[i][0] + max(funcs[i][1], 2) else "(other)"
        per[name] = per.get(name, 0) + c
    total = sum(per.values())
    ranked = sorted(per.items(), key=lambda kv: -kv[1])
    return {"requests": len(requests), "cycles": total,
            "functions": [{"name": n, "cycles": c, "share": round(c / total, 4)} for n, c in ranked[:top]]}


def run_rp2040_profile(out: str | Path = "bench/results", run: str | Path | None = None,
                       requests: str | Path = TURN_REQUESTS, n: int = 20, name: str = "rp2040-profile.json") -> dict:
    """rp2040_profile over the first n hand-written requests, the shipped model: out/name."""
    from ..targets.build import build
    from ..training.evaluate import load_requests

    out = make_dir(out)
    texts = [r.text for r in load_requests(requests)][:n]
    work = Path(tempfile.mkdtemp(prefix="bench-profile-", dir=out))
    try:
        art = build("rp2040js", work / "rp2040js", Path(run) if run else DEFAULT_RUN, replace=True).artifact
        res = {"machine": machine(), "board": "rp2040js", **rp2040_profile(art, texts)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_json(out / name, res)
    return res


# ---- memory --------------------------------------------------------------------------------------

def memory_row(board: str, out: Path, run: Path) -> dict:
    from ..targets.build import build

    try:
        r = build(board, out, run, replace=True)
    except TinyAgentError as e:
        return {"fits": False, "error": str(e).splitlines()[0]}
    p = r.plan
    row = {"fits": p.fits(), "flash_plan": p.flash_total, "ram_plan": p.ram_total,
           "flash_budget": p.flash_budget, "ram_budget": p.ram_budget, "flash": p.flash, "ram": p.ram,
           "artifact": str(r.artifact) if r.artifact else None}
    if p.linker:
        lk = p.linker
        stack = p.ram.get("stack (deepest call path)", 0)
        row.update(linker_flash=lk["text"] + lk["data"], linker_static_ram=lk["data"] + lk["bss"],
                   agree=p.flash_total == lk["text"] + lk["data"] and p.ram_total - stack == lk["data"] + lk["bss"])
    return row


# ---- quality, TFLM, pipeline ---------------------------------------------------------------------

def quality(run: Path, n: int | None, stages: tuple[str, ...] | None) -> dict:
    """The held-out eval, live (`stages` on the first `n` examples; None: all), next to the run's saved
    eval.json (what `tinyagent eval` measured on the whole held-out set)."""
    import json

    from ..training.evaluate import EVAL_FILE, evaluate

    rep = evaluate(run, n=n, stages=stages, save=False)
    out = {"heldout_examples": rep["heldout_examples"], "stages": rep["stages"]}
    if (run / EVAL_FILE).is_file():
        saved = json.loads((run / EVAL_FILE).read_text())
        out["saved_eval"] = {"heldout_examples": saved.get("heldout_examples"), "stages": saved.get("stages")}
    return out


def heldout_tokens(run: Path, n_tokens: int) -> list[int] | None:
    """The first `n_tokens` of the held-out transcripts, end to end: real text, not random ids (None for
    a run with no corpus, e.g. a random test model: compare_with_tflm then draws random ids)."""
    import json

    from ..agent.corpus import as_read
    from ..agent.tokenizer import load_tokenizer
    from ..training.evaluate import heldout_examples
    from ..training.run import open_run

    if "corpus" not in json.loads((run / "run.json").read_text()):
        return None
    r = open_run(run, writer=False)
    bpe = load_tokenizer(r.path / "tokenizer.json")
    ids: list[int] = []
    for ex in heldout_examples(r, None)[1]:
        ids += bpe.encode(as_read(ex))
        if len(ids) >= n_tokens:
            break
    return ids[:n_tokens]


def tflm(run: Path, n_tokens: int, repeats: int) -> dict:
    from .tflm import compare_with_tflm

    r = compare_with_tflm(run / "int8", tokens=heldout_tokens(run, n_tokens), repeats=repeats)
    return {k: r[k] for k in ("tflm_version", "tokens", "bit_exact", "emulated_exactly", "free_running",
                              "arena_bytes", "flash_bytes", "time_us_per_token")}


def pipeline(run: Path) -> dict:
    import json

    f = run / "run.json"
    if not f.is_file():
        return {"error": f"{f}: no run.json"}
    stages = json.loads(f.read_text()).get("stages", {})
    rows = {s: {"status": d.get("status"), "seconds": d.get("seconds"), "steps": d.get("steps", d.get("step"))}
            for s, d in stages.items()}
    if not any(r["seconds"] is not None for r in rows.values()):
        return {"note": "per-stage seconds not recorded in run.json", "stages": rows}
    return {"stages": rows}


# ---- the whole bench -----------------------------------------------------------------------------

def _section(results: dict, name: str, fn, *args):
    from rich.console import Console

    t0 = time.time()
    Console(stderr=True).print(f"[bold]bench[/bold]: {name} ...")
    try:
        results[name] = fn(*args)
    except Exception as e:  # noqa: BLE001 -- one failing section must not lose the others
        results[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
    results.setdefault("section_seconds", {})[name] = round(time.time() - t0, 1)
    return results[name]


def run_bench(out: str | Path = "bench/results", quick: bool = False, run: str | Path | None = None,
              boards: tuple[str, ...] = MEMORY_BOARDS, sizes: dict[str, ModelConfig] | None = None,
              callgrind: bool = True) -> dict:
    """Measure everything (module doc), print tables, write out/bench.json; returns the results."""
    from ..integer.intmodel import load_int_model
    from ..targets.boards import load_board
    from ..training.checkpoint import load_model

    out = make_dir(out)  # a folder that cannot be written: one line now, not after the measurements
    run = Path(run) if run else DEFAULT_RUN
    sizes = SIZES if sizes is None else sizes
    n_tok = 16 if quick else 64
    repeats = 1 if quick else 3
    work = Path(tempfile.mkdtemp(prefix="bench-", dir=out))
    res: dict = {"machine": machine(), "quick": quick, "tokens_per_run": n_tok}

    models = {}  # name -> (run folder, float GPT or None, trained?)
    if trained(run):
        stage = next((s for s in ("pruned", "student") if (run / s / "model.safetensors").is_file()), None)
        models["default"] = (run, load_model(run / stage).eval() if stage else None, True)
    else:
        cfg = STUDENT
        rf, m = random_run(work / "default-random", cfg, _template_run(run))
        models["default"] = (rf, m, False)
        res["default_note"] = f"{run} has no trained int8 model yet: 'default' is a random {cfg.to_dict()}"
    for name, cfg in sizes.items():
        rf, m = random_run(work / f"{name}-random", cfg, _template_run(models["default"][0]))
        models[name] = (rf, m, False)
    res["models"] = {n: {"run": str(rf), "trained": tr, "config": load_int_model(rf / "int8").cfg.to_dict(),
                         "params": load_int_model(rf / "int8").cfg.n_params()} for n, (rf, _, tr) in models.items()}

    res["speed"], res["instructions"], res["memory"] = {}, {}, {}
    for name, (rf, m, _) in models.items():
        im = load_int_model(rf / "int8")
        ids = _ids(im.cfg, min(n_tok, im.cfg.ctx))
        row = res["speed"][name] = {}
        host = memory_row("host", work / f"build-{name}-host", rf)
        if host.get("artifact"):
            _section(row, "c_host", time_c_engine, "host", Path(host["artifact"]), ids, repeats)
        else:
            row["c_host"] = {"error": host.get("error", "no host build")}
        _section(row, "numpy_reference", time_reference, im, ids, repeats)
        if m is not None:
            _section(row, "torch_float", time_torch, m, ids, repeats)
        c, npy, tf = (row.get(k, {}).get("tokens_per_s") for k in ("c_host", "numpy_reference", "torch_float"))
        row["ratios"] = {"c_over_numpy": round(c / npy, 1) if c and npy else None,
                         "c_over_torch": round(c / tf, 1) if c and tf else None}
        # instructions: the whole context, so the mean position is ctx/2 as in macs_per_token's default
        if callgrind and host.get("artifact"):
            full = _count_ids(im.cfg, quick)
            ins = _section(res["instructions"], name, callgrind_instructions, Path(host["artifact"]), full,
                           work / f"build-{name}-host")
            macs = mean_macs(im.cfg, len(full))
            ins["macs_per_token"] = round(macs)
            if "instructions_per_token" in ins:
                ins["instructions_per_mac"] = round(ins["instructions_per_token"] / macs, 3)
        if name == "default":
            res["memory"] = {b: (host if b == "host" else memory_row(b, work / f"build-{name}-{b}", rf))
                             for b in boards}
        else:
            res["memory_" + name] = {"host": host}
    # the default model on each emulated board, with the callgrind row's ids
    cfg = load_int_model(models["default"][0] / "int8").cfg
    full = _count_ids(cfg, quick)
    for b in boards:
        if load_board(b).run.kind != "qemu":
            continue
        built = res["memory"].get(b, {})
        if built.get("artifact"):
            _section(res["instructions"], b, board_instructions, b, Path(built["artifact"]), full,
                     mean_macs(cfg, len(full))).setdefault("board", b)
        else:
            res["instructions"][b] = {"board": b, "error": f"not built: {built.get('error', 'no program')}"}

    rf_default, _, is_trained = models["default"]
    if is_trained:
        _section(res, "quality", quality, rf_default, 200 if quick else None, ("int8",) if quick else None)
    else:
        res["quality"] = {"note": "no trained model: quality needs models/default"}
    _section(res, "tflm", tflm, rf_default, 8 if quick else 32, 1 if quick else 3)
    res["pipeline"] = pipeline(run if (run / "run.json").is_file() else REPO / "runs" / "default")

    shutil.rmtree(work, ignore_errors=True)
    for rows in (res["memory"], *(v for k, v in res.items() if k.startswith("memory_"))):
        for r in rows.values():
            r.pop("artifact", None)
    write_json(out / RESULTS_FILE, res)
    print_tables(res)
    return res


def print_tables(res: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    m = res["machine"]
    con.print(f"{m['cpu']} | {m['platform']} | commit {m['git_commit'][:12]}{' (dirty)' if m['git_dirty'] else ''}")
    if res.get("default_note"):
        con.print(f"[yellow]{res['default_note']}[/yellow]")

    t = Table(title="host speed (best of runs)")
    for col in ("model", "params", "engine", "first token ms", "tokens/s"):
        t.add_column(col, justify="right" if col not in ("model", "engine") else "left")
    for name, row in res["speed"].items():
        for eng in ("c_host", "numpy_reference", "torch_float"):
            r = row.get(eng)
            if r:
                t.add_row(name, f"{res['models'][name]['params']:,}", eng, str(r.get("ttft_ms", r.get("error", ""))),
                          str(r.get("tokens_per_s", "")))
        t.add_row(name, "", "C / numpy, C / torch", "", f"{row['ratios']['c_over_numpy']}x, {row['ratios']['c_over_torch']}x")
    con.print(t)

    t = Table(title="instructions per token (host: callgrind inside ta_engine_step; "
                    "emulated boards: !bench under QEMU -icount, default model)")
    for col in ("board", "model", "instr/token", "MACs/token", "instr/MAC"):
        t.add_column(col, justify="right")
    for name, r in res["instructions"].items():
        if name == "section_seconds":
            continue
        where, model = (r["board"], "default") if "board" in r else ("host x86-64 (callgrind)", name)
        what = r.get("instructions_per_token", str(r.get("error", r.get("note", "")))[:90])
        if "cycles_per_token" in r:
            what = f"{r['cycles_per_token']} {r['counter']} units (not instructions)"
        t.add_row(where, model, str(what), f"{r.get('macs_per_token', '')}", f"{r.get('instructions_per_mac', '')}")
    con.print(t)

    t = Table(title="memory per board (default model)")
    for col in ("board", "fits", "flash plan", "flash linker", "RAM plan", "static RAM linker", "agree"):
        t.add_column(col, justify="right")
    for b, r in res["memory"].items():
        if "error" in r:
            t.add_row(b, "no", r["error"][:90], "", "", "", "")
        else:
            t.add_row(b, "yes" if r["fits"] else "no", f"{r['flash_plan']:,}", f"{r.get('linker_flash', 0):,}",
                      f"{r['ram_plan']:,}", f"{r.get('linker_static_ram', 0):,}", str(r.get("agree")))
    con.print(t)

    q = res.get("quality", {})
    if "stages" in q:
        for title, part in ((f"quality, live ({q['heldout_examples']} held-out examples)", q),
                            (f"quality, the run's eval.json ({q.get('saved_eval', {}).get('heldout_examples')} "
                             "held-out examples)", q.get("saved_eval"))):
            if not part or not part.get("stages"):
                continue
            t = Table(title=title)
            keys = sorted({k for r in part["stages"].values() for k in r})
            t.add_column("stage")
            for k in keys:
                t.add_column(k, justify="right")
            for s, r in part["stages"].items():
                t.add_row(s, *(str(r.get(k, "")) for k in keys))
            con.print(t)
    else:
        con.print(f"quality: {q}")
    tf = res.get("tflm", {})
    con.print(f"tflm: {tf if 'error' in tf else {k: tf.get(k) for k in ('tokens', 'bit_exact', 'free_running', 'arena_bytes', 'time_us_per_token')}}")
    con.print(f"pipeline: {res['pipeline']}")
