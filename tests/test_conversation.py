"""Conversations: turns that share one context (docs/integer-contract.md, "Conversations"). In Python
(conversation.Conversation): the feeding order, the drop rule at its exact boundary, a refused turn and a
request too long leave no trace, !new starts afresh."""
from __future__ import annotations

import pytest

from tinyagent.agent.conversation import REPLY_RESERVE, Conversation, RequestTooLong, TokenClasses, Turn, run_turn
from tinyagent.cli import DEFAULT_RUN
from tinyagent.device.chat import ReferenceAgent
from tinyagent.integer.reference import forward_seq

CHAT = ["turn on the light", "what is the temperature?", "hello", "turn the led off", "status please"]


@pytest.fixture(scope="module")
def shipped():
    return ReferenceAgent(DEFAULT_RUN)


class Recording:
    """An engine that keeps the logits it returned, by position, and counts the tokens fed to it."""

    def __init__(self, engine):
        self.engine, self.seen, self.n_fed, self.resets = engine, {}, 0, 0

    @property
    def pos(self) -> int:
        return self.engine.pos

    def reset(self) -> None:
        self.engine.reset()
        self.seen, self.resets = {}, self.resets + 1

    def rewind(self, pos: int) -> None:
        self.engine.rewind(pos)
        self.seen = {p: v for p, v in self.seen.items() if p < pos}

    def step(self, token: int):
        return self.feed([token])

    def feed(self, tokens: list[int]):
        logits = self.engine.feed(tokens)
        self.n_fed += len(tokens)
        self.seen[self.engine.pos - 1] = logits
        return logits


# About a quarter of the shipped model's context (256 tokens) each: four such turns overflow it.
LONG = ("please could you be so kind as to turn on the light in the kitchen for me right now, and when "
        "you have done that please could you be so kind as to tell me that it is on")
TOO_LONG = "x " * 150  # 300 tokens (one per byte): more than any context the tests use, under TA_LINE_MAX


def conversation(ra: ReferenceAgent, min_margin: int | None = None, engine=None) -> Conversation:
    return Conversation(engine or ra.engine, ra.tc, ra.grammar, ra.model.cfg.ctx,
                        ra.min_margin if min_margin is None else min_margin)


def assert_logits_are_the_transcripts(ra, rec: Recording, conv: Conversation) -> None:
    """Every logit row the conversation decoded from is forward_seq's over the context's tokens."""
    want = forward_seq(ra.model, conv.ids[:conv.fed])
    assert rec.seen and all((want[p] == v).all() for p, v in rec.seen.items())


def transcript(turn: Turn) -> str:
    return turn.request + "\n" + "".join(f"[{c}]{r}\n" for c, r in turn.calls) + turn.answer + "\n"


def filler(ra, n: int) -> list[int]:
    """A whole turn of n tokens (its last the '\n')."""
    return [ra.tc.bpe.byte_to_id[ord("x")]] * (n - 1) + [ra.tc.newline]


def test_turns_carry_over_and_are_never_recomputed(shipped):
    rec = Recording(shipped.engine)
    conv = conversation(shipped, engine=rec)
    turns = [conv.turn(shipped.hal, r) for r in CHAT[:4]]
    assert [t.stop for t in turns] == ["newline"] * 4 and [t.dropped for t in turns] == [0] * 4
    assert any(t.calls for t in turns)
    bpe = shipped.tc.bpe
    # the context is the turns' transcripts, one after another (no timer: its call is shown in seconds)
    assert conv.starts[0] == 0 and conv.starts == sorted(set(conv.starts)) and len(conv.starts) == 4
    bounds = conv.starts + [len(conv.ids)]
    assert [bpe.decode(conv.ids[a:b]) for a, b in zip(bounds, bounds[1:])] == [transcript(t) for t in turns]
    assert conv.ids[conv.fed:] == [shipped.tc.newline]  # the last answer's '\n': pending
    assert rec.n_fed == conv.fed and rec.resets == 1  # each token fed once, from one reset
    assert_logits_are_the_transcripts(shipped, rec, conv)


