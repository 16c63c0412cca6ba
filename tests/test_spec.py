"""The agent spec: the default agent loads, the scaffold validates, and every kind of mistake is
rejected with one line that names the file and the bad value."""
import re

import pytest

from tinyagent.agent.spec import (
    DEFAULT_SPEC_PATH,
    REPO_ROOT,
    Arg,
    call_fields,
    load_spec,
    parse_spec,
    scaffold,
    spec_hash,
)
from tinyagent.errors import EXIT_BAD_INPUT, TinyAgentError

SOURCE = "agents/x.toml"

BASE = """
[agent]
name = "t"

[synonyms]
light = ["light", "lamp"]

[[tools]]
name = "led"
call = "led {action}"
args.action = { type = "enum", values = ["on", "off"] }
result.format = "{state}"
result.slots.state = { type = "enum", values = ["on", "off"] }

[[tools.intents]]
name = "led_on"
args = { action = "on" }
phrasings = ["turn on the {light}", "{light} on", "switch the {light} on"]
answers = ["The light is {state}."]

[[tools]]
name = "timer"
call = "timer {seconds}"
args.seconds = { type = "int", min = 1, max = 3600, unit = "seconds" }
result.format = "ok"

[[tools.intents]]
name = "timer"
phrasings = ["timer {seconds:minutes}", "count {seconds:seconds}", "set a timer for {seconds}"]
answers = ["Timer set for {seconds:seconds}."]

[[chat]]
name = "hello"
phrasings = ["hello", "hi", "hey"]
answers = ["Hello!"]
"""


def test_base_is_valid():
    spec = parse_spec(BASE, SOURCE)
    assert [t.name for t in spec.tools] == ["led", "timer"]
    assert [i.name for i in spec.intents] == ["led_on", "timer", "hello"]
    assert spec.tool("led").intents[0].fixed_args == {"action": "on"}


def test_default_spec_loads_with_the_default_tools():
    spec = load_spec(DEFAULT_SPEC_PATH)
    calls = {t.name: t.call for t in spec.tools}
    assert calls == {"led": "led {action}", "gpio": "gpio {pin} {level}", "temp": "temp",
                     "uptime": "uptime", "timer": "timer {seconds}", "status": "status"}
    assert spec.tool("led").arg("action").values == ("on", "off", "toggle")
    assert spec.tool("status").result == "led={led} temp={temp} up={up}"
    for intent in spec.intents:
        assert len(intent.phrasings) >= (30 if intent.tool else 14), intent.name
    assert {"greeting", "name", "joke", "capabilities"} <= {i.name for i in spec.chat}


def test_call_fields_start_with_the_tool_name():
    spec = load_spec(DEFAULT_SPEC_PATH)
    pin, level = spec.tool("gpio").args
    assert call_fields(spec.tool("gpio")) == ["gpio", pin, level]
    assert call_fields(spec.tool("temp")) == ["temp"]
    assert pin == Arg("pin", "int", min=0, max=39)


@pytest.mark.parametrize("text, ok", [
    ("gpio 5 1", True), ("gpio 0 0", True), ("gpio 39 1", True), ("led toggle", True),
    ("timer 300s", True), ("timer 1h30m", True), ("temp", True), ("timer 300", False), ("timer 25h", False),
    ("gpio 05 1", False), ("gpio 40 1", False), ("gpio -1 1", False), ("gpio 5", False),
    ("led dim", False), ("lamp on", False), ("timer 0s", False), ("temp now", False),
])
def test_the_call_grammar_takes_only_valid_calls(text, ok):
    """The calls the device runs (grammar.complete: what decoding lets through), no brackets."""
    from tinyagent.agent.grammar import grammar_from_spec

    assert grammar_from_spec(load_spec(DEFAULT_SPEC_PATH)).complete(text) is ok


def test_spec_hash_ignores_path_and_layout_but_not_content():
    a = parse_spec(BASE, "a.toml")
    b = parse_spec("# a comment\n" + BASE.replace('name = "t"', 'name   =   "t"'), "b.toml")
    c = parse_spec(BASE.replace('"Hello!"', '"Hello there!"'), "a.toml")
    assert spec_hash(a) == spec_hash(b) != spec_hash(c)
    assert len(spec_hash(a)) == 64


