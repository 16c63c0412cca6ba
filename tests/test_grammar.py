"""The tool-call grammar: what is a valid call, and which prefixes can still become one."""
import pytest

from tinyagent.grammar import CallForm, Field, Grammar

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