def test_one_turn_is_run_turn(shipped):
    conv = conversation(shipped)
    conv.turn(shipped.hal, "hello")
    alone = run_turn(shipped.engine, shipped.tc, shipped.grammar, shipped.hal, "turn on the light",
                     shipped.model.cfg.ctx, min_margin=shipped.min_margin)
    conv.new()
    assert conv.ids == [] and conv.starts == [] and conv.fed == 0
    again = conv.turn(shipped.hal, "turn on the light")
    assert again == alone


def prompt_len(ra, request: str) -> int:
    return len(ra.tc.bpe.encode(request + "\n"))


@pytest.mark.parametrize("extra, dropped", [(0, 0), (1, 1)])
def test_drop_rule_at_the_exact_boundary(shipped, extra, dropped):
    """n + len(prompt) + REPLY_RESERVE == ctx fits; one token more drops exactly the oldest turn."""
    ctx, p = shipped.model.cfg.ctx, prompt_len(shipped, "hello")
    first, second = filler(shipped, 30), filler(shipped, ctx - REPLY_RESERVE - p - 30 + extra)
    rec = Recording(shipped.engine)
    conv = conversation(shipped, engine=rec)
    conv.load([first, second])
    assert conv.starts == [0, 30] and conv.fed == 0
    turn = conv.turn(shipped.hal, "hello")
    assert turn.dropped == dropped
    kept = [first, second][dropped:]
    n = sum(map(len, kept))
    assert conv.ids[:n] == [t for k in kept for t in k] and conv.starts[:len(kept) + 1] == [0, 30][:len(kept)] + [n]
    assert conv.ids[n:n + p] == shipped.tc.bpe.encode("hello\n")
    assert_logits_are_the_transcripts(shipped, rec, conv)


def test_drop_the_fewest_oldest_turns(shipped):
    ctx, p = shipped.model.cfg.ctx, prompt_len(shipped, "hello")
    third = filler(shipped, 30)
    second = filler(shipped, ctx - REPLY_RESERVE - p - 30 + 1)  # dropping only the first is not enough
    conv = conversation(shipped)
    conv.load([filler(shipped, 5), second, third])
    assert conv.turn(shipped.hal, "hello").dropped == 2
    assert conv.ids[:30] == third and conv.starts[:2] == [0, 30]
    # a turn as long as the room left drops everything before it
    conv.new()
    conv.load([filler(shipped, ctx - REPLY_RESERVE - p + 1)])
    turn = conv.turn(shipped.hal, "hello")
    assert turn.dropped == 1 and conv.starts == [0] and conv.ids[:p] == shipped.tc.bpe.encode("hello\n")
    alone = run_turn(shipped.engine, shipped.tc, shipped.grammar, shipped.hal, "hello", ctx,
                     min_margin=shipped.min_margin)
    assert turn.generated == alone.generated


def test_overflowing_conversation_keeps_matching_the_transcript(shipped):
    """Long requests overflow the context within a few turns; after each drop the kept turns are fed
    again from position 0, and the logits are still forward_seq's over the context."""
    rec = Recording(shipped.engine)
    conv = conversation(shipped, engine=rec, min_margin=-1)  # gate off: no turn is taken back
    dropped = []
    for r in [LONG, "hello", LONG, LONG, LONG, LONG]:
        t = conv.turn(shipped.hal, r)
        dropped.append(t.dropped)
        assert len(conv.ids) <= shipped.model.cfg.ctx
        assert_logits_are_the_transcripts(shipped, rec, conv)
    assert sum(dropped) >= 1 and rec.resets >= 2


