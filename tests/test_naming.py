"""The second half of the safety gate: a write call runs only if the request names its tool, or the
tool ran in the last turn that ran a call (agent/naming.py). The words each tool is named by, the
typos forgiven, C (ta_text_names, firmware/test/naming_main.c) against Python byte for byte, and the
gate on the shipped model, on the host board and in the reference."""
from __future__ import annotations

import dataclasses
import re
import subprocess

import pytest
from hypothesis import given, settings, strategies as st

from tinyagent.agent import conversation
from tinyagent.agent.corpus import generate_corpus
from tinyagent.agent.grammar import grammar_from_spec
from tinyagent.agent.naming import ACK_WORDS, is_acknowledgement, names_tool, naming_words, word_names
from tinyagent.agent.numbers import digits_for_numbers
from tinyagent.agent.spec import DEFAULT_SPEC_PATH, load_spec
from tinyagent.cli import DEFAULT_RUN
from tinyagent.errors import TinyAgentError
from tinyagent.targets.build import build

from c_harness import FIRMWARE, build_program

LIGHT = ("lamp", "light", "lights")


@pytest.mark.parametrize("word, named", [
    ("light", True), ("lights", True), ("ligth", True), ("lihgt", True), ("ligjt", True), ("lightt", True),
    ("lmap", True), ("lapm", True),  # two neighbours swapped, in 4 letters
    ("lamps", False), ("lam", False), ("lmp", False),  # 4 letters: only a swap is forgiven
    ("right", False), ("night", False), ("might", False), ("bright", False),  # the first letter must match
    ("ligt", False),  # 4 letters: a dropped letter is not forgiven
    ("lightss", True), ("lightsss", False), ("lgiht", True), ("ilght", False), ("", False),
])
def test_which_words_name_a_tool(word, named):
    assert word_names(word, LIGHT) is named


def test_the_default_tools_are_named_by_their_nouns_and_words():
    spec = load_spec(DEFAULT_SPEC_PATH)
    led, gpio, timer = (naming_words(spec, spec.tool(n)) for n in ("led", "gpio", "timer"))
    assert {"led", "light", "lights", "lamp", "bulb", "dark", "toggle"} <= set(led)
    assert not {"the", "little", "status", "onboard", "on"} & set(led)  # a noun's head word, no article
    assert {"gpio", "pin", "pins", "io", "output", "motor", "strip", "digitalwrite"} <= set(gpio)
    assert {"timer", "countdown", "minutes", "seconds", "hour", "secs", "clock"} <= set(timer)
    forms = {f.name: f for f in grammar_from_spec(spec).forms}
    assert forms["timer"].units and not forms["led"].units
    assert forms["temp"].names == ()  # a tool that only reads is not gated


@pytest.mark.parametrize("text, names, units, named", [
    ("set a timer for 90s", ("timer",), True, True),
    ("remind me in 90s", ("timer",), True, True),  # s right after a digit
    ("remind me in 1h30m", ("timer",), True, True),
    ("remind me in 90 s", ("timer",), True, False),  # not right after a digit
    ("it's late", ("timer",), True, False),  # the s of "it's" follows a letter
    ("remind me in 90s", ("timer",), False, False),  # a tool without a duration
    ("TURN ON THE LIGHT", LIGHT, False, True),
    ("the lamp-post", LIGHT, False, True),
    ("lämp", LIGHT, False, False),  # a non-ASCII letter splits the word
    ("can only", LIGHT, False, False),
])
def test_which_requests_name_a_tool(text, names, units, named):
    assert names_tool(text, names, units) is named


