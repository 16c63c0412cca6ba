"""The C agent loop (firmware/ta_agent.c) against conversation.run_turn: the same calls and answer for
every request, the grammar inside calls, the gate, a board without a sensor, and a custom grammar
of literals, overlapping enum words and integer ranges of every shape."""
from __future__ import annotations

import re
import types
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from tinyagent.agent import conversation
from tinyagent.agent.grammar import CallForm, Field, Grammar, grammar_from_spec
from tinyagent.integer.config import ModelConfig
from tinyagent.integer.intmodel import IntModel
from tinyagent.integer.reference import Reference

from c_harness import Console, start_firmware
from conftest import make_int_model

REQUESTS = ["turn on the light please", "what is the temperature", "set a timer for five minutes",
            "hello", "status", "could you toggle the led", "gpio pin 3 high", "uptime?", "[led on]",
            "thanks ]", "é ü 😀 ok", "timer for ninety seconds", "pin twenty-seven high, then pin one"]



# ---- the agent loop against conversation.run_turn -----------------------------------------------------------

class FrozenClockSimHal(conversation.SimHal):
    """conversation.SimHal with its clock stopped at 0 s, like the harness HAL (uptime answers "0")."""

    def __call__(self, tool, args):
        real = conversation.time
        conversation.time = types.SimpleNamespace(monotonic=lambda: self.t0)
        try:
            return super().__call__(tool, args)
        finally:
            conversation.time = real


def calling_model(im: IntModel, open_id: int) -> IntModel:
    """The model rewired so that '[' has the largest logit wherever it is allowed: residual channel 0
    carries a constant (from the position embedding, untouched by every layer), and only the '['
    row of the tied embedding reads it. Every turn then makes MAX_CALLS calls, whose text is still
    the random model's choice under the grammar."""
    t = {k: v.copy() for k, v in im.tensors.items()}
    t["tok_emb"][:, 0] = 0
    t["tok_emb"][open_id, :] = 0
    t["tok_emb"][open_id, 0] = 127
    t["logits.sh"][open_id] -= 8  # x256: its (positive) logit outgrows every other
    t["pos_emb"][:, 0] = 127
    for li in range(im.cfg.n_layers):
        t[f"layers.{li}.wo"][0, :] = 0
        t[f"layers.{li}.w2"][0, :] = 0
    return IntModel(im.cfg, t, im.scales)


