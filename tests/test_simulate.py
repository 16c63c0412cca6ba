"""The simulated board (simulated_hal.SpecHal) and the tools C file rendered from the same spec
(tools_file.render_tools_c): SpecHal is conversation.SimHal on the default agent's tools, follows any
other spec's result formats, and the generated handlers give the same results on the device."""
from __future__ import annotations

import io
import json
import re
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from test_agent_c import REQUESTS, calling_model
from tinyagent.agent import conversation
from tinyagent.agent.grammar import grammar_from_spec
from tinyagent.agent.simulated_hal import RESULT_MAX, SpecHal, tool_sims
from tinyagent.agent.spec import DEFAULT_SPEC_PATH, load_spec, parse_spec, scaffold
from tinyagent.cli import main
from tinyagent.codegen.tools_file import render_tools_c, write_tools_c
from tinyagent.device.chat import chat
from tinyagent.errors import TinyAgentError
from tinyagent.integer.config import ModelConfig
from tinyagent.integer.reference import Reference
from tinyagent.targets.build import build

from c_harness import start_firmware
from conftest import make_int_model

REPO = Path(__file__).resolve().parents[1]

# A small agent of its own: enum results that follow the call, toggle, rest at "closed", numbers, a
# literal, and one tool defined as the default agent's (temp), simulated like the others here.
CUSTOM = '''
[agent]
name = "greenhouse"

[[tools]]
name = "fan"
call = "fan {speed}"
args.speed = { type = "enum", values = ["off", "low", "high"] }
result.format = "fan {now}"
result.slots.now = { type = "enum", values = ["off", "low", "high"] }
[[tools.intents]]
name = "fan"
phrasings = ["fan {speed}", "set the fan to {speed}"]
answers = ["The fan is {now}."]

[[tools]]
name = "lamp"
call = "lamp {action}"
args.action = { type = "enum", values = ["on", "off", "toggle"] }
result.format = "{state}"
result.slots.state = { type = "enum", values = ["on", "off"] }
[[tools.intents]]
name = "lamp"
phrasings = ["lamp {action}", "grow light {action}"]
answers = ["The lamp is {state}."]

[[tools]]
name = "vent"
effect = "read"
call = "vent"
result.format = "vent {state}"
result.slots.state = { type = "enum", values = ["open", "closed"] }
[[tools.intents]]
name = "vent"
phrasings = ["is the vent open", "vent?"]
answers = ["The vent is {state}."]

[[tools]]
name = "soil"
effect = "read"
call = "soil {bed}"
args.bed = { type = "int", min = 1, max = 12 }
result.format = "bed {moisture}% {ph} pH"
result.slots.moisture = { type = "decimal", min = 0.0, max = 100.0, places = 1 }
result.slots.ph = { type = "decimal", min = 3.5, max = 9.05, places = 2 }
[[tools.intents]]
name = "soil"
phrasings = ["how wet is bed {bed}", "soil {bed}"]
answers = ["Bed {bed}: {moisture}%."]

[[tools]]
name = "offset"
effect = "read"
call = "offset"
result.format = "{delta}"
result.slots.delta = { type = "int", min = -40, max = 3 }
[[tools.intents]]
name = "offset"
phrasings = ["what is the offset", "offset"]
answers = ["The offset is {delta}."]

[[tools]]
name = "water"
call = "water {bed} for {seconds}"
args.bed = { type = "int", min = 1, max = 12 }
args.seconds = { type = "int", min = 1, max = 600, unit = "seconds" }
result.format = "ok"
[[tools.intents]]
name = "water"
phrasings = ["water bed {bed} for {seconds:seconds}", "water {bed} {seconds:seconds}"]
answers = ["Watering."]

[[tools]]
name = "temp"
effect = "read"
description = "Read the temperature in degrees Celsius."
call = "temp"
result.format = "{celsius}"
result.slots.celsius = { type = "decimal", min = -20.0, max = 60.0, places = 1 }
[[tools.intents]]
name = "temp"
phrasings = ["how warm is it", "temperature"]
answers = ["It is {celsius} C."]
'''
CUSTOM_REQUESTS = ["fan high please", "lamp toggle", "is the vent open", "how wet is bed 3", "offset",
                   "water bed 2 for 30 seconds", "how warm is it", "hello", "toggle the lamp twice"]


@pytest.fixture(scope="module")
def custom():
    return parse_spec(CUSTOM, "greenhouse.toml")


def freeze_clock(monkeypatch) -> None:
    """conversation.SimHal's clock stopped (uptime 0), as the test harness's is."""
    monkeypatch.setattr(conversation, "time", types.SimpleNamespace(monotonic=lambda: 100.0))


# ---- the simulation ------------------------------------------------------------------------------

