"""`tinyagent eval --conversations FILE`: hand-written multi-turn conversations scored per category on a
scripted simulated board, every miss listed."""
from __future__ import annotations

import json
from collections import Counter

import pytest
from click.testing import CliRunner

from tinyagent.agent.grammar import grammar_from_spec
from tinyagent.agent.spec import DEFAULT_SPEC_PATH, REPO_ROOT, load_spec
from tinyagent.cli import main
from tinyagent.errors import TinyAgentError
from tinyagent.training.evaluate import ScriptedSimHal, answer_has, load_conversations, score_conversations

SHIPPED = REPO_ROOT / "models" / "default"
SHIPPED_SET = REPO_ROOT / "tests" / "handwritten" / "conversations-default.txt"


@pytest.fixture(scope="module")
def grammar():
    return grammar_from_spec(load_spec(DEFAULT_SPEC_PATH))


def write(tmp_path, text: str):
    p = tmp_path / "conv.txt"
    p.write_text(text, encoding="utf-8")
    return p


def test_load_conversations(tmp_path, grammar):
    p = write(tmp_path, "# a comment\n\n=== a1 followup temp=22.0,25.5 led=on up=3600\n"
                        "> light off\tled off\n> and a 5 minute timer\ttimer 300\n"
                        "> is that hot?\t- | no/not warm\n> thanks\t-\tunrelated\n"
                        "=== b conditional\n> if it's over 25 set pin 5 high\ttemp ; gpio 5 1\tconditional\n")
    a, b = load_conversations(p, grammar)
    assert (a.id, a.category, a.temps, a.led, a.up, a.line) == ("a1", "followup", (220, 255), True, 3600, 3)
    assert [(t.category, t.want, t.words, t.line) for t in a.turns] == [
        ("first", ("led off",), (), 4), ("followup", ("timer 300",), (), 5),
        ("followup", (), (("no", "not"), ("warm",)), 6), ("unrelated", (), (), 7)]
    assert (b.temps, b.led, b.up) == ((235,), False, 12)  # the simulated board's defaults
    assert [(t.category, t.want) for t in b.turns] == [("conditional", ("temp", "gpio 5 1"))]


@pytest.mark.parametrize("body, message", [
    ("> light on\tled on\n", "conv.txt:1: a turn before any '=== ID CATEGORY' line"),
    ("=== a\n> light on\tled on\n", "conv.txt:1: a conversation starts '=== ID CATEGORY"),
    ("=== a x\n=== b x\n> hi\t-\n", "conv.txt:1: conversation 'a' has no turns"),
    ("=== a x\n> hi\t-\n=== a x\n> hi\t-\n", "conv.txt:3: conversation id 'a' is used twice"),
    ("=== a x colour=red\n> hi\t-\n", "conv.txt:1: board setting 'colour=red' is not allowed"),
    ("=== a x temp=22.0,99\n> hi\t-\n", "conv.txt:1: temperature '99' is not allowed"),
    ("=== a x temp=22.25\n> hi\t-\n", "temperature '22.25' is not allowed"),
    ("=== a x led=dim\n> hi\t-\n", "conv.txt:1: led='dim' is not allowed"),
    ("=== a x up=-1\n> hi\t-\n", "conv.txt:1: up='-1' is not allowed"),
    ("=== a x\n> light on\n", "conv.txt:2: a turn is '> REQUEST<TAB>EXPECTED[<TAB>CATEGORY]', got 1"),
    ("=== a x\n> light on\tled dim\n", "conv.txt:2: expected call 'led dim' is not a valid call"),
    ("=== a x\n> a timer\ttimer 5m\n", "conv.txt:2: expected call 'timer 5m' is not a valid call"),  # seconds
    ("=== a x\n> pin 40\tgpio 40 1\n", "conv.txt:2: expected call 'gpio 40 1'"),
    ("=== a x\n> two\tled on ;\n", "conv.txt:2: expected 'led on ;' is not allowed"),
    ("=== a x\n> hot?\t- |\n", "conv.txt:2: answer words '' are not allowed"),
    ("=== a x\n> hot?\t- | no/\n", "conv.txt:2: answer words 'no/' are not allowed"),
    ("=== a x\n> hi\t-\tno way\n", "conv.txt:2: category 'no way' is not allowed"),
    ("=== a x\nlight on\tled on\n", "conv.txt:2: not a line of a conversation file"),
    ("# only a comment\n", "no conversations"),
])
def test_bad_conversation_files_are_one_line(tmp_path, grammar, body, message):
    with pytest.raises(TinyAgentError) as e:
        load_conversations(write(tmp_path, body), grammar)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_missing_conversation_file(tmp_path):
    with pytest.raises(TinyAgentError, match="conversation file not found"):
        load_conversations(tmp_path / "nope.txt")


