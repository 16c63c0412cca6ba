"""The corpus generator: deterministic, held-out phrasings kept apart, every call valid for its tool,
answers built from the results, and transcripts in the exact format the model trains on."""
import hashlib
import re
from collections import Counter

import pytest

from tinyagent.agent import phrasebook as pb
from tinyagent.agent.corpus import (
    MAX_REQUEST_BYTES,
    MAX_TRANSCRIPT_BYTES,
    Example,
    all_intents,
    corpus_stats,
    generate_corpus,
    phrasing_words,
    prompt,
    render,
    split_phrasings,
)
from tinyagent.agent.grammar import grammar_from_spec
from tinyagent.agent.spec import REPO_ROOT, load_spec, parse_spec

N_TRAIN, N_VAL, N_HELDOUT = 4000, 400, 400


def single_turn(spec):
    """The spec with the conversation kinds and the out-of-range values off (their tests use `talk`)."""
    import dataclasses
    style = dataclasses.replace(spec.style, followup_fraction=0.0, conditional_fraction=0.0, noise_fraction=0.0,
                                out_of_range_fraction=0.0, history_rate=0.0)
    return dataclasses.replace(spec, style=style)


@pytest.fixture(scope="module")
def corpus(spec):
    """Single turns of the default spec: the kinds every agent gets before conversations."""
    return generate_corpus(single_turn(spec), seed=0, n_train=N_TRAIN, n_val=N_VAL, n_heldout=N_HELDOUT)


def everything(corpus):
    return corpus.train + corpus.val + corpus.heldout


def digest(corpus) -> str:
    return hashlib.sha256("".join(render(ex) for ex in everything(corpus)).encode()).hexdigest()


def test_same_seed_same_bytes(spec, corpus):
    again = generate_corpus(single_turn(spec), seed=0, n_train=N_TRAIN, n_val=N_VAL, n_heldout=N_HELDOUT)
    assert digest(again) == digest(corpus)
    other = generate_corpus(single_turn(spec), seed=1, n_train=N_TRAIN, n_val=N_VAL, n_heldout=N_HELDOUT)
    assert digest(other) != digest(corpus)


GOLDEN_SPEC = """
[agent]
name = "golden"
[synonyms]
light = ["light", "lamp"]
[[tools]]
name = "gpio"
call = "gpio {pin} {level}"
args.pin = { type = "int", min = 0, max = 39 }
args.level = { type = "int", min = 0, max = 1 }
result.format = "ok"
[[tools.intents]]
name = "gpio_set"
phrasings = ["set pin {pin} to {level}", "pin {pin} {level}", "write {level} to pin {pin}"]
answers = ["Pin {pin} set to {level}."]
[[tools]]
name = "timer"
call = "timer {seconds}"
args.seconds = { type = "int", min = 1, max = 86400, unit = "seconds" }
result.format = "t={t} n={n}"
result.slots.t = { type = "decimal", min = -20.0, max = 60.0, places = 1 }
result.slots.n = { type = "int", min = 0, max = 4294967 }
[[tools.intents]]
name = "timer"
phrasings = ["timer {seconds:minutes}", "remind me in {seconds:hours} please", "count {seconds:seconds}"]
answers = ["Timer set for {seconds:seconds}, {t} and {n}."]
[[chat]]
name = "hello"
phrasings = ["hello", "hi there", "good morning to the {light}"]
answers = ["Hello!"]
"""


def test_golden_corpus():
    """Byte-identical on every machine and Python: a small corpus, hashed. Changing the generator on
    purpose changes every corpus; then update these (and say so in the commit)."""
    c = generate_corpus(parse_spec(GOLDEN_SPEC), seed=7, n_train=300, n_val=30, n_heldout=30)
    assert render(c.train[0]) == GOLDEN_FIRST
    assert digest(c) == GOLDEN_SHA256


GOLDEN_FIRST = "tnl ztqcxbgvblpokv v\nThat doesn't look like a request.\n"
GOLDEN_SHA256 = "331e8d302293516be43603f00c2231799e3cea66e98db55d308b51b34747b667"