def device_turn(device, request: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """(calls, answer) from the device's reply: `[call] -> result` lines, then the answer line."""
    reply = device.ask(request)
    assert reply.endswith(b"\n"), reply
    lines = reply[:-1].split(b"\n")
    calls = [tuple(line[1:].split(b"] -> ", 1)) for line in lines[:-1]]
    assert all(line.startswith(b"[") for line in lines[:-1]), reply
    return calls, lines[-1]


def assert_turns_match(device, im, bpe, spec, requests, min_margin: int = 0):
    """The requests as one conversation, on the device (after !new) and through conversation.Conversation.
    The simulated board lives as long as the device (the LED keeps its state from turn to turn on
    both). `min_margin` is the gate the device was generated with."""
    tc, grammar = conversation.TokenClasses(bpe), grammar_from_spec(spec)
    conv = conversation.Conversation(Reference(im), tc, grammar, im.cfg.ctx, min_margin)
    if not hasattr(device, "sim"):
        device.sim = FrozenClockSimHal()
    assert device.ask("!new") == b"ok\n"
    turns = []
    for request in requests:
        try:
            turn = conv.turn(device.sim, request)
        except conversation.RequestTooLong:
            assert device.ask(request).startswith(b"error: request is too long ("), request
            continue
        calls, answer = device_turn(device, request)
        assert [(c.decode("latin-1"), r.decode()) for c, r in calls] == turn.calls, request
        assert answer.decode("utf-8", errors="replace") == turn.answer, request
        turns.append(turn)
    return turns


def test_agent_turns_match_reference(device, tiny_int, bpe, spec):
    assert_turns_match(device, tiny_int[1], bpe, spec, REQUESTS + ["word " * 40])


@pytest.fixture(scope="module")
def calling(tmp_path_factory, bpe, spec):
    """A model that opens a call whenever it may: every turn exercises the grammar and MAX_CALLS.
    (Seed 3 happens to make calls of every tool, with integer arguments of every length.)"""
    cfg = ModelConfig(vocab_size=320, ctx=96, dim=32, n_layers=2, n_heads=2, head_dim=16, ffn_dim=64)
    im = calling_model(make_int_model(cfg, seed=3)[1], bpe.byte_to_id[ord("[")])
    con = start_firmware(tmp_path_factory.mktemp("calling"), im, bpe, spec, min_margin=-1)  # no gate
    yield con, im
    assert con.close() == 0


def test_grammar_calls_match_reference(calling, bpe, spec):
    con, im = calling
    turns = assert_turns_match(con, im, bpe, spec, REQUESTS, min_margin=-1)
    tools = {call.split(" ")[0] for t in turns for call, _ in t.calls}
    assert len(tools) >= 4 and "gpio" in tools, tools  # integer arguments too
    assert max(len(t.calls) for t in turns) == conversation.MAX_CALLS


class RecordingHal(FrozenClockSimHal):
    def __init__(self):
        super().__init__()
        self.calls = []

    def __call__(self, tool, args):
        self.calls.append(tool)
        return super().__call__(tool, args)


@pytest.mark.parametrize("min_margin", [0, 2**31 - 1])
def test_gate_refuses_write_calls_identically(tmp_path, calling, bpe, spec, min_margin):
    """The random model's calls are all the grammar's doing (0: overruled ones are refused) or below any
    confidence (2^31-1): no write call runs, on the device or in the reference, and both say the same."""
    _, im = calling
    con = start_firmware(tmp_path, im, bpe, spec, min_margin=min_margin)
    con.sim = RecordingHal()
    try:
        turns = assert_turns_match(con, im, bpe, spec, REQUESTS, min_margin=min_margin)
        for pad in (16, 48):  # a refusal late in the context: the line kept is cut where it ends
            assert_turns_match(con, im, bpe, spec, ["what is the temperature " + "x" * pad, "hello"],
                               min_margin=min_margin)
    finally:
        assert con.close() == 0
    grammar = grammar_from_spec(spec)
    acting = {f.name for f in grammar.forms if f.acts}
    assert acting == {"led", "gpio", "timer"}
    assert not acting & set(con.sim.calls), con.sim.calls
    refused = [t for t in turns if t.refused]
    assert len(refused) >= len(turns) // 2, [(t.request, t.answer) for t in turns]
    kinds = {t.refused for t in refused}
    assert kinds == ({"unsure"} if min_margin else {"unsure", "range"}) or kinds <= {"unsure", "range"}
    for t in refused:
        assert t.answer.startswith("Not done: ") or (t.answer.startswith("Sorry, I'm not sure") and
                                                      t.answer.endswith("I did not run it. Say yes to run it.")), t.answer
    # a read call ran before the refused write in some turns: the later turns still match, whose
    # context keeps those calls and the line said (test_a_refusal_after_a_call_keeps_what_ran)
    assert any(t.calls for t in refused), [(t.request, t.calls) for t in refused]


CONFIRMING = ["yes", "turn on the light please", "yes", "what is the temperature", "Yes, please!", "gpio pin 3 high",
              "yes?", "yes", "hello", "status", "YEP", "could you toggle the led", "go ahead.", "yes", "yes",
              "timer for ninety seconds", "ok", "pin twenty-seven high, then pin one", "  sure ,  ",
              "what is the temperature " + "x" * 48, "do it"]


def test_a_confirmation_runs_the_asked_call_identically(tmp_path, calling, bpe, spec):
    """The gate above any confidence asks about every write call; a confirmation ("yes", "Yes, please!",
    not "yes?" or "ok") resumes the turn with that call run, on the device as in the reference, and
    the turns after it match (the context is the refused turn, resumed)."""
    _, im = calling
    con = start_firmware(tmp_path, im, bpe, spec, min_margin=2**31 - 1)
    con.sim = RecordingHal()
    try:
        turns = assert_turns_match(con, im, bpe, spec, CONFIRMING, min_margin=2**31 - 1)
    finally:
        assert con.close() == 0
    acting = {"led", "gpio", "timer"}
    ran = [(t.request, t.calls[0][0]) for t in turns if t.calls and t.calls[0][0].split(" ")[0] in acting]
    confirmed = [t.request for t in turns if conversation.is_confirmation(t.request)]
    assert ran and all(conversation.is_confirmation(r) for r, _ in ran), ran  # only a yes runs a write call
    assert {r for r, _ in ran} >= {"yes", "Yes, please!"}, ran
    assert acting & set(con.sim.calls) and len(ran) < len(confirmed)  # the first "yes": nothing asked yet


@pytest.mark.parametrize("text, yes", [("yes", True), ("Yes, please!", True), ("  sure ,  ", True),
                                       ("YEP", True), ("go ahead.", True), ("do it", True), ("y", True),
                                       ("yes?", False), ("ok", False), ("yes pin 5", False), ("yess", False),
                                       ("", False), ("yés", False), ("yes-please", False), ("no", False)])
def test_what_counts_as_a_confirmation(text, yes):
    assert conversation.is_confirmation(text) is yes


def test_a_refusal_after_a_call_keeps_what_ran(calling, bpe, spec):
    """The gate above any confidence: read calls run, the first write call is refused. A refused turn
    where nothing ran leaves no trace; one where a call ran stays, through that call's result, with the
    line said as its answer (pending), so the context says what happened."""
    _, im = calling
    tc, grammar = conversation.TokenClasses(bpe), grammar_from_spec(spec)
    conv = conversation.Conversation(Reference(im), tc, grammar, im.cfg.ctx, 2**31 - 1)
    hal = FrozenClockSimHal()
    seen = set()
    for request in REQUESTS + ["what is the temperature " + "x" * 48]:
        before = (list(conv.ids), list(conv.starts))
        turn = conv.turn(hal, request)
        if turn.stop != "refused":
            continue
        if turn.dropped:
            continue  # the kept turns moved: compared below only when nothing was dropped
        if not turn.calls:
            seen.add("no trace")
            assert (conv.ids, conv.starts) == before and conv.fed == len(conv.ids)
            continue
        seen.add("kept")
        start = conv.starts[-1]
        assert conv.starts[:-1] == before[1] and conv.ids[:start] == before[0] and start == len(before[0])
        said = bpe.encode(turn.answer)[:im.cfg.ctx - conv.fed - 1] + [tc.newline]  # cut where the context ends
        seen.add("cut" if len(said) <= len(bpe.encode(turn.answer)) else "kept")
        assert conv.ids[conv.fed:] == said and conv.engine.pos == conv.fed
        ran = bpe.decode(conv.ids[start:conv.fed])
        assert ran.startswith(conversation.digits_for_numbers(request) + "\n")
        for call, result in turn.calls:  # durations in seconds are how they are shown, not as typed
            assert f"{result}\n" in ran
        assert ran.endswith(f"{turn.calls[-1][1]}\n")
    assert seen == {"no trace", "kept", "cut"}, seen


def test_board_without_temperature_sensor(calling, bpe, spec):
    """TA_HAL_NO_TEMP (an ESP32 or ESP8266 has no sensor): temp and status say "n/a", as SimHal does."""
    con, im = calling
    bare = Console(Path(con.proc.args[0]), env={"TA_TEST_TEMP": "none"})
    bare.sim = FrozenClockSimHal(temp_deci=None)
    try:
        turns = assert_turns_match(bare, im, bpe, spec, REQUESTS, min_margin=-1)
    finally:
        assert bare.close() == 0
    results = [r for t in turns for c, r in t.calls if c.split(" ")[0] in ("temp", "status")]
    assert results and all("n/a" in r for r in results), results


@settings(max_examples=12, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40))
def test_random_requests_match_reference(calling, bpe, spec, request):
    con, im = calling
    assert_turns_match(con, im, bpe, spec, [request.replace("!", "?")], min_margin=-1)


