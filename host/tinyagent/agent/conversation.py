"""The agent loop: one request in, tool calls and an answer out, in a conversation whose earlier turns
stay in the context. The device runs the same loop in C (firmware/ta_agent.c); `chat --board
reference` and the conformance test run this one.

An engine is anything with `reset()` and `step(token) -> logits` (the integer Reference, or the
float model through TorchEngine). A HAL is a callable `(tool, args) -> result text`.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from ..errors import bad_input
from .grammar import Grammar
from .naming import is_acknowledgement, names_tool
from .numbers import digits_for_numbers
from .tokenizer import BPE

MAX_CALLS = 4  # tool calls per turn
GATE_FILE = "gate.json"  # beside the integer model: the confidence gate's threshold
REPLY_RESERVE = 24  # tokens a request must leave free for the reply


class Engine(Protocol):
    def reset(self) -> None: ...
    def rewind(self, pos: int) -> None: ...  # the next token goes at `pos` (<= the current position)
    def step(self, token: int) -> np.ndarray: ...
    def feed(self, tokens: list[int]) -> np.ndarray: ...  # many steps; the last logits


Hal = Callable[[str, list[str]], str]


@dataclass
class Turn:
    request: str
    calls: list[tuple[str, str]] = field(default_factory=list)  # (call, result)
    answer: str = ""
    generated: list[int] = field(default_factory=list)  # token ids the model chose
    stop: str = "newline"  # "newline" | "context" | "refused"
    refused: str = ""  # "" | "unsure" (a write call below the confidence gate) | "range" (grammar overruled a value)
    margins: list[int] = field(default_factory=list)  # each call's confidence: its smallest top-1 margin
    dropped: int = 0  # the oldest turns of the conversation dropped to make room for this one


def load_min_margin(int8_dir) -> int:
    """The confidence gate's threshold stored with the integer model (0, no gate, if none was chosen)."""
    path = Path(int8_dir) / GATE_FILE
    if not path.is_file():
        return 0
    try:
        v = json.loads(path.read_text(encoding="utf-8")).get("min_margin")
    except (OSError, ValueError, AttributeError) as e:
        raise bad_input(f"{path}: not a gate file ({e}; expected {{\"min_margin\": N}})")
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 2**31 - 1:
        raise bad_input(f"{path}: min_margin {v!r} is not allowed (allowed: an integer 0..{2**31 - 1})")
    return v


class RequestTooLong(ValueError):
    pass


class TokenClasses:
    """Per-token facts the decoder needs, computed once per tokenizer."""

    def __init__(self, bpe: BPE):
        self.bpe = bpe
        self.open = bpe.byte_to_id[ord("[")]
        self.close = bpe.byte_to_id[ord("]")]
        self.newline = bpe.byte_to_id[ord("\n")]
        self.text = [b.decode("latin-1") for b in bpe.token_bytes]  # bytes as 1:1 chars for the grammar
        self.plain = np.array([not any(c in b for c in b"[]\n") for b in bpe.token_bytes])


def choose(logits: np.ndarray, allowed: Callable[[int], bool]) -> int:
    """Argmax over allowed tokens; the lowest index wins a tie."""
    logits = np.asarray(logits)
    order = np.lexsort((np.arange(len(logits)), -logits.astype(np.float64 if logits.dtype.kind == "f" else np.int64)))
    for t in order:
        if allowed(int(t)):
            return int(t)
    raise RuntimeError("no token allowed")  # cannot happen: ']' or some field continuation is always viable


def top_margin(logits: np.ndarray) -> tuple[int, int]:
    """(the unconstrained argmax, lowest index among equals; its lead over the next best logit)."""
    logits = np.asarray(logits).astype(np.int64 if logits.dtype.kind != "f" else np.float64)
    best = int(np.argmax(logits))
    if len(logits) < 2:
        return best, 0
    rest = np.delete(logits, best)
    if logits.dtype.kind == "f":
        return best, float(logits[best] - rest.max())
    return best, min(int(logits[best] - rest.max()), 2**31 - 1)  # as ta_agent.c: an int32 lead


def unsure_text(shown: str) -> str:
    return f"Sorry, I'm not sure what you want: did you mean [{shown}]? I did not run it. Say yes to run it."


CONFIRMATIONS = frozenset({"yes", "y", "yeah", "yep", "yup", "sure", "yes please", "please do", "do it",
                           "yes do it", "go ahead", "confirm"})


