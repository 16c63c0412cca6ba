"""The tool-call grammar: what is a valid call, and which prefixes can still become one."""
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
