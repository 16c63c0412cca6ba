"""The simulated board of `chat --board reference`, for any agent spec: a HAL (conversation.Hal) whose
results follow each tool's result format and slots.

- An agent whose tools are all the default agent's (each defined as the default agent's tool of that
  name: its call, args and result; phrasings may differ) is built with firmware/ta_tools_default.c,
  which reads the simulated board's devices (firmware/boards/sim/hal_sim_devices.c). SpecHal then is
  conversation.SimHal, the Python side of that board, call for call.
- Any other agent's tools are simulated from the spec alone (ToolSim):
  an enum slot is state remembered per tool. It starts at rest (the first of REST_WORDS among its
  values, else its first value); a call whose enum argument is one of the slot's values sets it
  (`fan high` -> "high"), and a TOGGLE_WORDS argument moves it to the next value.
  An int or decimal slot reads the midpoint of its min..max.
  A format without slots ("ok") is returned as is.

The tools C file `tinyagent new` writes (tools_file.py) is rendered from the same ToolSims, so a
build with it and the reference give the same results, call for call.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from . import conversation
from .spec import DEFAULT_SPEC_PATH, AgentSpec, Arg, Ref, Tool, call_fields, format_value, load_spec, template_parts

RESULT_MAX = 63  # bytes of one result; firmware/ta_agent.h TA_RESULT_MAX (a test holds them equal)
REST_WORDS = ("off", "closed", "low", "stopped", "idle", "paused", "disarmed", "none")
TOGGLE_WORDS = ("toggle", "flip", "next", "cycle")
NEXT = -1  # an EnumRule's target: the slot's next value (after the last: the first)


@dataclass(frozen=True)
class EnumRule:
    """When field `field` of a call (ta_call.arg[field], counted after the name) is `word` (its
    index `word_index`), the slot becomes value `target` (an index, or NEXT)."""
    field: int
    word_index: int
    word: str
    target: int


@dataclass(frozen=True)
class SlotSim:
    slot: Arg
    rest: int = 0  # enum: the value's index it starts at
    rules: tuple[EnumRule, ...] = ()  # enum: applied in order, every call
    value: int = 0  # int, decimal (scaled by 10**places): what it reads

    @property
    def text(self) -> str:
        """An int or decimal slot's reading as the device prints it."""
        return format_value(self.slot, self.value)


@dataclass(frozen=True)
class ToolSim:
    tool: Tool
    board: bool  # the agent's tools are all the default agent's: conversation.SimHal answers; else the slots
    parts: tuple[str | int, ...]  # the result format: literal text, or the index of a slot
    slots: tuple[SlotSim, ...]


@functools.lru_cache(maxsize=1)
def _default_tools() -> dict[str, Tool]:
    return {t.name: t for t in load_spec(DEFAULT_SPEC_PATH).tools}


def _signature(tool: Tool) -> tuple:
    """What a tool does (its call and result), without how people ask for it."""
    return tool.name, tool.call, tool.args, tool.result, tool.result_slots


def is_default_tool(tool: Tool) -> bool:
    """The tool is the default agent's tool of that name, which firmware/ta_tools_default.c handles."""
    default = _default_tools().get(tool.name)
    return default is not None and _signature(default) == _signature(tool)


def default_tools_only(spec: AgentSpec) -> bool:
    """Every tool of the agent is the default agent's: it builds with firmware/ta_tools_default.c."""
    return all(is_default_tool(t) for t in spec.tools)


def _slot_sim(tool: Tool, slot: Arg) -> SlotSim:
    if slot.kind != "enum":
        return SlotSim(slot, value=slot.min + (slot.max - slot.min) // 2)
    rest = next((slot.values.index(w) for w in REST_WORDS if w in slot.values), 0)
    rules = []
    for k, f in enumerate(call_fields(tool)[1:]):
        if isinstance(f, str) or f.kind != "enum":
            continue
        for i, w in enumerate(f.values):
            if w in slot.values:
                rules.append(EnumRule(k, i, w, slot.values.index(w)))
            elif w in TOGGLE_WORDS:
                rules.append(EnumRule(k, i, w, NEXT))
    return SlotSim(slot, rest=rest, rules=tuple(rules))


def tool_sim(tool: Tool, board: bool = False) -> ToolSim:
    names = [s.name for s in tool.result_slots]
    parts = tuple(names.index(p.name) if isinstance(p, Ref) else p for p in template_parts(tool.result))
    return ToolSim(tool, board, parts, tuple(_slot_sim(tool, s) for s in tool.result_slots))


def tool_sims(spec: AgentSpec) -> list[ToolSim]:
    """How each tool of the spec is simulated, in spec order."""
    board = default_tools_only(spec)
    return [tool_sim(t, board) for t in spec.tools]


def next_state(sim: SlotSim, state: int, fields: list[str]) -> int:
    """An enum slot's state after a call whose fields (after the name) are `fields`."""
    for r in sim.rules:
        if r.field < len(fields) and fields[r.field] == r.word:
            state = (state + 1) % len(sim.slot.values) if r.target == NEXT else r.target
    return state


def _cut(text: str) -> str:
    """At most RESULT_MAX bytes, as the device's ta_cat cuts a result (at a character boundary)."""
    data = text.encode("utf-8")
    return text if len(data) <= RESULT_MAX else data[:RESULT_MAX].decode("utf-8", errors="ignore")


class SpecHal:
    """The simulated board for the agent `spec` (a conversation.Hal: `(tool, args) -> result text`).
    `temp_deci`: the board's temperature in 0.1 C for the default agent's tools (None: no sensor)."""

    def __init__(self, spec: AgentSpec, temp_deci: int | None = conversation.SimHal.TEMP_DECI):
        self.sims = {s.tool.name: s for s in tool_sims(spec)}
        self.state = {(name, i): s.rest for name, t in self.sims.items() for i, s in enumerate(t.slots)
                      if s.slot.kind == "enum"}
        self.board = conversation.SimHal(temp_deci) if default_tools_only(spec) else None

    def __call__(self, tool: str, args: list[str]) -> str:
        if self.board is not None:
            return self.board(tool, args)
        sim = self.sims.get(tool)
        if sim is None:
            return "ok"  # not a tool of this agent: the grammar lets no such call through
        out = []
        for p in sim.parts:
            if isinstance(p, str):
                out.append(p)
                continue
            s = sim.slots[p]
            if s.slot.kind == "enum":
                self.state[tool, p] = next_state(s, self.state[tool, p], args)
                out.append(s.slot.values[self.state[tool, p]])
            else:
                out.append(s.text)
        return _cut("".join(out))