def test_render_and_prompt():
    ex = Example("turn on the light and what's the temp?", (("led on", "on"), ("temp", "23.5")),
                 "The light is on. It is 23.5 C.", "led_on+temp")
    assert render(ex) == ("turn on the light and what's the temp?\n[led on]on\n[temp]23.5\n"
                          "The light is on. It is 23.5 C.\n")
    assert prompt(ex) == "turn on the light and what's the temp?\n"
    assert render(Example("hello", (), "Hi!", "greeting")) == "hello\nHi!\n"


def test_transcripts_are_well_formed(corpus):
    for ex in everything(corpus):
        for text in (ex.request, ex.answer):
            assert text and not set(text) & set("[]\n{}"), ex
        assert len(ex.request.encode()) <= MAX_REQUEST_BYTES
        assert len(render(ex).encode()) <= MAX_TRANSCRIPT_BYTES
        lines = render(ex).split("\n")
        assert lines[-1] == "" and len(lines) == len(ex.calls) + 3
        assert all(re.fullmatch(r"\[[^\[\]]+\][^\[\]]+", line) for line in lines[1:-2])


def test_held_out_phrasings_never_train(spec, corpus):
    train_p, held_p = split_phrasings(spec, seed=0)
    for intent in spec.intents:
        assert set(train_p[intent.name]) | set(held_p[intent.name]) == set(intent.phrasings)
        assert not set(train_p[intent.name]) & set(held_p[intent.name])
        assert len(held_p[intent.name]) >= 1  # every default intent has 3+ phrasings
        assert len(held_p[intent.name]) <= round(len(intent.phrasings) * 0.2)
        train_words = set().union(*map(phrasing_words, train_p[intent.name]))
        for p in held_p[intent.name]:  # new sentences, but of words the intent's training uses
            assert phrasing_words(p) <= train_words, (intent.name, p)
    assert sum(map(len, held_p.values())) >= 0.15 * sum(len(i.phrasings) for i in spec.intents)
    all_train = {p for ps in train_p.values() for p in ps}
    all_held = {p for ps in held_p.values() for p in ps}
    for ex in corpus.train + corpus.val:
        assert (ex.templates or ex.intent.startswith(("leave_", "terse:"))) and set(ex.templates) <= all_train, ex
    # "leave the {light} alone" is a generic frame and a noun, "led off" the call's words: no phrasing
    for ex in corpus.heldout:
        assert (ex.templates or ex.intent.startswith(("leave_", "terse:"))) and set(ex.templates) <= all_held, ex
    train_requests = {ex.request for ex in corpus.train}
    assert not [ex for ex in corpus.heldout if ex.request in train_requests]


def example_intents(spec, ex):
    """The intents an example's calls come from (a correction's is the intent it ends with)."""
    by_name = {i.name: i for i in all_intents(spec)}
    if ex.intent in ("negation", "retraction") or ex.intent.startswith("leave_"):
        return []
    name = ex.intent.split(":", 1)[1] if ex.intent.startswith(("correction:", "terse:")) else ex.intent
    return [by_name[n] for n in name.split("+")]


def test_every_call_is_valid_for_its_tool(spec, corpus):
    grammar = grammar_from_spec(spec)
    kinds = set()
    for ex in everything(corpus):
        kinds.add(ex.intent.split(":")[0].split("_")[0])
        tool_intents = [i for i in example_intents(spec, ex) if i.tool]
        assert len(ex.calls) == len(tool_intents), ex
        for (call, result), intent in zip(ex.calls, tool_intents):
            assert grammar.complete(call), call  # a bad enum word, range, leading zero or duration
            tool = spec.tool(call.split(" ")[0])
            assert tool.name == intent.tool
            values = dict(zip([a.name for a in tool.args], grammar.parse(call)[1]))
            assert {k: str(v) for k, v in intent.fixed_args.items()}.items() <= values.items()
            assert re.fullmatch(RESULT_FORMATS[tool.name], result), (call, result)
            for slot, value in intent.fixed_result.items():
                assert result == value  # led_on -> on, led_off -> off
    assert {"negation", "retraction", "correction", "leave", "meta", "offtopic"} <= kinds, kinds