# ---- a custom grammar: literals, overlapping enum words, integer ranges of every shape ------------

CUSTOM = Grammar([
    CallForm("set", (Field("lit", ("temp",)), Field("int", (), 5, 120))),
    CallForm("mode", (Field("enum", ("a", "ab", "abc")),)),
    CallForm("zero", (Field("int", (), 0, 0),)),
    CallForm("big", (Field("int", (), 100, 2**31 - 1), Field("enum", ("x", "y")))),
    CallForm("one", (Field("int", (), 10, 10),)),
    CallForm("nine", (Field("int", (), 99, 150),)),  # "9" is viable only through 99 itself
    CallForm("go", ()),
    CallForm("pump", (Field("dur", (), 5, 600),)),  # durations: 5 s .. 10 min, as "1m30s"
    CallForm("wait", (Field("dur", (), 1, 86400), Field("enum", ("x", "y")))),
])


def echo_value(form: CallForm, k: int, text: str) -> int:
    f = form.fields[k]
    return f.words.index(text) if f.kind == "enum" else int(text) if f.kind in ("int", "dur") else 0


def echo_hal(tool: str, args: list[str]) -> str:
    """What the echo handlers below answer: the tool and each parsed argument (ta_call.arg)."""
    form = next(f for f in CUSTOM.forms if f.name == tool)
    return " ".join([tool] + [str(echo_value(form, k, a)) for k, a in enumerate(args)])


