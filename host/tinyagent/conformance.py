"""`tinyagent test`: the device against the integer reference, step by step.

1. The device runs the model's model hash (`!info`).
2. Token sequences (held-out transcripts, and random sequences up to the full context): at every step
   the device's argmax and FNV-1a checksum of its int32 logits equal the reference's (`!run`).
3. The device's tokenizer gives the host tokenizer's ids (`!tokx`, raw bytes).
4. Whole conversations: the device's tool calls and answer equal the reference agent's, fed the same
   tool results (the device prints each result it used, so real sensors are no obstacle).
Any difference names the first prompt and step that differ; the command then exits non-zero.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .device import ask, open_device
from .errors import bad_input
from .intmath import fnv1a32_i32

N_TRANSCRIPTS = 6
N_CONVERSATIONS = 6
TOKENIZER_STRINGS = ("turn on the light", "Set a timer for 5 minutes, please!", "gpio 5 1\n[x]",
                     "héllo wörld ✓", "  double  spaces\tand tabs ", "")


@dataclass
class Check:
    kind: str
    name: str
    steps: int
    ok: bool
    detail: str = ""


@dataclass
class Results:
    board: str
    model_hash: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)


def reference_steps(im, ids: list[int]) -> list[tuple[int, str]]:
    from .reference import forward_seq

    logits = forward_seq(im, ids)
    return [(int(row.argmax()), f"{fnv1a32_i32(row):08x}") for row in logits]


def device_steps(console, ids: list[int]) -> list[tuple[int, str]]:
    text = ask(console, "!run " + " ".join(map(str, ids)))
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "step":
            out.append((int(parts[2]), parts[3]))
        elif line.startswith("error"):
            raise bad_input(f"{console.name}: device refused !run: {line}")
    return out


def compare_steps(name: str, want, got) -> Check:
    for i, (w, g) in enumerate(zip(want, got)):
        if w != g:
            return Check("logits", name, len(want), False,
                         f"step {i}: device argmax {g[0]} checksum {g[1]}, reference {w[0]} {w[1]}")
    if len(got) != len(want):
        return Check("logits", name, len(want), False, f"device printed {len(got)} steps, expected {len(want)}")
    return Check("logits", name, len(want), True)


def parse_turn(text: str) -> tuple[list[tuple[str, str]], str]:
    """Device reply -> ([(call, result)], answer)."""
    calls, answer = [], []
    for line in text.splitlines():
        if line.startswith("[") and "] -> " in line:
            call, result = line[1:].split("] -> ", 1)
            calls.append((call, result))
        else:
            answer.append(line)
    return calls, "\n".join(answer).strip("\n")


def conformance(board: str | None = None, out: str | None = None, port: str | None = None,
                baud: int = 115200, seed: int = 0) -> Results:
    from .agent import TokenClasses, load_min_margin, run_turn
    from .build import load_build
    from .evaluate import heldout_examples
    from .grammar import grammar_from_spec
    from .intmodel import load_int_model
    from .reference import Reference
    from .run import open_run
    from .tokenizer import load_tokenizer

    if not out and not board:
        on = f"the board on {port}" if port else "the board"
        raise bad_input(f"say which build {on} runs, to check it against: --out DIR (the build folder) "
                        "or --board BOARD (build/BOARD)")
    info = load_build_manifest(out or f"build/{board}", board)
    if not info.get("run") or not info.get("model_hash"):
        raise bad_input(f"{out or f'build/{board}'}: the build manifest names no run or model hash to check "
                        "the device against; rebuild with `tinyagent build --replace`")
    if not port:  # the build's program, checked before the reference is loaded (open_device runs it)
        load_build(out or f"build/{board}", board)
    run = Path(info["run"])
    im = load_int_model(run / "int8")
    min_margin = load_min_margin(run / "int8")
    bpe = load_tokenizer(run / "tokenizer.json")
    rng = random.Random(seed)
    res = Results(board or info["board"], info["model_hash"])

    spec, examples = heldout_examples(open_run(run, writer=False), None)
    examples = rng.sample(examples, min(len(examples), 40))
    transcripts = [bpe.encode(ex.request + "\n" + "".join(f"[{c}]{r}\n" for c, r in ex.calls) + ex.answer + "\n")
                   [:im.cfg.ctx] for ex in examples[:N_TRANSCRIPTS]]
    randoms = [[rng.randrange(im.cfg.vocab_size) for _ in range(n)] for n in (1, im.cfg.ctx)]

    console = open_device(None if port else (board or info["board"]), out, port, baud)
    with console:
        # 1. the device runs this model
        dev_info = dict(kv.split("=", 1) for kv in ask(console, "!info").split() if "=" in kv)
        same = dev_info.get("model") == info["model_hash"]
        res.checks.append(Check("model", "model hash", 0, same,
                                "" if same else f"device runs {dev_info.get('model', '?')[:12]}, "
                                                f"build is {info['model_hash'][:12]}"))
        if not same:
            return res
        # 2. logits, step by step
        for i, ids in enumerate(transcripts + randoms):
            name = f"transcript {i}" if i < len(transcripts) else f"random {len(ids)} tokens"
            res.checks.append(compare_steps(name, reference_steps(im, ids), device_steps(console, ids)))
        # 3. tokenizer
        strings = [s.encode() for s in TOKENIZER_STRINGS] + [bytes(rng.randrange(256) for _ in range(60))]
        for s in strings:
            got = ask(console, "!tokx " + s.hex()).split()[1:]
            want = [str(t) for t in bpe.encode(s)]
            res.checks.append(Check("tokenizer", repr(s[:24]), len(want), got == want,
                                    "" if got == want else f"device {' '.join(got[:12])}, host {' '.join(want[:12])}"))
        # 4. conversations: replay the device's tool results into the reference agent
        ref, tc, grammar = Reference(im), TokenClasses(bpe), grammar_from_spec(spec)
        for ex in examples[N_TRANSCRIPTS:N_TRANSCRIPTS + N_CONVERSATIONS]:
            calls, answer = parse_turn(ask(console, ex.request))
            results = iter([r for _, r in calls])
            turn = run_turn(ref, tc, grammar, lambda tool, args: next(results, "?"), ex.request, im.cfg.ctx,
                            min_margin=min_margin)
            ok = turn.calls == calls and turn.answer == answer
            detail = "" if ok else f"device {calls} {answer!r}; reference {turn.calls} {turn.answer!r}"
            res.checks.append(Check("conversation", repr(ex.request[:40]), len(turn.generated), ok, detail))
    return res


def load_build_manifest(out: str, board: str | None = None) -> dict:
    from .build import read_manifest

    return read_manifest(out, board)


def print_results(res: Results) -> bool:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"conformance on {res.board}: model {res.model_hash[:12]} vs the integer reference")
    for col in ("check", "what", "steps", "result"):
        t.add_column(col)
    for c in res.checks:
        t.add_row(c.kind, c.name, str(c.steps), "pass" if c.ok else f"FAIL: {c.detail}")
    Console().print(t)
    n_fail = sum(not c.ok for c in res.checks)
    Console().print(f"{len(res.checks) - n_fail} passed, {n_fail} failed")
    return res.ok