def test_negations_and_corrections(corpus):
    """What is taken back makes no call; a correction makes only the call it ends with."""
    exs = everything(corpus)
    negs = [ex for ex in exs if ex.intent in ("negation", "retraction") or ex.intent.startswith("leave_")]
    assert len(negs) > 0.04 * len(exs) and all(not ex.calls and ex.answer in pb.DECLINED_ANSWERS for ex in negs)
    corr = [ex for ex in exs if ex.intent.startswith("correction:")]
    assert len(corr) > 0.05 * len(exs) and all(len(ex.calls) == 1 for ex in corr)
    meta = [ex for ex in exs if ex.intent.startswith("meta_")]
    assert meta and all(not ex.calls for ex in meta)
    off = [ex for ex in exs if ex.intent == "offtopic"]
    assert len(off) > 0.04 * len(exs) and all(not ex.calls and ex.answer in pb.OFFTOPIC_ANSWERS for ex in off)
    # "set pin 3 high, no, 4": the digits said last are the new value of one of the call's args
    pins = [ex for ex in corr if ex.calls[0][0].startswith("gpio ") and " not " not in ex.request.lower()
            and re.search(r"\b(no|meant|make it|rather|make that)\b[^0-9]*[0-9]+\W*$", ex.request)]
    assert len(pins) >= 10
    for ex in pins:
        assert re.search(r"([0-9]+)\W*$", ex.request).group(1) in ex.calls[0][0].split()[1:], ex


RESULT_FORMATS = {
    "led": r"on|off", "gpio": r"ok", "timer": r"ok", "uptime": r"0|[1-9][0-9]*",
    "temp": r"-?(0|[1-9][0-9]?)\.[0-9]",
    "status": r"led=(on|off) temp=-?(0|[1-9][0-9]?)\.[0-9] up=(0|[1-9][0-9]*)",
}


def test_temperatures_and_uptimes_in_range(corpus):
    results = [(c, r) for ex in everything(corpus) for c, r in ex.calls]
    temps = [float(r) for c, r in results if c == "temp"]
    temps += [float(re.search(r"temp=(\S+)", r).group(1)) for c, r in results if c == "status"]
    assert -20.0 <= min(temps) < 0 < max(temps) <= 60.0
    ups = [int(r) for c, r in results if c == "uptime"]
    assert min(ups) < 10 and 10**6 <= max(ups) <= 4294967  # every digit length appears


NUMBER_WORDS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen " \
               "fifteen sixteen seventeen eighteen nineteen twenty".split()