@pytest.fixture(scope="module")
def c_names(tmp_path_factory):
    exe = build_program([FIRMWARE / "test" / "naming_main.c", FIRMWARE / "ta_text.c"], [FIRMWARE],
                        tmp_path_factory.mktemp("naming") / "naming_main")
    proc = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def names(data: bytes, words: tuple[str, ...], units: bool | str) -> bool:
        mode = units if isinstance(units, str) else int(units)  # "a": ta_text_ack
        proc.stdin.write(f"{mode}\t{','.join(words)}\t{data.hex()}\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        assert line in ("0\n", "1\n"), f"naming_main said {line!r} on {data!r}"
        return line == "1\n"

    yield names
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0


def test_c_names_what_python_names_in_the_examples(c_names):
    spec = load_spec(DEFAULT_SPEC_PATH)
    forms = [f for f in grammar_from_spec(spec).forms if f.acts]
    texts = ["turn on the ligth", "can only", "set pin 5 high", "remind me in 1h30m", "gh1!.", "write out",
             "set pni 5 high", "Timre for 5 minutes", "it's dark", "the motr on pin 6", "digitalWrite(5, 1)"]
    for text in texts:
        for f in forms:
            assert c_names(text.encode(), f.names, f.units) is names_tool(text, f.names, f.units), (text, f.name)


def _typos(word: str) -> st.SearchStrategy[str]:
    """The word, or with a letter dropped, doubled, changed or two neighbours swapped (anywhere)."""
    i = st.integers(0, max(len(word) - 1, 0))
    letter = st.sampled_from("abcdefghijklmnopqrstuvwxyz")
    return st.one_of(st.just(word), i.map(lambda k: word[:k] + word[k + 1:]),
                     i.map(lambda k: word[:k] + word[k] + word[k:]),
                     st.tuples(i, letter).map(lambda a: word[:a[0]] + a[1] + word[a[0] + 1:]),
                     i.map(lambda k: word[:k] + word[k + 1:k + 2] + word[k:k + 1] + word[k + 2:]))


NAMES = ("light", "lamp", "timer", "pin", "gpio", "countdown", "seconds", "a" * 32)
WORDISH = st.sampled_from(NAMES).flatmap(_typos) | st.text("abcdeilmnopst", max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(WORDISH, st.sampled_from([" ", "", "5", "'", "-", "\xe9", "A", "90"])), max_size=6),
       st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True), st.booleans())
def test_c_matches_python_on_typos(c_names, pieces, words, units):
    text = "".join(w.upper() if sep == "A" else w + sep for w, sep in pieces)
    assert c_names(text.encode(), tuple(words), units) is names_tool(text, tuple(words), units), text


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=60), st.booleans())
def test_c_matches_python_on_bytes(c_names, data, units):
    words = ("light", "ms", "s", "timer")
    assert c_names(data, words, units) is names_tool(data.decode("latin-1"), words, units), data


ACKS = [("thanks", True), ("Great!", True), ("ok, got it", True), ("cool, thank you very much", True),
        ("that's what I needed", True), ("\U0001f44d", True), ("", True), ("well done", True),
        ("thanks again", False), ("ok now off", False), ("great, and pin 7?", False), ("nice one", False),
        ("make it 8", False), ("undo that", False), ("no", False), ("thanks2", False), ("okk", False)]


@pytest.mark.parametrize("text, ack", ACKS)
def test_which_requests_are_bare_acknowledgements(c_names, text, ack):
    """"nice one" is "nice 1" once the device rewrites number words: a digit, so no acknowledgement."""
    said = digits_for_numbers(text)
    assert is_acknowledgement(said) is ack
    assert c_names(said.encode(), (), "a") is ack


def test_c_acknowledgement_words_are_pythons(c_names):
    for w in sorted(ACK_WORDS):
        assert c_names(w.upper().encode(), (), "a") and not c_names((w + "q").encode(), (), "a"), w
    assert not c_names(b"qq", (), "a")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(ACK_WORDS) + ["led", "off", "again", "x"]),
                          st.sampled_from([" ", ", ", "!", "'", "5", "\xe9", "-"])), max_size=5))
def test_c_matches_python_on_acknowledgements(c_names, pieces):
    text = "".join(w + sep for w, sep in pieces)
    assert c_names(text.encode("latin-1"), (), "a") is is_acknowledgement(text), text


def test_the_corpus_does_not_read_words():
    """`words` only gate: the shipped model, trained before the default spec listed them, saw the same
    corpus."""
    spec = load_spec(DEFAULT_SPEC_PATH)
    bare = dataclasses.replace(spec, tools=tuple(dataclasses.replace(t, words=()) for t in spec.tools))
    assert any(t.words for t in spec.tools)
    sizes = dict(seed=5, n_train=300, n_val=40, n_heldout=40)
    a, b = generate_corpus(spec, **sizes), generate_corpus(bare, **sizes)
    assert (a.train, a.val, a.heldout) == (b.train, b.val, b.heldout)