def test_scaffold_validates():
    spec = parse_spec(scaffold("blinky"))
    assert spec.name == "blinky"
    with pytest.raises(TinyAgentError, match="'My Agent' is not a plain lowercase word"):
        scaffold("My Agent")


def test_missing_file():
    with pytest.raises(TinyAgentError, match="nope.toml: agent spec not found"):
        load_spec("nope.toml")


# (replace this, with that, the error must contain these)
BAD = [
    ('call = "led {action}"', 'call = "led {action}"\nphrasing = ["x"]',
     ["tool 'led'", "unknown field 'phrasing'", "allowed: name, description, args, call, result, intents"]),
    ('[agent]', '[extra]\nx = 1\n[agent]', ["unknown field 'extra'", "allowed: agent, synonyms"]),
    ('name = "led_on"', 'name = "led_on"\nphrase = ["x"]', ["intent 'led_on'", "unknown field 'phrase'"]),
    ('unit = "seconds" }', 'unit = "seconds", step = 5 }', ["arg 'seconds'", "unknown field 'step'"]),
    ('values = ["on", "off"] }\nresult.format', 'values = [] }\nresult.format',
     ["arg 'action'", "values [] is empty"]),
    ('phrasings = ["turn on the {light}", "{light} on", "switch the {light} on"]', 'phrasings = []',
     ["intent 'led_on'", "phrasings is empty"]),
    ('phrasings = ["turn on the {light}", "{light} on", "switch the {light} on"]\n', '',
     ["intent 'led_on'", "missing field 'phrasings'"]),
    ('"{light} on"', '"{lights} on"', ["unknown slot '{lights}'", "synonyms light"]),
    ('"{light} on"', '"{light} {state}"', ["result slot '{state}'", "not known before the call"]),
    ('"{light} on"', '"{Light} on"', ["bad placeholder '{Light}'"]),
    ('"{light} on"', '"{light on"', ["stray '{'"]),
    ('min = 1, max = 3600', 'min = 10, max = 5', ["arg 'seconds'", "min 10 > max 5"]),
    ('min = 1, max = 3600', 'min = -5, max = 3600', ["min -5 is out of range", "allowed: 0.."]),
    ('min = 1, max = 3600', 'min = "1", max = 3600', ["min must be an integer, got string '1'"]),
    ('name = "timer"\ncall = "timer {seconds}"', 'name = "led"\ncall = "led {seconds}"',
     ["duplicate tool name 'led'"]),
    ('call = "timer {seconds}"', 'call = "timer {secs}"', ["unknown arg 'secs'", "allowed: seconds"]),
    ('call = "timer {seconds}"', 'call = "timer"', ["does not use arg 'seconds'"]),
    ('call = "timer {seconds}"', 'call = "timer  {seconds}"', ["is not a word or an {arg}", "single spaces"]),
    ('call = "timer {seconds}"', 'call = "clock {seconds}"', ["must start with the tool name 'timer'"]),
    ('call = "timer {seconds}"', 'call = "timer {seconds} {seconds}"', ["uses arg 'seconds' twice"]),
    ('call = "timer {seconds}"', 'call = "timer for={seconds}"', ["field 'for={seconds}'"]),
    ('name = "led"', 'name = "LED"', ["name 'LED' is not a plain lowercase word", "[a-z][a-z0-9_]*"]),
    ('values = ["on", "off"] }\nresult.format', 'values = ["on", "Off"] }\nresult.format',
     ["enum value 'Off' is not a plain lowercase word"]),
    ('values = ["on", "off"] }\nresult.format', 'values = ["on", "on"] }\nresult.format',
     ["enum value 'on' is listed twice"]),
    ('type = "enum", values = ["on", "off"] }\nresult.format', 'type = "bool" }\nresult.format',
     ["unknown type 'bool'", "allowed: enum, int"]),
    ('args.seconds = { type = "int"', 'args.seconds = { type = "decimal"', ["unknown type 'decimal'"]),
    ('name = "t"', 'name = t', ["agents/x.toml: bad TOML", "line 3"]),
    ('name = "hello"', 'name = "timer"', ["duplicate intent name 'timer'"]),
    ('"hi", "hey"', '"hi", "{light} on"', ["phrasing '{light} on' is also in intent 'led_on'"]),
    ('"hi", "hey"', '"hi", "hi"', ["phrasings lists 'hi' twice"]),
    ('"set a timer for {seconds}"', '"set a timer"', ["does not mention arg '{seconds}'"]),
    ('{seconds:minutes}', '{seconds:days}', ["unknown unit 'days'", "allowed: seconds, minutes, hours"]),
    ('"Timer set for {seconds:seconds}."', '"Timer set for {seconds:minutes}."',
     ["'{seconds:minutes}' is not allowed", "{seconds:seconds}"]),
    ('"The light is {state}."', '"The light is {status}."',
     ["unknown slot '{status}'", "allowed: action, state"]),
    ('args = { action = "on" }', 'args = { action = "dim" }', ["action = 'dim' is not one of", "on, off"]),
    ('args = { action = "on" }', 'args = { level = 1 }', ["unknown field 'level'", "allowed: action"]),
    ('"hello", "hi"', '"hello [there]", "hi"', ["contains '['"]),
    ('"hello", "hi"', '" hello", "hi"', ["leading/trailing spaces"]),
    ('result.format = "{state}"', 'result.format = "{stat}"', ["unknown slot '{stat}'", "allowed: state"]),
    ('result.format = "{state}"', 'result.format = "done"', ["must use slot 'state' exactly once"]),
    ('answers = ["Hello!"]', 'answers = ["Hello {light}!"]', ["contains '{'"]),
    ('light = ["light", "lamp"]', 'light = ["light", "lamp"]\nstate = ["x"]',
     ["[synonyms]", "'state' is also an arg or result slot of tool 'led'"]),
    ('[agent]', '[corpus]\ntypo = 0.1\n[agent]', ["[corpus]", "unknown field 'typo'"]),
    ('[agent]', '[corpus]\ntypo_rate = 1.5\n[agent]', ["typo_rate 1.5 is out of range"]),
    ('[[chat]]\nname = "hello"', '[[chat]]\nweight = 0\nname = "hello"',
     ["chat 'hello'", "weight 0.0 is not positive"]),
    (BASE[BASE.index("[[tools.intents]]"):BASE.index("[[tools]]\nname = \"timer\"")], 'intents = []\n',
     ["tool 'led'", "no intents"]),
    (BASE[BASE.index("[[tools]]"):BASE.index("[[chat]]")], '[tools]\nname = "led"\n',
     ["expected an array of tables ([[tools]]), got table"]),
    ('call = "led {action}"', 'call = "led {action}"\neffect = "maybe"',
     ["tool 'led'", "effect 'maybe' is not 'write' or 'read'"]),
    ('call = "led {action}"', 'call = "led {action}"\nnouns = ["the {lamp}"]',
     ["tool 'led'", "noun 'the {lamp}' uses unknown slot '{lamp}'", "allowed: synonyms and args"]),
    ('name = "led_on"', 'name = "led_on"\npolarity = "up"', ["intent 'led_on'", "polarity 'up' is not 'on' or 'off'"]),
    ('{ type = "int", min = 1, max = 3600, unit = "seconds" }', '{ type = "duration", min = 0, max = 3600 }',
     ["arg 'seconds'", "min 0 is out of range", "at least 1 second"]),
    ('{ type = "int", min = 1, max = 3600, unit = "seconds" }', '{ type = "duration", min = 1, max = 60, unit = "minutes" }',
     ["arg 'seconds'", "unknown field 'unit'"]),
    ('result.slots.state = { type = "enum", values = ["on", "off"] }',
     'result.slots.state = { type = "duration", min = 1, max = 9 }', ["unknown type 'duration'", "allowed: enum, int, decimal"]),
    ('[agent]', '[corpus]\nnegation_fraction = 0.5\ncorrection_fraction = 0.5\nchat_fraction = 0.2\n[agent]',
     ["exceeds 1.0"]),
]