ECHO_HANDLER = """
ta_status ta_tool_{name}(const ta_call *call, char *result, size_t cap)
{{
    ta_cat(result, cap, "{name}");
    for (int32_t i = 0; i < call->n_args; i++) {{
        ta_cat(result, cap, " ");
        ta_cat_i32(result, cap, call->arg[i]);
    }}
    return TA_OK;
}}
"""


@pytest.fixture(scope="module")
def custom(tmp_path_factory, bpe):
    tmp = tmp_path_factory.mktemp("custom")
    tools_c = tmp / "my_tools.c"
    tools_c.write_text('#include "ta_tools.h"\n' + "".join(ECHO_HANDLER.format(name=f.name) for f in CUSTOM.forms))
    cfg = ModelConfig(vocab_size=320, ctx=96, dim=32, n_layers=2, n_heads=2, head_dim=16, ffn_dim=64)
    im = calling_model(make_int_model(cfg, seed=5)[1], bpe.byte_to_id[ord("[")])
    con = start_firmware(tmp / "out", im, bpe, CUSTOM, user_tools_c=tools_c, min_margin=-1)  # no gate
    yield con, im
    assert con.close() == 0


call_texts = st.lists(st.sampled_from(["set", "temp", "mode", "a", "b", "c", "zero", "big", "one", "nine", "go", "x", "y",
                                       " ", "0", "1", "5", "9", "10", "12", "99", "100", "150", "151", "2147483647", "2147483648",
                                       "00", "s", "t", "e", "pump", "wait", "h", "m", "1h", "30m", "5s",
                                       "600s", "10m", "9m", "59s", "24h"]), max_size=6).map("".join)


@settings(max_examples=300, deadline=None)
@given(call_texts)
def test_grammar_viable_and_complete_match_python(custom, text):
    con, _ = custom
    want = f"call viable={int(CUSTOM.viable(text))} complete={int(CUSTOM.complete(text))}\n"
    assert con.ask("!call " + text).decode() == want, text


def test_grammar_at_range_boundaries(custom):
    """Every prefix of the numbers around each range's ends, and of every word, after each name."""
    con, _ = custom
    texts = set()
    for form in CUSTOM.forms:
        head = form.name
        for f in form.fields:
            if f.kind == "dur":
                values = [f"{f.lo}s", f"{f.hi}s", f"{f.hi + 1}s", f"{f.lo - 1}s", "1m30s", "9m59s", "10m",
                          "10m1s", "1h", "24h", "24h1s", "1h0m", "05s", "1s1m", "2h30m15s", "99999m"]
            else:
                values = [w for w in f.words] if f.kind != "int" else \
                    [str(v) for v in {0, 1, 9, 10, 99, f.lo - 1, f.lo, f.lo + 1, f.hi - 1, f.hi, f.hi + 1} if v >= 0]
            texts.update(head + " " + v[:k] for v in values for k in range(len(v) + 1))
            head += " " + (values[0] if f.kind not in ("int", "dur") else str(f.lo) if f.kind == "int" else f"{f.lo}s")
    for text in sorted(texts):
        want = f"call viable={int(CUSTOM.viable(text))} complete={int(CUSTOM.complete(text))}\n"
        assert con.ask("!call " + text).decode() == want, text