@pytest.mark.parametrize("temp_deci", [235, None, -47])
def test_default_agent_is_simhal_call_for_call(monkeypatch, temp_deci):
    calls = [("status", []), ("led", ["toggle"]), ("status", []), ("led", ["on"]), ("led", ["toggle"]),
             ("led", ["off"]), ("led", ["off"]), ("gpio", ["39", "1"]), ("gpio", ["0", "0"]), ("temp", []),
             ("uptime", []), ("timer", ["86400"]), ("led", ["on"]), ("status", []), ("nosuch", [])]
    freeze_clock(monkeypatch)
    sim = conversation.SimHal(temp_deci=temp_deci)
    hal = SpecHal(load_spec(DEFAULT_SPEC_PATH), temp_deci=temp_deci)
    assert all(s.board for s in tool_sims(load_spec(DEFAULT_SPEC_PATH)))
    assert [hal(t, a) for t, a in calls] == [sim(t, a) for t, a in calls]


def test_an_agent_of_some_default_tools_is_the_default_board(monkeypatch):
    text = DEFAULT_SPEC_PATH.read_text()
    head, *tools = text.split("\n[[tools]]\n")
    some = parse_spec(head + "".join("\n[[tools]]\n" + t for t in tools if t.startswith(('name = "temp"',
                                                                                         'name = "led"'))))
    assert [t.name for t in some.tools] == ["led", "temp"] and all(s.board for s in tool_sims(some))
    freeze_clock(monkeypatch)
    hal = SpecHal(some)
    assert [hal("led", ["toggle"]), hal("temp", [])] == ["on", "23.5"]


def test_custom_results_follow_the_spec(custom):
    hal = SpecHal(custom)
    assert [hal("fan", [w]) for w in ("high", "low", "off")] == ["fan high", "fan low", "fan off"]
    assert [hal("lamp", [w]) for w in ("toggle", "toggle", "on", "on", "off")] == ["on", "off", "on", "on", "off"]
    assert hal("vent", []) == "vent closed"  # at rest
    assert hal("soil", ["3"]) == "bed 50.0% 6.27 pH"  # midpoints: 0.0..100.0, 3.50..9.05
    assert hal("offset", []) == "-19"  # -40..3
    assert hal("water", ["2", "for", "30"]) == "ok"
    assert hal("temp", []) == "20.0"  # -20.0..60.0: a stand-in, in the reference and the tools file
    assert not any(s.board for s in tool_sims(custom))


def test_a_tool_unlike_the_default_agents_is_not_a_board_tool(custom):
    led = parse_spec(scaffold("mine"))  # its led has no toggle; its timer another range
    assert not any(s.board for s in tool_sims(led))
    hal = SpecHal(led)
    assert [hal("led", ["on"]), hal("led", ["off"]), hal("timer", ["5"])] == ["on", "off", "ok"]


def test_a_long_result_is_cut_as_the_device_cuts_it():
    text = CUSTOM.split("[[tools]]")[0] + '''
[[tools]]
name = "say"
call = "say"
result.format = "{w} ''' + "x" * 70 + '''"
result.slots.w = { type = "enum", values = ["hi"] }
[[tools.intents]]
name = "say"
phrasings = ["say something"]
answers = ["Said."]
'''
    out = SpecHal(parse_spec(text))("say", [])
    assert out == ("hi " + "x" * 70)[:RESULT_MAX]
    limit = re.search(r"#define TA_RESULT_MAX (\d+)", (REPO / "firmware" / "ta_grammar.h").read_text())
    assert RESULT_MAX == int(limit.group(1))


# ---- the generated tools file on the device --------------------------------------------------------

def turns_match(con, im, bpe, spec, hal, requests) -> list[tuple[str, str]]:
    """The requests as one conversation, on the device (after !new) and through conversation.Conversation
    with `hal`, both without the confidence gate (the random model's calls run); the calls made."""
    tc, grammar = conversation.TokenClasses(bpe), grammar_from_spec(spec)
    conv = conversation.Conversation(Reference(im), tc, grammar, im.cfg.ctx, -1)
    assert con.ask("!new") == b"ok\n"
    made = []
    for request in requests:
        turn = conv.turn(hal, request)
        reply = con.ask(request).decode("utf-8", errors="replace")
        lines = reply[:-1].split("\n")
        assert [tuple(ln[1:].split("] -> ", 1)) for ln in lines[:-1]] == turn.calls, request
        made += turn.calls
    return made


@pytest.fixture(scope="module")
def calling(bpe):
    """Models that call a tool at every line start (test_agent_c.calling_model), by seed. With the
    requests here, seed 9 calls every tool of CUSTOM, seed 7 toggles the lamp, seed 3 calls gpio."""
    cfg = ModelConfig(vocab_size=320, ctx=96, dim=32, n_layers=2, n_heads=2, head_dim=16, ffn_dim=64)
    return lambda seed: calling_model(make_int_model(cfg, seed=seed)[1], bpe.byte_to_id[ord("[")])