def test_duration_effect_nouns_polarity():
    spec = parse_spec(BASE.replace('{ type = "int", min = 1, max = 3600, unit = "seconds" }',
                                   '{ type = "duration", min = 1, max = 3600 }')
                      .replace('call = "led {action}"', 'call = "led {action}"\nnouns = ["the {light}"]')
                      .replace('name = "led_on"', 'name = "led_on"\npolarity = "on"')
                      .replace('call = "timer {seconds}"', 'call = "timer {seconds}"\neffect = "read"'), SOURCE)
    assert spec.tool("timer").arg("seconds") == Arg("seconds", "duration", min=1, max=3600, unit="seconds")
    assert spec.tool("led").nouns == ("the {light}",) and spec.tool("led").acts
    assert not spec.tool("timer").acts and spec.tool("timer").noun_templates() == ("the timer",)
    assert spec.tool("led").intents[0].polarity == "on"
    default = load_spec(DEFAULT_SPEC_PATH)
    assert {t.name for t in default.tools if t.acts} == {"led", "gpio", "timer"}


@pytest.mark.parametrize("old, new, expected", BAD, ids=[b[2][-1][:40] for b in BAD])
def test_validator_rejects(old, new, expected):
    assert old in BASE, old
    with pytest.raises(TinyAgentError) as info:
        parse_spec(BASE.replace(old, new, 1), SOURCE)
    msg = str(info.value)
    assert info.value.code == EXIT_BAD_INPUT
    assert "\n" not in msg
    assert msg.startswith(SOURCE + ": ")
    for part in expected:
        assert part in msg, f"{part!r} not in {msg!r}"