@pytest.mark.parametrize("words, message", [
    ('"dark"', "words must be an array of strings, got string"),
    ('["Dark"]', "words: 'Dark' is not one lower-case word (allowed: 1 to 32 letters a-z"),
    ('["two words"]', "words: 'two words' is not one lower-case word"),
    ('[""]', "words: '' is not one lower-case word"),
    ('["a' + "a" * 32 + '"]', "is not one lower-case word (allowed: 1 to 32 letters"),
    ('["dark", "dark"]', "words lists 'dark' twice (allowed: each once)"),
])
def test_bad_words_are_one_line(tmp_path, words, message):
    line = 'words = ["dark", "darkness", "bright", "black", "see", "toggle", "flip"]'
    assert line in DEFAULT_SPEC_PATH.read_text()
    text = DEFAULT_SPEC_PATH.read_text().replace(line, f"words = {words}", 1)
    path = tmp_path / "agent.toml"
    path.write_text(text)
    with pytest.raises(TinyAgentError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        load_spec(path)
    assert "\n" not in str(info.value)


def test_recent_tools_come_from_the_last_turn_that_ran_a_call(bpe, spec):
    """Conversation.load reads them from loaded turns, as eval's follow-ups load their history."""
    from tinyagent.integer.config import ModelConfig
    from tinyagent.integer.reference import Reference

    from conftest import make_int_model

    im = make_int_model(ModelConfig(vocab_size=320, ctx=96, dim=16, n_layers=1, n_heads=1, head_dim=16,
                                    ffn_dim=32), seed=1)[1]
    conv = conversation.Conversation(Reference(im), conversation.TokenClasses(bpe), grammar_from_spec(spec), 96)
    led = next(f for f in conv.grammar.forms if f.name == "led")
    conv.said = "do that again"
    assert not conv.named(led)
    conv.load([bpe.encode("turn on the light\n[led on]on\nThe light is on.\n"), bpe.encode("thanks\nOK.\n")])
    assert conv.recent == {"led"} and conv.named(led)
    conv.said = "thanks, great"  # an acknowledgement is no follow-up: the tool must be named again
    assert not conv.named(led)
    conv.said = "great, the light again"
    assert conv.named(led)
    conv.new()
    assert conv.recent == frozenset() and not conv.named(led)


NAMING = ["can only", "write out", "need", "turn on the ligth", "turn it off", "set pin 5 high", "now low",
          "lights out", "remind me in 90s", "any change a is give house her three", "yes", "great", "ok thanks"]


def test_unnamed_requests_ask_on_the_device_as_in_the_reference(tmp_path):
    """The shipped model calls a write tool for word salad ("write out" -> [led off]: it asks with the
    confidence gate off too, so the naming rule stops it; v13 also wrote [led on] for "can only" and
    "need", which v16 answers here): the device asks, as the reference does, and nothing runs; a typo,
    a follow-up of the last turn's tool and a duration in digits still run."""
    from test_gate import transcript

    b = build("host", tmp_path / "host", DEFAULT_RUN)
    requests = "".join(f"{r}\n" for r in NAMING)
    out = {board: transcript(board, DEFAULT_RUN, b.out, requests) for board in ("host", "reference")}
    assert out["host"] == out["reference"]
    turns = re.split(r"(?m)^> ", out["host"])[1:]
    assert all("\n[" not in t for t in turns[:3]), turns[:3]  # nothing ran
    assert "did you mean [led off]" in turns[1], turns[1]  # "write out": asked
    assert turns[3].startswith("turn on the ligth\n[led on] -> on\n"), turns[3]
    assert turns[4].startswith("turn it off\n[led off] -> off\n"), turns[4]  # the last turn's tool
    assert turns[5].startswith("set pin 5 high\n[gpio 5 1] -> ok\n"), turns[5]
    assert turns[8].startswith("remind me in 90s\n[timer 90] -> ok\n"), turns[8]


def test_the_build_names_the_phrasings_that_name_no_tool(tmp_path):
    """Without its `words`, the default agent's indirect phrasings name no tool: the build report says
    which, so that a user adds the words (the shipped spec lists them: none)."""
    from tinyagent.agent.naming import unnamed_note, unnamed_phrasings

    spec = load_spec(DEFAULT_SPEC_PATH)
    assert unnamed_phrasings(spec) == [] and unnamed_note(spec) == ""
    bare = dataclasses.replace(spec, tools=tuple(dataclasses.replace(t, words=()) for t in spec.tools))
    found = unnamed_phrasings(bare)
    assert ("led", "it's too dark in here") in found and ("led", "toggle it") in found
    assert ("gpio", "digitalWrite({pin}, {level})") in found
    assert all(t in ("led", "gpio", "timer") for t, _ in found)  # write tools only
    note = unnamed_note(bare)
    assert note.startswith(f"naming: {len(found)} phrasing(s) of a write tool name no word of it") and "\n" not in note