def test_custom_tools_parse_their_arguments(custom, bpe):
    """Calls under the custom grammar, dispatched to the user's handlers, match run_turn with echo_hal."""
    con, im = custom
    tc = conversation.TokenClasses(bpe)
    turns = []
    for request in REQUESTS:
        turn = conversation.run_turn(Reference(im), tc, CUSTOM, echo_hal, request, im.cfg.ctx, min_margin=-1)
        calls, answer = device_turn(con, request)
        assert [(c.decode("latin-1"), r.decode()) for c, r in calls] == turn.calls, request
        assert answer.decode("utf-8", errors="replace") == turn.answer, request
        turns.append(turn)
    # durations: the model wrote parts ("9m5s"); the device printed and handed on seconds, as run_turn did
    durs = [c for t in turns for c, _ in t.calls if c.split(" ")[0] in ("pump", "wait")]
    written = " ".join(bpe.decode(t.generated) for t in turns)
    assert durs and all(c.split(" ")[1].isdigit() for c in durs), durs
    assert re.search(r"\[(pump|wait) [0-9]+[hms]", written), written


def test_stats_count_what_the_turn_fed_and_chose(calling, bpe, spec):
    """!stats after a turn: the tokens fed in blocks (the prompt, each result) and chosen one at a time,
    as the reference's conversation has them, and their MACs as ModelConfig.macs_per_token counts them
    (the head once per block and for every chosen token)."""
    con, im = calling
    assert con.ask("!new") == b"ok\n"
    tc, grammar = conversation.TokenClasses(bpe), grammar_from_spec(spec)
    conv = conversation.Conversation(Reference(im), tc, grammar, im.cfg.ctx, -1)
    turn = conv.turn(FrozenClockSimHal(), "turn on the light please")
    device_turn(con, "turn on the light please")
    line = con.ask("!stats").decode()
    got = dict(kv.split("=") for kv in line.split()[1:])
    got = {k: int(v) for k, v in got.items()}
    chosen = len(turn.generated) - (turn.generated[-1] == tc.newline)  # the answer's '\n' is not fed
    fed = conv.fed - chosen
    cfg = im.cfg
    head = cfg.vocab_size * cfg.dim
    blocks = 1 + len(turn.calls)  # the prompt, then each call's result
    assert turn.calls and (got["fed"], got["chosen"]) == (fed, chosen), (line, turn)
    assert got["fed_macs"] + got["chosen_macs"] == sum(cfg.macs_per_token(p) - head for p in range(conv.fed)) + \
        head * (chosen + blocks)
    assert got["cycles"] == 0  # this harness has no counter (ta_hal_cycles is 0): test_bench.py times turns


def _request_of(bpe, n_tokens: int) -> str:
    """A request the device tokenises (with its '\\n') to exactly n_tokens tokens."""
    words = []
    while len(bpe.encode(" ".join(words + ["zq"]) + "\n")) <= n_tokens:
        words.append("zq")
    text = " ".join(words)
    while len(bpe.encode(text + "\n")) < n_tokens:
        text += "."
    assert len(bpe.encode(conversation.digits_for_numbers(text) + "\n")) == n_tokens
    return text


def test_the_context_end_is_the_same_on_both_sides(calling, bpe, spec):
    """A prompt of exactly ctx - REPLY_RESERVE tokens is taken and one more is refused, by the C loop as
    by the reference; after one that leaves just the reserve, the calls and their results run into
    the context's end, cut at the same token (the model opens a call wherever it may)."""
    con, im = calling
    limit = im.cfg.ctx - conversation.REPLY_RESERVE
    tc, grammar = conversation.TokenClasses(bpe), grammar_from_spec(spec)
    over = _request_of(bpe, limit + 1)
    assert con.ask("!new") == b"ok\n"
    assert con.ask(over).startswith(f"error: request is too long ({limit + 1} tokens; at most {limit} fit)".encode())
    with pytest.raises(conversation.RequestTooLong):
        conversation.run_turn(Reference(im), tc, grammar, FrozenClockSimHal(), over, im.cfg.ctx, min_margin=-1)
    full = 0
    for n in (limit, limit - 3, limit - 7):
        turns = assert_turns_match(con, im, bpe, spec, [_request_of(bpe, n)], min_margin=-1)
        assert len(turns) == 1 and turns[0].calls, n  # taken, and calls ran
        full += turns[0].stop == "context"
    assert full >= 1  # at least one ran into the context's end