def test_result_slot_types():
    spec = parse_spec(BASE.replace(
        'result.format = "ok"',
        'result.format = "t={t} n={n}"\n'
        'result.slots.t = { type = "decimal", min = -20.5, max = 60.0, places = 1 }\n'
        'result.slots.n = { type = "int", min = -3, max = 3 }'), SOURCE)
    t = spec.tool("timer").result_slots[0]
    assert (t.kind, t.min, t.max, t.places) == ("decimal", -205, 600, 1)
    with pytest.raises(TinyAgentError, match="max 60.05 has more than 1 decimal places"):
        parse_spec(BASE.replace(
            'result.format = "ok"',
            'result.format = "{t}"\nresult.slots.t = { type = "decimal", min = 0, max = 60.05, places = 1 }'),
            SOURCE)


def test_docs_example_validates():
    doc = (REPO_ROOT / "docs" / "agent-spec.md").read_text()
    example = re.search(r"## A complete small spec\n\n```toml\n(.*?)```", doc, re.S).group(1)
    assert parse_spec(example, "docs/agent-spec.md").name == "blinky"


@pytest.mark.parametrize("arg_unit, lo, hi, unit, want", [
    ("seconds", 90, 3600, "minutes", (2, 60)),  # the whole minutes inside 90..3600 s: from 2 (rounded up)
    ("seconds", 90, 3599, "hours", (1, 0)),  # none: no whole hour lies inside
    ("seconds", 3600, 7200, "hours", (1, 2)),
    ("seconds", 5, 600, "seconds", (5, 600)),
    ("minutes", 2, 90, "seconds", (120, 5400)),  # a smaller unit: every value converts exactly
    ("hours", 1, 3, "minutes", (60, 180)),
])
def test_unit_range_counts_whole_units(arg_unit, lo, hi, unit, want):
    from tinyagent.agent.spec import unit_range

    got = unit_range(Arg(name="t", kind="int", min=lo, max=hi, unit=arg_unit), unit)
    assert got == want and all(type(v) is int for v in got)


def test_template_parts_keep_the_literal_text_and_refuse_a_stray_brace():
    from tinyagent.agent.spec import Ref, template_parts

    assert template_parts("set {pin} high") == ("set ", Ref("pin"), " high")
    assert template_parts("{seconds:minutes} on the clock") == (Ref("seconds", "minutes"), " on the clock")
    for bad in ("a } b", "a { b", "x}"):
        with pytest.raises(ValueError, match="stray '\\{' or '\\}'"):
            template_parts(bad)