def test_a_refused_turn_leaves_no_trace(shipped):
    """The gate forced above any confidence refuses the write call: the context is as before it, and the
    next turn is what it would have been without it."""
    gated = conversation(shipped, min_margin=2**31 - 1)
    gated.turn(shipped.hal, "hello")
    ids, starts = list(gated.ids), list(gated.starts)
    refused = gated.turn(shipped.hal, "turn on the light")
    assert refused.stop == "refused" and refused.refused == "unsure"
    assert gated.ids == ids and gated.starts == starts and shipped.engine.pos == len(ids)
    after = gated.turn(shipped.hal, "what is the temperature?")
    plain = conversation(shipped, min_margin=2**31 - 1)
    plain.turn(shipped.hal, "hello")
    assert plain.turn(shipped.hal, "what is the temperature?") == after and plain.ids == gated.ids


def test_yes_runs_the_call_the_gate_asked_about(shipped):
    """The gate forced above any confidence asks about [led on]; "yes" runs it, and the conversation
    is then exactly the one in which the model was sure: the refused turn resumed, no "yes" in it."""
    gated = conversation(shipped, min_margin=2**31 - 1)
    gated.turn(shipped.hal, "hello")
    asked = gated.turn(shipped.hal, "turn on the light")
    assert asked.refused == "unsure" and asked.answer.endswith("Say yes to run it.") and not asked.calls
    done = gated.turn(shipped.hal, "yes")
    sure = conversation(shipped, min_margin=-1)
    sure.turn(shipped.hal, "hello")
    plain = sure.turn(shipped.hal, "turn on the light")
    assert plain.calls == [("led on", "on")] and done.calls == plain.calls and done.answer == plain.answer
    assert (gated.ids, gated.starts, gated.fed) == (sure.ids, sure.starts, sure.fed)
    # nothing asked now: "yes" is a request like any other, and a question is forgotten by the next one
    ids = list(gated.ids)
    again = gated.turn(shipped.hal, "yes")  # a model turn: any write call in it meets the gate again
    assert not any(c.split(" ")[0] in ("led", "gpio", "timer") for c, _ in again.calls)
    assert (gated.ids == ids if again.refused else
            gated.tc.bpe.decode(gated.ids[gated.starts[-1]:]).startswith("yes\n")), again
    gated.turn(shipped.hal, "turn off the light")
    gated.turn(shipped.hal, "what is the temperature?")
    assert not any(c.startswith("led") for c, _ in gated.turn(shipped.hal, "yes").calls)


def test_a_request_too_long_leaves_the_conversation_unchanged(shipped):
    conv = conversation(shipped)
    conv.turn(shipped.hal, "hello")
    state = (list(conv.ids), list(conv.starts), conv.fed, shipped.engine.pos)
    with pytest.raises(RequestTooLong):
        conv.turn(shipped.hal, TOO_LONG)
    assert (conv.ids, conv.starts, conv.fed, shipped.engine.pos) == state
    assert conv.turn(shipped.hal, "hello").dropped == 0


def test_a_turn_that_fills_the_context_stays_until_the_next_drops_it(tiny_int, bpe):
    """A random tiny model rarely says '\n': its turn runs to the end of the context, and stays there."""
    from tinyagent.agent.grammar import grammar_from_spec
    from tinyagent.agent.spec import DEFAULT_SPEC_PATH, load_spec
    from tinyagent.integer.reference import Reference

    im = tiny_int[1]
    tc = TokenClasses(bpe)
    conv = Conversation(Reference(im), tc, grammar_from_spec(load_spec(DEFAULT_SPEC_PATH)), im.cfg.ctx, -1)
    first = next(t for t in (conv.turn(lambda tool, args: "ok", r) for r in ["hi", "ok", "go", "no"])
                 if t.stop == "context")
    assert first.stop == "context" and len(conv.ids) == conv.fed == im.cfg.ctx
    assert conv.turn(lambda tool, args: "ok", "hi").dropped >= 1


def test_load_takes_whole_turns_only(shipped):
    conv = conversation(shipped)
    with pytest.raises(ValueError, match="must end with"):
        conv.load([[shipped.tc.newline], [1, 2]])