UNIT_SECONDS = {"second": 1, "seconds": 1, "sec": 1, "secs": 1, "s": 1, "minute": 60, "minutes": 60,
                "min": 60, "mins": 60, "hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600, "h": 3600}

SINGULAR_ONLY = {"second", "minute", "hour", "hr"}
PLURAL_ONLY = {"seconds", "secs", "minutes", "mins", "hours", "hrs"}


def test_timer_durations_are_written_as_said(spec, corpus):
    """The timer's arg is a duration: the call writes the parts a request says ("1h30m"), and every
    unit and compound appears (test_durations.py checks each phrase against its call)."""
    grammar = grammar_from_spec(spec)
    shapes = set()
    for ex in everything(corpus):
        for call, _ in ex.calls:
            if call.startswith("timer "):
                assert grammar.complete(call), call
                shapes.add(re.sub(r"[0-9]+", "N", call.split()[1]))
    assert {"Nh", "Nm", "Ns", "NhNm", "NmNs"} <= shapes, shapes


def test_answers_use_the_values(corpus):
    for ex in everything(corpus):
        if ex.intent == "temp":
            assert ex.calls[0][1] in ex.answer
        if ex.intent.startswith("gpio"):
            pin = ex.calls[0][0].split()[1]
            assert re.search(rf"\b{pin}\b", ex.answer)
        if ex.intent == "timer":  # the answer says the call's parts in words: 1h30m -> 1 hour 30 minutes
            parts = re.findall(r"([0-9]+)([hms])", ex.calls[0][0].split()[1])
            assert pb.duration_answer([(int(n), u) for n, u in parts]) in ex.answer, ex


def test_stats_are_sane(spec, corpus):
    s = corpus_stats(corpus)
    assert s["examples"] == {"train": N_TRAIN, "val": N_VAL, "heldout": N_HELDOUT}
    # A phrasing both trained and held out is one that two intents share, and they mean the same call
    # ("kill the {light}": led_off and led_off_indirect; "turn up the volume": unsupported and offtopic).
    owners: dict[str, list] = {}
    for i in all_intents(spec):
        for p in i.phrasings:
            owners.setdefault(p, []).append(i)
    shared = {p for p, o in owners.items() if len(o) > 1}
    assert s["phrasings_shared_train_heldout"] <= len(shared) <= 8
    for p in shared:
        assert len({(i.tool, i.args) for i in owners[p]}) == 1, p
    assert s["phrasings"]["heldout"] >= len(spec.intents)
    assert s["phrasings"]["train"] > 3 * s["phrasings"]["heldout"]
    assert {i.name for i in spec.intents} <= set(s["per_intent_train"])
    assert 0.2 < s["chat_fraction"] < 0.36  # chat, negations, questions about tools, off-topic
    assert 0.06 < s["two_call_fraction"] < 0.14
    assert 0.04 < s["typo_fraction"] < 0.13
    assert s["request_bytes"]["max"] <= MAX_REQUEST_BYTES
    assert 20 < s["transcript_bytes"]["mean"] < s["transcript_bytes"]["max"] <= MAX_TRANSCRIPT_BYTES
    assert s["distinct_requests"]["train"] > 0.6 * N_TRAIN
    assert s["vocabulary_words"] > 500


# ---- conversations: follow-ups, conditionals, unrelated history ------------------------------------

@pytest.fixture(scope="module")
def talk(spec):
    import dataclasses
    style = dataclasses.replace(spec.style, followup_fraction=0.3, conditional_fraction=0.15, history_rate=0.5,
                                noise_fraction=0.05)
    return generate_corpus(dataclasses.replace(spec, style=style), seed=3, n_train=3000, n_val=50, n_heldout=50)


def test_conversation_corpus_is_deterministic(spec, talk):
    import dataclasses
    style = dataclasses.replace(spec.style, followup_fraction=0.3, conditional_fraction=0.15, history_rate=0.5,
                                noise_fraction=0.05)
    again = generate_corpus(dataclasses.replace(spec, style=style), seed=3, n_train=3000, n_val=50, n_heldout=50)
    assert digest(again) == digest(talk)


def test_conversations_render_turn_by_turn_and_fit(talk):
    from tinyagent.agent.corpus import MAX_DIALOGUE_BYTES, as_read, read_turn, render_turn
    from tinyagent.training.data import segments
    with_history = [ex for ex in talk.train if ex.before]
    assert 0.4 < len(with_history) / len(talk.train) < 0.8
    for ex in with_history:
        assert render(ex) == "".join(render_turn(t) for t in ex.before + (ex,))
        assert "".join(t for t, _ in segments(ex)) == as_read(ex) == "".join(read_turn(t) for t in ex.before + (ex,))
        assert all(not t.before for t in ex.before)
        assert len(render(ex).encode()) <= MAX_DIALOGUE_BYTES or len(ex.before) == 1


def _args(call):
    return call.split(" ")


def test_followups_change_the_previous_call(talk):
    seen = set()
    for ex in talk.train:
        kind, _, intent = ex.intent.partition(":")
        if not kind.startswith("followup_"):
            continue
        seen.add(kind)
        prev = ex.before[-1]
        assert prev.calls, ex
        old = _args(prev.calls[-1][0])
        if kind == "followup_again":
            assert len(ex.calls) == 1 and _args(ex.calls[0][0]) == old
        elif kind == "followup_value":
            new = _args(ex.calls[0][0])
            assert new[0] == old[0] and sum(a != b for a, b in zip(new, old)) == 1, ex
        elif kind == "followup_undo" and ex.calls:
            new = _args(ex.calls[0][0])
            assert new[0] == old[0] and new != old or new == ["led", "toggle"] == old, ex
            if old[0] == "gpio":
                assert new[1] == old[1] and {new[2], old[2]} == {"0", "1"}
            if old[0] == "led" and old[1] != "toggle":
                assert {new[1], old[1]} == {"on", "off"}
        elif kind == "followup_undo":
            assert old[0] == "timer" and ex.answer in pb.CANNOT_UNDO_ANSWERS
        elif kind in ("followup_compare", "followup_repeat", "followup_change"):
            assert not ex.calls and prev.calls[-1][0] in ("temp", "uptime")
            assert prev.calls[-1][1].split()[0] in ex.answer
    assert seen == {"followup_again", "followup_value", "followup_undo", "followup_compare",
                    "followup_repeat", "followup_change"}


def test_compare_answers_are_right(talk):
    rel = {w: r for r, words in pb.RELATIONS for w in words}
    n = 0
    for ex in talk.train:
        if not ex.intent.startswith("followup_compare"):
            continue
        value = float(ex.before[-1].calls[-1][1])
        m = re.match(r"(Yes|No)", ex.answer)
        word = next((w for w in sorted(rel, key=len, reverse=True) if w in ex.request.lower()), None)
        said = word and re.search(re.escape(word) + r" (-?[0-9]+)", ex.request.lower())
        if not said:
            continue  # the threshold was said in words, or a typo hit the relation
        t = float(said.group(1))
        assert (m.group(1) == "Yes") == (value > t if rel[word] == ">" else value < t), ex
        n += 1
    assert n > 10


def test_conditionals_act_only_when_the_result_says_so(talk):
    rel = {w: r for r, words in pb.RELATIONS for w in words}
    branches = {"true": 0, "false": 0}
    for ex in talk.train + [t for e in talk.train for t in e.before]:
        if not ex.intent.startswith("if_"):
            continue
        branch = ex.intent[3:ex.intent.index(":")]
        branches[branch] += 1
        assert len(ex.calls) == (2 if branch == "true" else 1), ex
        first = ex.calls[0][0]
        assert first in ("temp", "uptime", "status"), ex
        if first != "status":
            value = float(ex.calls[0][1])
            low = ex.request.lower()
            word = next((w for w in sorted(rel, key=len, reverse=True) if f" {w} " in f" {low} "), None)
            said = word and re.search(re.escape(word) + r" (-?[0-9]+)\b", low)
            if said:
                t = float(said.group(1))
                assert (branch == "true") == (value > t if rel[word] == ">" else value < t), ex
        else:
            state = re.match(r"led=(on|off)", ex.calls[0][1]).group(1)
            want = re.search(r"\b(on|off)\b", ex.request.lower().split(" if ")[-1] if " if " in ex.request.lower()
                             else ex.request.lower())
            if branch == "true" and want:
                assert state in ex.answer
    assert branches["true"] > 50 and branches["false"] > 50


def test_no_conversations_unless_asked(corpus):
    assert not any(ex.before or ex.intent.startswith(("followup_", "if_", "range_")) or ex.intent == "noise"
                   for ex in everything(corpus))


def test_the_default_corpus_holds_conversations(spec):
    """The code defaults (what a user's agent gets): follow-ups, conditionals, history, noise, range."""
    c = generate_corpus(spec, seed=1, n_train=2000, n_val=10, n_heldout=10)
    kinds = Counter("history" if ex.before else ex.intent.split("_")[0].split(":")[0] for ex in c.train)
    assert kinds["history"] > 0.3 * len(c.train)
    for k in ("followup", "if", "range", "noise"):
        assert any(ex.intent.startswith(k) for ex in c.train), k


def test_values_past_a_range_are_copied_then_refused(spec):
    """"set pin 45 high" (pins 0..39): the call says 45 as the request did, the grammar refuses it
    (so nothing runs), the answer is the device's refusal, and no refused turn stays in a history."""
    from tinyagent.agent.conversation import range_text

    grammar = grammar_from_spec(spec)
    c = generate_corpus(spec, seed=2, n_train=4000, n_val=10, n_heldout=10)
    bad = [ex for ex in c.train if ex.intent.startswith("range_")]
    assert len(bad) > 40
    for ex in bad:
        (call, result), = ex.calls
        assert not grammar.complete(call) and result == "", ex
        name, *args = call.split(" ")
        form = grammar.form(name)
        if name == "timer":  # a duration past the top (duration_range_rate; the next test)
            assert ex.answer == range_text(form.fields[0], "seconds"), ex
            continue
        (i, f), = [(i, f) for i, f in enumerate(form.fields) if f.kind == "int" and not f.lo <= int(args[i]) <= f.hi]
        assert ex.answer == range_text(f, spec.tool(name).args[i].name)
    assert not [b for ex in c.train for b in ex.before if b.intent.startswith("range_")]


def test_durations_past_a_range_are_copied_then_refused():
    """duration_range_rate: "water for 20 minutes" past a 10-minute top is copied as 20m (never cut to
    a duration in range), the grammar refuses it, and the answer is the device's refusal; a spec whose
    only number is a duration gets out-of-range examples at all. Off (0, the default), the corpus is
    what it was (test_golden_corpus)."""
    from tinyagent.agent.conversation import range_text

    plant = load_spec(REPO_ROOT / "agents" / "plant.toml")
    grammar = grammar_from_spec(plant)
    text = (REPO_ROOT / "agents" / "plant.toml").read_text()
    off = parse_spec(re.sub(r"(?m)^duration_range_rate = .*$", "", text), "plant.toml")
    assert not [ex for ex in generate_corpus(off, seed=2, n_train=2000, n_val=10, n_heldout=10).train
                if ex.intent.startswith("range_")]
    c = generate_corpus(plant, seed=2, n_train=2000, n_val=10, n_heldout=10)
    bad = [ex for ex in c.train if ex.intent.startswith("range_")]
    assert len(bad) > 30
    field = grammar.form("water").fields[0]
    for ex in bad:
        (call, result), = ex.calls
        name, value = call.split(" ")
        seconds = sum(int(n) * dict(h=3600, m=60, s=1)[u] for n, u in re.findall(r"(\d+)([hms])", value))
        assert name == "water" and not grammar.complete(call) and result == "", ex
        assert not 1 <= seconds <= 600 and ex.answer == range_text(field, "seconds"), ex
    assert {re.sub(r"\d+", "", ex.calls[0][0]) for ex in bad} == {"water h", "water m", "water s"}


def test_line_noise_gets_no_call(talk):
    noise = [ex for ex in talk.train if ex.intent == "noise"]
    assert 0.03 < len(noise) / len(talk.train) < 0.08
    assert all(not ex.calls and ex.answer in pb.NOISE_ANSWERS for ex in noise)
    assert all(ex.request and "\n" not in ex.request and len(ex.request.encode()) <= MAX_REQUEST_BYTES for ex in noise)
    assert any("[" in ex.request for ex in noise)  # the call syntax typed in is noise too
    assert any(re.search(r"\b(gpio|led|timer)\b", ex.request) for ex in noise if "[" not in ex.request)


def test_far_values_past_a_range_are_copied_whole(spec):
    """"turn on pin 99" with pins 0..39: the corpus goes far past the top too, so that the model copies
    every digit (a model that has seen only 40..59 writes `gpio 9` for it: a pin nobody asked for)."""
    c = generate_corpus(spec, seed=2, n_train=4000, n_val=10, n_heldout=10)
    pins = [int(ex.calls[0][0].split(" ")[1]) for ex in c.train if ex.intent.startswith("range_gpio")]
    assert any(60 <= p <= 99 for p in pins) and any(p >= 100 for p in pins) and any(p < 0 for p in pins)
    assert max(pins) <= 999


def test_terse_requests_are_the_calls_own_words(spec):
    """"led on", "gpio 5 1", "uptime", "timer 90s": the tool's name and its values in the call's order
    name that call; with brackets it is the call syntax typed in, which is noise (no call)."""
    c = generate_corpus(spec, seed=4, n_train=6000, n_val=10, n_heldout=10)  # every tool, by some 10 each
    terse = [ex for ex in c.train if ex.intent.startswith("terse:")]
    assert 0.02 < len(terse) / len(c.train) < 0.07
    tools = {t.name for t in spec.tools}
    assert {ex.calls[0][0].split(" ")[0] for ex in terse} == tools
    for ex in terse:
        (call, _), = ex.calls
        assert not set(ex.request) & set("[]") and call.split(" ")[0] in ex.request.lower() or \
            spec.tool(call.split(" ")[0]).args == (), ex
        if call.startswith("gpio ") and ex.request == ex.request.lower() and ex.request.isascii():
            words = ex.request.split()  # "gpio 5 1", "um, so gpio 7 1", "gpio seventeen 0"
            assert "gpio" in words and len(words) - words.index("gpio") >= 3, ex
    assert any(ex.request in ("uptime", "status", "temp") for ex in terse)


def test_two_calls_of_one_tool(spec):
    """"pin 4 high and pin 5 low": two calls of the same tool, in the order asked."""
    c = generate_corpus(spec, seed=5, n_train=3000, n_val=10, n_heldout=10)
    twice = [ex for ex in c.train if ex.intent.count("gpio_") == 2 and len(ex.calls) == 2]
    assert twice and all(a[0].startswith("gpio ") and b[0].startswith("gpio ") for (a, b) in (ex.calls for ex in twice))


def test_no_call_right_after_a_call(spec):
    """"thanks", "cool", small talk right after a turn that acted: still no call (it is not "again")."""
    c = generate_corpus(spec, seed=6, n_train=4000, n_val=10, n_heldout=10)
    after = [ex for ex in c.train if not ex.calls and ex.before and ex.before[-1].calls]
    plain_after = [ex for ex in after if ex.intent in ("thanks", "offtopic", "greeting", "goodbye")]
    assert len(plain_after) > 0.01 * len(c.train), len(plain_after)


def test_a_call_written_as_data_is_noise(spec):
    """JSON, a function call, key=value or a tag naming a tool: text, not a request (no call). Off by
    default (the shipped model's corpus has none), on in the default agent's spec."""
    import dataclasses
    assert type(spec.style)().structured_noise_rate == 0.0
    assert spec.style.structured_noise_rate == 0.25
    style = dataclasses.replace(spec.style, noise_fraction=0.3)
    c = generate_corpus(dataclasses.replace(spec, style=style), seed=8, n_train=600, n_val=10, n_heldout=10)
    noise = [ex for ex in c.train if ex.intent == "noise"]
    data = [ex for ex in noise if re.search(r'[{}()=<>]|\w+: \w', ex.request)]
    assert len(data) > 0.15 * len(noise) and all(not ex.calls for ex in data)
    tools = {t.name for t in spec.tools}
    assert all(any(t in ex.request for t in tools) for ex in data if "{" in ex.request or "(" in ex.request)


def test_a_0_1_value_is_often_a_level_word(spec, corpus):
    """"set pin 5 to true", "gpio 3 LOW": the request says a 0..1 arg as a level word, the call says
    the digit; with level_word_rate 0 only the digits and number words remain."""
    import dataclasses

    def said(c):
        out = []
        for ex in c.train:
            if ex.intent != "gpio_set":
                continue
            (call, _), = ex.calls
            level = int(call.split()[2])
            words = set(re.findall(r"[A-Za-z]+", ex.request))
            out.append((level, words & plain))  # "on" is also a preposition: "put LOW on pin 3"
        return out

    plain = {w for w in pb.LEVEL_WORDS[0] + pb.LEVEL_WORDS[1] if w.lower() not in ("on", "off") and w.isalpha()}

    rows = said(corpus)
    worded = [(level, w) for level, w in rows if w]
    assert 0.15 < len(worded) / len(rows) < 0.6, (len(worded), len(rows))
    for level, w in worded:  # never the other level's word ("hi" is also a greeting: "hi, pin 3 false")
        assert w - {"hi"} <= set(pb.LEVEL_WORDS[level]), (level, w)
    assert {level for level, _ in worded} == {0, 1}
    assert {"true", "false", "hi", "lo", "HIGH", "LOW"} <= set().union(*(w for _, w in worded))
    off = dataclasses.replace(spec, style=dataclasses.replace(single_turn(spec).style, level_word_rate=0.0))
    quiet = said(generate_corpus(off, seed=0, n_train=1500, n_val=10, n_heldout=10))
    assert quiet and not any(w & {"true", "false", "True", "False", "lo", "TRUE", "FALSE"} for _, w in quiet)
