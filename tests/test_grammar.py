"""The tool-call grammar: what is a valid call, and which prefixes can still become one."""
import numpy as np
import pytest

from tinyagent.agent.grammar import CallForm, Field, Grammar

G = Grammar([
    CallForm("led", (Field("enum", ("on", "off", "toggle")),)),
    CallForm("gpio", (Field("int", (), 0, 39), Field("enum", ("0", "1")))),
    CallForm("temp", ()),
    CallForm("timer", (Field("int", (), 1, 86400),)),
])


@pytest.mark.parametrize("call", ["led on", "led toggle", "gpio 0 1", "gpio 39 0", "temp", "timer 300",
                                  "timer 86400"])
def test_complete(call):
    assert G.complete(call) and G.viable(call)


@pytest.mark.parametrize("call", ["led", "led onn", "gpio 40 1", "gpio 05 1", "gpio 5", "temp ", "timer 0",
                                  "timer 86401", "timer -5", "led  on", "LED on", "", "timer 3OO"])
def test_not_complete(call):
    assert not G.complete(call)


@pytest.mark.parametrize("prefix", ["", "l", "le", "led ", "led t", "gpio 3", "gpio 39 ", "timer 8640",
                                    "timer 9", "te"])
def test_viable_prefixes(prefix):
    assert G.viable(prefix)


@pytest.mark.parametrize("prefix", ["x", "led x", "gpio 4 2", "gpio 40", "gpio 0 1 ", "timer 0", "timer 86401",
                                    "timer 99999", "temp x", "gpio 01"])
def test_dead_prefixes(prefix):
    assert not G.viable(prefix)


def test_the_longest_enum_word_counts_wherever_it_is_listed():
    """`mode {on, standby}`: the longest call is 12 bytes ("mode standby"), not 7 from the first word."""
    g = Grammar([CallForm("mode", (Field("enum", ("on", "standby")),))])
    assert g.max_len == 12 and g.viable("mode standby") and g.complete("mode standby")
    from tinyagent.agent.grammar import grammar_from_spec
    from tinyagent.agent.spec import parse_spec
    spec = parse_spec("""
[agent]
name = "m"
[[tools]]
name = "mode"
call = "mode {m}"
args.m = { type = "enum", values = ["on", "standby"] }
result.format = "ok"
[[tools.intents]]
name = "standby"
args = { m = "standby" }
phrasings = ["go to standby", "standby now", "sleep mode"]
answers = ["OK."]
""")
    assert grammar_from_spec(spec).max_len == 12


def test_the_device_gets_the_longest_enum_word_too(tiny_int, bpe, tmp_path):
    """The C grammar's bound is generated from Grammar.max_len (ta_tools.c), not measured again."""
    from tinyagent.codegen.generate import generate_sources

    g = Grammar([CallForm("mode", (Field("enum", ("on", "standby")),))])
    tools = tmp_path / "mode_tools.c"
    tools.write_text('#include "ta_tools.h"\nta_status ta_tool_mode(const ta_call *call, char *result, size_t cap)\n'
                     '{\n    (void)call;\n    ta_cat(result, cap, "ok");\n    return TA_OK;\n}\n')
    generate_sources(tiny_int[1], bpe, g, "harness", tmp_path / "src", user_tools_c=tools)
    tools_c = next((tmp_path / "src").rglob("ta_tools.c")).read_text()
    assert ".max_call_len = 12," in tools_c and '"standby"' in tools_c


def test_max_len_is_the_longest_call_exactly():
    """max_len is the longest text of any form: an int at its top's digits, an enum at its longest word
    (here "standby", which sorts before "zz": not the largest word), a duration at every part's digits."""
    g = Grammar([CallForm("mode", (Field("enum", ("standby", "zz")),)),
                 CallForm("gpio", (Field("int", (), 0, 39), Field("enum", ("0", "1"))))])
    assert g.max_len == len("mode standby") and g.complete("mode standby") and g.viable("mode standby")
    assert Grammar(G.forms).max_len == len("timer 86400")
    d = Grammar([CallForm("t", (Field("dur", (), 1, 86400),))])
    assert d.max_len == len("t 24h1440m86400s")


def test_a_duration_is_parsed_to_seconds_in_its_own_field():
    """parse hands the HAL seconds for the duration field, and leaves the field after it as it is."""
    g = Grammar([CallForm("pump", (Field("dur", (), 1, 600), Field("int", (), 0, 9)))])
    assert g.parse("pump 1m30s 7") == ("pump", ["90", "7"])
    assert g.normalize("pump 10m 0") == "pump 600 0"
    assert not g.complete("pump 10m1s 0") and not g.complete("pump 1m30s")


def test_a_duration_past_int32_is_refused():
    """As the C adds it up in int32: 2^31 - 1 seconds is the most any duration can be, whatever its top."""
    g = Grammar([CallForm("t", (Field("dur", (), 1, 2**31 - 1),))])
    assert g.complete("t 596523h14m7s") and g.parse("t 596523h14m7s") == ("t", [str(2**31 - 1)])
    assert not g.complete("t 596523h14m8s") and not g.complete("t 2147483648s")
    assert g.complete("t 2147483647s") and not g.viable("t 2147483648")


def test_top_margin_on_int_and_float_logits():
    """The gate's margin: the argmax (lowest index among equals) and its lead, capped at int32 as in
    ta_agent.c; floats (eval of a float stage) keep their fraction; one logit leads by 0."""
    from tinyagent.agent.conversation import top_margin

    assert top_margin(np.array([3, 9, 9, -2], dtype=np.int32)) == (1, 0)
    assert top_margin(np.array([-2**31, 2**31 - 1], dtype=np.int32)) == (1, 2**31 - 1)
    assert top_margin(np.array([5, 1], dtype=np.int64)) == (0, 4)
    assert top_margin(np.array([7], dtype=np.int32)) == (0, 0)
    best, lead = top_margin(np.array([0.25, 1.0, 0.5]))
    assert best == 1 and lead == 0.5 and isinstance(lead, float)