def test_shipped_set_loads(grammar):
    convs = load_conversations(SHIPPED_SET, grammar)
    assert len(convs) >= 60 and all(2 <= len(c.turns) <= 5 for c in convs)
    per = Counter(t.category for c in convs for t in c.turns)
    assert set(per) == {"first", "followup", "result", "conditional", "unrelated"}
    assert min(per.values()) >= 10, per
    acting = {f.name for f in grammar.forms if f.acts}
    cond = [t for c in convs for t in c.turns if t.category == "conditional"]
    taken = [t for t in cond if any(x.split(" ")[0] in acting for x in t.want)]
    assert len(taken) >= 5 and len(cond) - len(taken) >= 5  # both branches of every kind
    # each conditional request is written for both branches, on two boards
    assert Counter(t.text for t in taken) == Counter(t.text for t in cond if t not in taken)
    assert all(t.words for c in convs for t in c.turns if t.category == "result" and not t.want)


def test_scripted_board():
    hal = ScriptedSimHal((220, 255), led=True, up=3600)
    assert [hal("temp", []), hal("status", []), hal("temp", [])] == ["22.0", "led=on temp=25.5 up=3600", "25.5"]
    assert [hal("led", ["toggle"]), hal("uptime", []), hal("gpio", ["5", "1"])] == ["off", "3600", "ok"]


def test_answer_words():
    assert answer_has("No, it's not hot.", (("no", "not"),))
    assert answer_has("That is 1.5 hours.", (("1.5", "half"),)) and not answer_has("That is 1.5 hours.", (("5",),))
    assert not answer_has("It was 50 seconds", (("5",),)) and answer_has("About 5.", (("5",),))
    assert not answer_has("I know", (("no",),)) and answer_has("", ())
    assert not answer_has("yes, 60", (("yes",), ("two", "2")))


CONVERSATIONS = ("=== a followup\n> turn on the light\tled on\n> turn it off\tled on\n"
                 "=== b unrelated temp=23.5\n> what's the temperature?\ttemp\n> thanks\t-\n"
                 "=== c conditional temp=27.0\n> check the temperature and if it's over 25 set pin 5 high\t"
                 "temp ; gpio 5 1\tconditional\n> what's the uptime?\tuptime\tunrelated\n")


def test_score_conversations_on_the_shipped_model(tmp_path):
    """Three conversations; one expectation is wrong on purpose ('turn it off' wanted as led on)."""
    report = score_conversations(SHIPPED, write(tmp_path, CONVERSATIONS))
    assert report["n_conversations"] == 3 and report["total"]["n"] == 6
    for row in list(report["categories"].values()) + [report["total"]]:
        assert 0 <= row["right"] <= row["n"] and row["unasked"] <= row["n"]
    assert report["total"]["right"] + len(report["misses"]) == report["total"]["n"]
    assert sum(r["n"] for r in report["categories"].values()) == report["total"]["n"]
    assert report["categories"]["first"]["n"] == 2
    assert report["followup"]["n"] == report["categories"]["followup"]["n"] == 1
    assert report["followup"]["right"] == 0  # whatever it did, led on was not right after led on
    c = report["conditional"]
    assert (c["taken"]["n"], c["not_taken"]["n"]) == (1, 0)
    assert c["taken"]["right"] == report["categories"]["conditional"]["right"]
    miss = next(m for m in report["misses"] if m["id"] == "a" and m["turn"] == 2)
    assert (miss["request"], miss["want"], miss["category"], miss["line"]) == ("turn it off", ["led on"], "followup", 3)
    assert miss["unasked"] == any(g.startswith(("led", "gpio", "timer")) and g != "led on" for g in miss["got"])


def test_eval_conversations_cli(tmp_path):
    p = write(tmp_path, CONVERSATIONS)
    out = tmp_path / "report.json"
    r = CliRunner().invoke(main, ["eval", "--conversations", str(p), "--json", str(out)])
    assert r.exit_code == 0, r.output
    saved = json.loads(out.read_text())
    assert saved["n_conversations"] == 3 and saved["total"]["n"] == 6
    assert f"{len(saved['misses'])} misses" in r.output and "a 2: turn it off | led on |" in r.output
    assert "follow-up turns right:" in r.output and "conditional right: action taken" in r.output
    r = CliRunner().invoke(main, ["eval", "--conversations", str(p), "--requests", str(p)])
    assert r.exit_code == 2 and "given together" in r.output


def test_eval_conversations_missing_file_is_one_line(tmp_path):
    r = CliRunner().invoke(main, ["eval", "--conversations", str(tmp_path / "nope.txt")])
    assert r.exit_code == 2 and "conversation file not found" in r.output and "Traceback" not in r.output