# ---- the C conversation (firmware/ta_agent.c) against conversation.Conversation ----------------------------



@pytest.fixture(scope="module")
def shipped_device(tmp_path_factory, shipped):
    """The shipped model and its gate on the host (the real firmware over stdin/stdout)."""
    from tinyagent.agent.spec import load_spec

    from c_harness import start_firmware

    con = start_firmware(tmp_path_factory.mktemp("shipped"), shipped.model, shipped.tc.bpe,
                         load_spec(DEFAULT_RUN / "spec.toml"), min_margin=shipped.min_margin)
    yield con
    assert con.close() == 0


def assert_same_conversation(device, conv: Conversation, hal, lines: list[str]) -> list[Turn | None]:
    """Each line on the device console and on the reference (!new, !run: a new conversation), reply
    for reply, byte for byte; the reference's turns (None for a command or a request too long)."""
    turns = []
    for line in lines:
        said, turn = [], None
        if line.startswith("!"):
            conv.new()
            said.append("ok\n" if line == "!new" else None)
        else:
            try:
                turn = conv.turn(hal, line, said.append)
            except RequestTooLong as e:
                said.append(f"error: {e}\n")
        got = device.ask(line).decode("utf-8", errors="replace")
        if said != [None]:
            assert got == "".join(said), (line, turns)
        turns.append(turn)
    return turns


def test_c_conversations_match_the_reference(shipped_device, shipped):
    """Long requests overflow the context; 'set gpio 40 high' is refused (pin 0 to 39) and
    leaves no trace; !new and !run start a new conversation; a request too long changes nothing."""
    from test_agent_c import FrozenClockSimHal

    conv = conversation(shipped)
    lines = ["!new", "turn on the light", "what is the temperature?", "hello", "turn the led off",
             LONG, "hello", LONG, "set gpio 40 high", LONG, "status please", LONG, LONG, TOO_LONG, "hello",
             "!run 5 6 7", "turn on the light", "!new", LONG, "hello"]
    turns = assert_same_conversation(shipped_device, conv, FrozenClockSimHal(), lines)
    done = [t for t in turns if t is not None]
    assert sum(t.dropped for t in done) >= 2 and any(t.refused == "range" for t in done)
    assert any(t.calls for t in done)
    # after !run, as after !new: the first turn of a new conversation
    assert turns[lines.index("turn on the light", 2)].generated == turns[1].generated


def test_the_refusal_names_each_kind_of_field(spec):
    """range_text (the C's put_range prints the same): an enum lists its words, an integer its range, a
    duration its range in seconds."""
    from tinyagent.agent.conversation import range_text
    from tinyagent.agent.grammar import grammar_from_spec

    forms = {f.name: f for f in grammar_from_spec(spec).forms}
    fields = {(name, arg): fld for name, f in forms.items() for fld, arg in zip(f.fields, f.arg_names) if arg}
    assert range_text(fields["led", "action"], "action") == "Not done: action must be one of on, off, toggle."
    assert range_text(fields["gpio", "pin"], "pin") == "Not done: pin must be 0 to 39."
    assert range_text(fields["timer", "seconds"], "seconds") == "Not done: seconds must be 1 to 86400 seconds."


def test_run_turn_streams_its_text_and_can_stop_at_the_answer(shipped):
    """run_turn hands on_text and calls_only to the turn: the streamed pieces are what the console shows
    (each call with its result, then the answer), and calls_only ends the turn where the answer starts."""
    args = (shipped.engine, shipped.tc, shipped.grammar, shipped.hal, "turn on the light", shipped.model.cfg.ctx)
    pieces: list[str] = []
    full = run_turn(*args, on_text=pieces.append, min_margin=shipped.min_margin)
    assert full.calls == [("led on", "on")] and full.answer
    assert "".join(pieces) == f"[led on] -> on\n{full.answer}\n"
    short = run_turn(*args, calls_only=True, min_margin=shipped.min_margin)
    assert short.calls == full.calls and short.answer == ""