@pytest.mark.parametrize("seed, calls", [(9, "temp"), (7, "lamp toggle")])
def test_generated_handlers_return_the_simulated_results(tmp_path, calling, bpe, custom, seed, calls):
    im = calling(seed)
    tools_c = write_tools_c(custom, tmp_path / "greenhouse_tools.c")
    con = start_firmware(tmp_path / "gen", im, bpe, custom, user_tools_c=tools_c, min_margin=-1)
    try:
        made = turns_match(con, im, bpe, custom, SpecHal(custom), CUSTOM_REQUESTS + REQUESTS)
    finally:
        assert con.close() == 0
    tools = {c.split(" ")[0] for c, _ in made}
    assert {"fan", "lamp", "offset", "water"} <= tools and any(c == calls for c, _ in made), made


def test_default_tools_get_the_shipped_handlers(tmp_path, calling, bpe, monkeypatch):
    """The tools file for an agent of the default agent's tools is firmware/ta_tools_default.c, and
    it answers as SpecHal does."""
    spec, im = load_spec(DEFAULT_SPEC_PATH), calling(3)
    tools_c = write_tools_c(spec, tmp_path / "default_tools.c")
    assert tools_c.read_text().endswith((REPO / "firmware" / "ta_tools_default.c").read_text())
    freeze_clock(monkeypatch)
    con = start_firmware(tmp_path / "gen", im, bpe, spec, user_tools_c=tools_c, min_margin=-1)
    try:
        made = turns_match(con, im, bpe, spec, SpecHal(spec), REQUESTS)
    finally:
        assert con.close() == 0
    tools = {c.split(" ")[0] for c, _ in made}
    assert len(tools) >= 4 and "gpio" in tools, tools


def test_reference_and_host_board_agree_on_a_custom_agent(tmp_path, calling, bpe, custom):
    """A custom agent end to end: its run folder, `build --board host --tools` with the generated
    file, then the same chat on the host board and on the reference."""
    run = tmp_path / "run"
    calling(9).save(run / "int8")
    bpe.save(run / "tokenizer.json")
    (run / "spec.toml").write_text(CUSTOM)
    (run / "run.json").write_text(json.dumps({"format": 1, "stages": {}}))
    tools_c = write_tools_c(custom, tmp_path / "greenhouse_tools.c")
    out = build("host", tmp_path / "build", run, tools_c=str(tools_c)).out
    requests = "\n".join(CUSTOM_REQUESTS) + "\n"
    dev, ref = io.StringIO(), io.StringIO()
    chat(board="host", out=str(out), stdin=io.StringIO(requests), stdout=dev)
    chat(board="reference", run=run, stdin=io.StringIO(requests), stdout=ref)
    assert dev.getvalue() == ref.getvalue()
    results = re.findall(r"^\[(\w+)[^\]]*\] -> (.*)$", ref.getvalue(), re.M)
    tools = {t for t, _ in results}  # with the gate at 0, this model's write calls are mostly refused
    assert {"soil", "vent", "offset", "temp"} <= tools, results
    assert all(r != "ok" for t, r in results if t != "water"), results


def test_rendering_is_deterministic_and_written_once(tmp_path, custom):
    assert render_tools_c(custom, "a.c") == render_tools_c(custom, "a.c")
    p = write_tools_c(custom, tmp_path / "t.c")
    with pytest.raises(TinyAgentError, match="exists already"):
        write_tools_c(custom, p)


def test_new_writes_a_spec_and_tools_that_build(tmp_path, calling, bpe):
    """`tinyagent new`: the spec and its tools file, which builds and answers as the reference does;
    `--tools-only` writes the same file again from the spec."""
    r = CliRunner().invoke(main, ["new", "plant", "--dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    spec, tools_c = load_spec(tmp_path / "plant.toml"), tmp_path / "plant_tools.c"
    for step in (f"tinyagent train --agent {tmp_path}/plant.toml --out runs/plant --budget 60",
                 "tinyagent chat  --board reference --run runs/plant",
                 f"tinyagent build --board mps2-an386 --run runs/plant --tools {tools_c}",
                 "tinyagent chat  --board mps2-an386", "tinyagent new plant --tools-only"):
        assert step in r.output, r.output
    im = calling(9)
    con = start_firmware(tmp_path / "gen", im, bpe, spec, user_tools_c=tools_c, min_margin=-1)
    try:
        made = turns_match(con, im, bpe, spec, SpecHal(spec), REQUESTS)
    finally:
        assert con.close() == 0
    assert {c.split(" ")[0] for c, _ in made} == {"led", "timer"}, made
    first = tools_c.read_text()
    tools_c.unlink()
    r = CliRunner().invoke(main, ["new", "plant", "--dir", str(tmp_path), "--tools-only"])
    assert r.exit_code == 0 and tools_c.read_text() == first, r.output