def is_confirmation(request: str) -> bool:
    """A reply that confirms the gate's question (ta_agent.c is_confirmation, byte for byte): ASCII
    letters, lower-cased, in words split by spaces, commas, full stops and exclamation marks, that are
    one of CONFIRMATIONS ("Yes, please!"); any other byte makes it not one ("yes?")."""
    words, word = [], ""
    for ch in request:
        if ch.isascii() and ch.isalpha():
            word += ch.lower()
        elif ch in " ,.!":
            if word:
                words.append(word)
            word = ""
        else:
            return False
    if word:
        words.append(word)
    return " ".join(words) in CONFIRMATIONS


def range_text(f, name: str) -> str:
    """The answer when the grammar had to overrule the model inside a value of a write call."""
    if f.kind == "enum":
        return f"Not done: {name} must be one of {', '.join(f.words)}."
    unit = " seconds" if f.kind == "dur" else ""
    return f"Not done: {name} must be {f.lo} to {f.hi}{unit}."


def run_turn(engine: Engine, tc: TokenClasses, grammar: Grammar, hal: Hal, request: str,
             ctx: int, on_text: Callable[[str], None] | None = None, calls_only: bool = False,
             min_margin: int = 0) -> Turn:
    """One turn from an empty context: a fresh Conversation's first turn (see Conversation.turn)."""
    return Conversation(engine, tc, grammar, ctx, min_margin).turn(hal, request, on_text, calls_only)


