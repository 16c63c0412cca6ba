"""`tinyagent test`: the device against the integer reference, step by step.

1. The device runs the model's model hash (`!info`).
2. Token sequences (held-out transcripts, and random sequences up to the full context): at every step
   the device's argmax and FNV-1a checksum of its int32 logits equal the reference's (`!run`).
3. The device's tokenizer gives the host tokenizer's ids (`!tokx`, raw bytes).
4. Single turns: the device's tool calls and answer equal the reference agent's, fed the same tool
   results (the device prints each result it used, so real sensors are no obstacle).
5. Whole conversations of several turns (after `!new`), the same way turn by turn: the earlier turns
   stay in the context on both sides; one conversation overflows the context (the oldest turns are
   dropped), one has a turn the safety gate refuses (which leaves no trace; a question is answered yes).
Any difference names the first prompt and step that differ; the command then exits non-zero.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import bad_input
from ..integer.intmath import fnv1a32_i32
from . import protocol
from .chat import open_device
from .protocol import ask

N_TRANSCRIPTS = 6
N_CONVERSATIONS = 6  # single turns
CONVERSATION_TURNS = (3, 4)  # the plain multi-turn conversations
OVERFLOW_TURNS_MAX = 6  # long requests, until the oldest turns are dropped
REFUSAL_TRIES = 40  # requests tried on the reference to find one the gate refuses
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
    from ..integer.reference import forward_seq

    logits = forward_seq(im, ids)
    return [(int(row.argmax()), f"{fnv1a32_i32(row):08x}") for row in logits]


def compare_steps(name: str, want, got) -> Check:
    for i, (w, g) in enumerate(zip(want, got)):
        if w != g:
            return Check("logits", name, len(want), False,
                         f"step {i}: device argmax {g[0]} checksum {g[1]}, reference {w[0]} {w[1]}")
    if len(got) != len(want):
        return Check("logits", name, len(want), False, f"device printed {len(got)} steps, expected {len(want)}")
    return Check("logits", name, len(want), True)


def parse_turn(text: str) -> tuple[list[tuple[str, str]], str]:
    """Device reply -> ([(call, result)], answer). Lines end at "\n" only: an answer may hold any other
    byte the model wrote, "\r" too (str.splitlines would cut it there)."""
    calls, answer = [], []
    for line in text.split("\n"):
        if line.startswith("[") and "] -> " in line:
            call, result = line[1:].split("] -> ", 1)
            calls.append((call, result))
        else:
            answer.append(line)
    return calls, "\n".join(answer).strip("\n")


def compare_conversation(console, conv, requests: list[str], what: str, until_dropped: bool = False) -> Check:
    """The requests as one conversation on the device (after !new) and in `conv`, turn by turn: the
    same calls and answer, the device's tool results replayed into the reference. `until_dropped`:
    stop after the third turn or any later one once the oldest turns were dropped."""
    from ..agent.conversation import RequestTooLong

    got = ask(console, "!new")
    if got != "ok\n":
        return Check("conversation", what, 0, False, f"device answered !new with {got.strip()[:60]!r}")
    steps = dropped = refused = 0
    for i, request in enumerate(requests):
        calls, answer = parse_turn(ask(console, request))
        results = iter([r for _, r in calls])
        try:
            turn = conv.turn(lambda tool, args: next(results, "?"), request)
            want = (turn.calls, turn.answer)
        except RequestTooLong as e:
            turn, want = None, ([], f"error: {e}")
        if (calls, answer) != want:
            return Check("conversation", what, steps, False,
                         f"turn {i + 1} ({request[:30]!r}): device {calls} {answer!r}; reference {want[0]} {want[1]!r}")
        if turn is not None:
            steps += len(turn.generated)
            dropped += turn.dropped
            refused += bool(turn.refused)
        if until_dropped and dropped and i >= 2:
            break
    n = i + 1
    name = what if n == 1 else (f"{what}: {n} turns" + (f", {dropped} dropped" if dropped else "")
                                + (f", {refused} refused" if refused else ""))
    return Check("conversation", name, steps, True)


def conversation_plans(requests: list[str], bpe, ctx: int, rng: random.Random) -> list[tuple[str, list[str]]]:
    """Multi-turn conversations of held-out requests, and OVERFLOW_TURNS_MAX long requests (several
    joined, each about 0.45 of the room) for one that overflows the context."""
    from ..agent.conversation import REPLY_RESERVE

    plans = [("conversation", [rng.choice(requests) for _ in range(n)]) for n in CONVERSATION_TURNS]
    room = ctx - REPLY_RESERVE
    long = []
    for _ in range(OVERFLOW_TURNS_MAX):
        text = rng.choice(requests)
        while len(bpe.encode(text + "\n")) < 0.45 * room:
            more = f"{text}, and {rng.choice(requests)}"
            if len(bpe.encode(more + "\n")) > room:
                break
            text = more
        long.append(text)
    plans.append(("overflow", long))
    return plans


def find_refusal(conv, requests: list[str], rng: random.Random) -> list[str] | None:
    """Three turns whose second the reference's safety gate refuses (a value out of range: the
    requests' numbers made large, or a call below the confidence gate), or None if none was found.
    The first turn makes no call, so no tool result of the device's can steer the refusal. After a
    clarifying question, "yes" comes third: the refused turn resumes with that call run."""
    from ..agent.conversation import RequestTooLong

    def turns(reqs: list[str]):
        conv.new()
        return [conv.turn(lambda tool, args: "ok", r) for r in reqs]

    tries = [re.sub(r"\d+", "99999", r) for r in requests if re.search(r"\d", r)] + list(requests)
    rng.shuffle(tries)
    firsts = [r for r in rng.sample(requests, min(len(requests), 10)) if not turns([r])[0].calls]
    if not firsts:
        return None
    first, last = firsts[0], rng.choice(requests)
    for request in tries[:REFUSAL_TRIES]:
        try:
            refused = turns([first, request])[1].refused
            if refused:
                return [first, request] + (["yes"] if refused == "unsure" else []) + [last]
        except RequestTooLong:
            continue
    return None


def conformance(board: str | None = None, out: str | None = None, port: str | None = None,
                baud: int = 115200, seed: int = 0) -> Results:
    from ..agent.conversation import Conversation, TokenClasses, load_min_margin
    from ..agent.grammar import grammar_from_spec
    from ..agent.tokenizer import load_tokenizer
    from ..codegen.generate import ENGINE_VERSION
    from ..integer.intmodel import load_int_model
    from ..integer.reference import Reference
    from ..targets.build import load_build
    from ..training.evaluate import heldout_examples
    from ..training.run import open_run

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
        dev_info = protocol.info(console)
        same = dev_info.get("model") == info["model_hash"]
        res.checks.append(Check("model", "model hash", 0, same,
                                "" if same else f"device runs {dev_info.get('model', '?')[:12]}, "
                                                f"build is {info['model_hash'][:12]}"))
        engine = dev_info.get("engine") == str(ENGINE_VERSION)
        res.checks.append(Check("model", "engine version", 0, engine,
                                "" if engine else f"device runs engine {dev_info.get('engine', '?')}, "
                                                  f"this tinyagent generates for engine {ENGINE_VERSION}"))
        if not (same and engine):
            return res
        # 2. logits, step by step
        for i, ids in enumerate(transcripts + randoms):
            name = f"transcript {i}" if i < len(transcripts) else f"random {len(ids)} tokens"
            res.checks.append(compare_steps(name, reference_steps(im, ids), protocol.run(console, ids)))
        # 3. tokenizer
        strings = [s.encode() for s in TOKENIZER_STRINGS] + [bytes(rng.randrange(256) for _ in range(60))]
        for s in strings:
            got = protocol.tokenize(console, s)
            want = list(bpe.encode(s))
            res.checks.append(Check("tokenizer", repr(s[:24]), len(want), got == want,
                                    "" if got == want else f"device {' '.join(map(str, got[:12]))}, host "
                                                          f"{' '.join(map(str, want[:12]))}"))
        # 4. single turns: replay the device's tool results into the reference agent
        ref, tc, grammar = Reference(im), TokenClasses(bpe), grammar_from_spec(spec)
        for ex in examples[N_TRANSCRIPTS:N_TRANSCRIPTS + N_CONVERSATIONS]:
            res.checks.append(compare_conversation(console, Conversation(ref, tc, grammar, im.cfg.ctx, min_margin),
                                                   [ex.request], repr(ex.request[:40])))
        # 5. whole conversations
        requests = [ex.request for ex in examples[N_TRANSCRIPTS + N_CONVERSATIONS:]] or [ex.request for ex in examples]
        convs = conversation_plans(requests, bpe, im.cfg.ctx, rng)
        refusal = find_refusal(Conversation(ref, tc, grammar, im.cfg.ctx, min_margin), requests, rng)
        if refusal:
            convs.append(("conversation", refusal))
        for what, reqs in convs:
            res.checks.append(compare_conversation(console, Conversation(ref, tc, grammar, im.cfg.ctx, min_margin),
                                                   reqs, what, until_dropped=what == "overflow"))
    return res


def load_build_manifest(out: str, board: str | None = None) -> dict:
    from ..targets.build import read_manifest

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