class Conversation:
    """Turns that share one context (docs/integer-contract.md, "Conversations"); firmware/ta_agent.c
    keeps the same state in static buffers.

    `ids` are the token ids in the context and `starts` the index of each whole turn's first token.
    A turn is its request + '\n', then every token chosen or fed during it, ending with the answer's
    '\n', which is chosen but not fed: `ids[fed:]` is that pending token (after a refusal, the line
    said and its '\n'), fed at the start of the next turn. Earlier turns are never recomputed, except
    when the oldest are dropped to make room: then the kept tokens move to position 0 and are fed
    again."""

    def __init__(self, engine: Engine, tc: TokenClasses, grammar: Grammar, ctx: int, min_margin: int = 0):
        self.engine, self.tc, self.grammar, self.ctx, self.min_margin = engine, tc, grammar, ctx, min_margin
        self.new()

    def new(self) -> None:
        """An empty context (the console's !new)."""
        self.asked: tuple | None = None  # the gate's open question: how to resume the refused turn
        self.recent: frozenset[str] = frozenset()  # the tools that ran in the last turn that ran a call
        self.said = ""  # the request being answered, as tokenised (naming.names_tool reads it)
        self.ids: list[int] = []
        self.starts: list[int] = []
        self.fed = 0  # ids[:fed] are in the engine's cache at positions 0..fed-1
        self.engine.reset()

    def load(self, turns: list[list[int]]) -> None:
        """Append whole turns given as token ids, each ending with its '\n' (fed by the next turn), as
        if they had been generated here; nothing is computed until the next turn."""
        for t in turns:
            if not t or t[-1] != self.tc.newline:
                raise ValueError(f"a loaded turn must end with the '\\n' token {self.tc.newline}: {t[-3:]}")
        for t in turns:
            self.starts.append(len(self.ids))
            self.ids.extend(int(x) for x in t)
            ran = frozenset(re.findall(r"(?:^|\n)\[([a-z][a-z0-9_]*)[ \]]", self.tc.bpe.decode(t)))
            if ran:
                self.recent = ran

    def _make_room(self, n_prompt: int) -> int:
        """Drop the fewest oldest turns that leave room for the prompt and the reply; how many."""
        n = len(self.ids)
        if n + n_prompt + REPLY_RESERVE <= self.ctx:
            return 0
        k = next((k for k in range(1, len(self.starts))
                  if n - self.starts[k] + n_prompt + REPLY_RESERVE <= self.ctx), len(self.starts))
        cut = self.starts[k] if k < len(self.starts) else n
        self.ids = self.ids[cut:]
        self.starts = [s - cut for s in self.starts[k:]]
        self.fed = 0
        self.engine.reset()
        return k

    def turn(self, hal: Hal, request: str, on_text: Callable[[str], None] | None = None,
             calls_only: bool = False) -> Turn:
        """One turn. `calls_only` stops where the answer would start (eval of tool calls needs no
        more; what was decoded stays in the context). A request too long for the context raises
        RequestTooLong and leaves the conversation as it was.

        The safety gate (docs/integer-contract.md, "Decoding"): a call of a tool that acts (spec effect
        "write") is not run, and the turn ends with one line saying so, when the grammar had to overrule
        the model's own choice inside it, or when its confidence (the smallest lead of the chosen token
        over the runner-up, over '[' and every token up to ']') is below `min_margin`. A negative
        `min_margin` turns the gate off (tests of the bare grammar, measurements of the gate itself).
        A refused turn before any call of it ran leaves no trace: the context is rolled back to where
        the turn started. After a call ran, the context keeps the turn up to that call's result and then
        the line the device said, as the turn's answer: it says what happened.

        A clarifying question ("did you mean [...]?") is answered by the next request: a confirmation
        (`is_confirmation`, "yes") resumes the refused turn with that call run, as if the model had
        been sure of it; anything else is a new turn, and the question is forgotten."""
        asked, self.asked = self.asked, None
        if asked is not None and is_confirmation(request):
            self.said = request
            return self._ran(self._resume(hal, request, asked, on_text, calls_only))
        self.said = digits_for_numbers(request)  # the device rewrites it so too
        prompt = self.tc.bpe.encode(self.said + "\n")
        limit = self.ctx - REPLY_RESERVE
        if len(prompt) > limit:
            raise RequestTooLong(f"request is too long ({len(prompt)} tokens; at most {limit} fit)")
        turn = Turn(request)
        turn.dropped = self._make_room(len(prompt))
        start = len(self.ids)
        self.starts.append(start)
        self.ids.extend(prompt)
        logits = self.engine.feed(self.ids[self.fed:])
        self.fed = len(self.ids)
        return self._ran(self._decode(turn, hal, logits, start, start, on_text, calls_only))

    def _ran(self, turn: Turn) -> Turn:
        if turn.calls:
            self.recent = frozenset(c.split(" ")[0] for c, _ in turn.calls)
        return turn

    def named(self, form) -> bool:
        """The request names the tool of `form`, or it ran in the last turn that ran a call and the
        request is more than an acknowledgement (naming.py)."""
        return (form.name in self.recent and not is_acknowledgement(self.said)) or \
            names_tool(self.said, form.names, form.units)

    def _resume(self, hal: Hal, request: str, asked: tuple, on_text, calls_only: bool) -> Turn:
        """The confirmed call of the refused turn: the context as it was when the call closed, then on."""
        start, call_open, head, call_ids, margin = asked
        if self.starts and self.starts[-1] == start:  # it stayed (a call ran before it): its line goes
            del self.ids[start:]
        else:
            self.starts.append(start)
        self.ids.extend(head + call_ids)
        self.fed = min(self.fed, call_open)
        self.engine.rewind(self.fed)
        logits = self.engine.feed(self.ids[self.fed:])
        self.fed = len(self.ids)
        turn = Turn(request)
        turn.generated.extend(call_ids[1:])  # '[' was chosen in the refused turn, the rest is replayed
        turn.margins.append(margin)
        call = "".join(self.tc.text[t] for t in call_ids[1:-1])
        return self._decode(turn, hal, logits, start, call_open, on_text, calls_only, confirmed=call)

    def _decode(self, turn: Turn, hal: Hal, logits, start: int, kept: int, on_text, calls_only: bool,
                confirmed: str | None = None) -> Turn:
        """Chooses tokens from `logits` on; `kept` is the context's end after the last call that ran.
        `confirmed`: a call whose ']' was just fed, run first without the gate."""
        tc, grammar, ctx, engine, min_margin = self.tc, self.grammar, self.ctx, self.engine, self.min_margin
        bpe = tc.bpe
        pos = len(self.ids)

        def fed(tokens: list[int]) -> None:
            self.ids.extend(tokens)
            self.fed = len(self.ids)

        in_call, call, line_start, answer = confirmed is not None, confirmed or "", True, b""
        call_open = pos  # where the call being decoded starts ('[')
        margin, overruled = 0, -1  # of the call being decoded; overruled: the field index (0: the name)
        emit = on_text or (lambda s: None)
        while True:
            if confirmed is not None:
                tok = tc.close  # fed already
            else:
                if pos >= ctx:
                    turn.stop = "context"
                    break
                if in_call:
                    def allowed(t: int) -> bool:
                        if t == tc.close:
                            return grammar.complete(call)
                        return bool(tc.plain[t]) and grammar.viable(call + tc.text[t])
                else:
                    can_open = line_start and len(turn.calls) < MAX_CALLS
                    def allowed(t: int) -> bool:
                        return t != tc.close and (t != tc.open or can_open)
                tok = choose(logits, allowed)
                best, lead = top_margin(logits)
                if in_call:
                    margin = min(margin, lead)
                    if best != tok and overruled < 0:
                        overruled = call.count(" ")
                elif tok == tc.open:
                    margin, overruled, call_open = lead, -1, pos
                if calls_only and not in_call and tok != tc.open:
                    break
                turn.generated.append(tok)
                if not in_call and tok == tc.newline:
                    self.ids.append(tok)  # the end of the answer: pending, the next turn feeds it
                    break
                logits = engine.step(tok)
                fed([tok])
                pos += 1
            if in_call and tok == tc.close:
                name, args = grammar.parse(call)  # durations in seconds: what is printed and what the HAL gets
                shown = " ".join([name] + args)
                form = grammar.form(name)
                if confirmed is None:
                    turn.margins.append(margin)
                    if form is not None and form.acts and min_margin >= 0 and (overruled >= 0 or margin < min_margin
                                                                         or not self.named(form)):
                        return self._refuse(turn, form, overruled, shown, start, kept, call_open, margin, emit)
                confirmed = None
                result = hal(name, args)
                turn.calls.append((shown, result))
                emit(f"[{shown}] -> {result}\n")
                res = bpe.encode(result + "\n")[:ctx - pos]  # a result that overflows the context is cut
                if res:
                    logits = engine.feed(res)
                    fed(res)
                    pos += len(res)
                kept = len(self.ids)
                in_call, call, line_start = False, "", True
            elif in_call:
                call += tc.text[tok]
            elif tok == tc.open:
                in_call = True
            else:
                line_start = False
                answer += bpe.token_bytes[tok]
                emit(bpe.token_bytes[tok].decode("utf-8", errors="replace"))
        turn.answer = answer.decode("utf-8", errors="replace")
        emit("\n")
        return turn

    def _refuse(self, turn: Turn, form, overruled: int, shown: str, start: int, kept: int, call_open: int,
                margin, emit) -> Turn:
        """The gate stops the call that just closed: its line is said, its tokens are taken back, and
        nothing more is decoded (see turn)."""
        tc = self.tc
        if overruled >= 1 and form.fields[overruled - 1].kind != "lit":
            text = range_text(form.fields[overruled - 1], form.arg_names[overruled - 1])
            turn.refused = "range"
        else:
            text = unsure_text(shown)
            turn.refused = "unsure"  # a question: a confirmation next resumes the turn from here
            self.asked = (start, call_open, self.ids[start:call_open], self.ids[call_open:], margin)
        turn.stop, turn.answer = "refused", text
        del self.ids[kept:]  # the refused call's tokens are taken back
        self.fed = kept
        self.engine.rewind(kept)
        if turn.calls:  # a call of this turn ran: the line said is its answer, pending
            self.ids.extend(tc.bpe.encode(text)[:self.ctx - kept - 1] + [tc.newline])
        else:  # no trace: back to where the turn started
            del self.starts[-1]
        emit(text + "\n")
        return turn


class SimHal:
    """The simulated board the reference talks to; the same behaviour as firmware/boards/sim/hal_sim_devices.c."""

    TEMP_DECI: int | None = 235  # 23.5 C; None: a board with no sensor (TA_HAL_NO_TEMP)

    def __init__(self, temp_deci: int | None = TEMP_DECI):
        self.TEMP_DECI = temp_deci
        self.led = False
        self.pins: dict[int, int] = {}
        self.t0 = time.monotonic()

    def _temp(self) -> str:
        t = self.TEMP_DECI
        if t is None:
            return "n/a"
        return f"{'-' if t < 0 else ''}{abs(t) // 10}.{abs(t) % 10}"

    def __call__(self, tool: str, args: list[str]) -> str:
        up = int(time.monotonic() - self.t0)
        if tool == "led":
            self.led = {"on": True, "off": False}.get(args[0], not self.led)
            return "on" if self.led else "off"
        if tool == "gpio":
            self.pins[int(args[0])] = int(args[1])
            return "ok"
        if tool == "temp":
            return self._temp()
        if tool == "uptime":
            return str(up)
        if tool == "timer":
            return "ok"
        if tool == "status":
            return f"led={'on' if self.led else 'off'} temp={self._temp()} up={up}"
        return "ok"  # a user's tool with no simulated behaviour


class TorchEngine:
    """The float (or QAT) torch model behind the Engine interface, for eval and comparison."""

    def __init__(self, model):
        import torch

        self.torch, self.model, self.ids = torch, model, []
        model.eval()

    def reset(self) -> None:
        self.ids = []

    def rewind(self, pos: int) -> None:
        self.ids = self.ids[:pos]

    def step(self, token: int) -> np.ndarray:
        return self.feed([token])

    def feed(self, tokens: list[int]) -> np.ndarray:
        self.ids.extend(tokens)
        with self.torch.no_grad():
            out = self.model(self.torch.tensor([self.ids]))[0, -1]
        return out.numpy()
