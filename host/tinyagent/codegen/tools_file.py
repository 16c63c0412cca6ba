"""The tools C file for an agent: one handler per tool of its spec, each a working stand-in.

`render_tools_c(spec)` is the text of that file for any spec (`tinyagent new NAME` writes it next to
the spec as NAME_tools.c; `tinyagent new NAME --tools-only` writes it again for an edited spec). Its
handlers return what the reference's simulated board returns (simulated_hal.py): both come from the same
simulated_hal.ToolSim, and every value in the C is computed here, by codegen. The template,
templates/agent_tools.c.j2, holds the structure. An agent whose tools are all the default agent's
gets firmware/ta_tools_default.c itself, the handlers its build uses without --tools.
"""
from __future__ import annotations

from pathlib import Path

import jinja2

from ..agent.simulated_hal import NEXT, SlotSim, ToolSim, default_tools_only, is_default_tool, tool_sims
from ..agent.spec import AgentSpec, Arg, call_fields, format_value
from ..errors import bad_input
from ..fileio import write_text
from . import literals

REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = REPO_ROOT / "templates" / "agent_tools.c.j2"
DEFAULT_TOOLS_C = REPO_ROOT / "firmware" / "ta_tools_default.c"


def tools_c_name(agent: str) -> str:
    """The tools file `tinyagent new` writes beside agents/NAME.toml."""
    return f"{agent}_tools.c"


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("tinyagent")
    except Exception:  # a source tree without package metadata
        return "unknown"


def _range(a: Arg) -> str:
    show = (lambda v: format_value(a, v)) if a.kind == "decimal" else str
    return f"{show(a.min)}..{show(a.max)}" + (f" {a.unit}" if a.unit else "")


def _field_doc(f: str | Arg) -> str:
    if isinstance(f, str):
        return f"the word {f!r} (always 0)"
    if f.kind == "enum":
        return f"{f.name}: " + ", ".join(f'{i} "{w}"' for i, w in enumerate(f.values))
    if f.kind == "duration":
        return f"{f.name}, {f.min}..{f.max} seconds (the call's parts, such as 1h30m, added up)"
    return f"{f.name}, {_range(f)}"


def _call_doc(sim: ToolSim) -> str:
    t = sim.tool
    doc = f"{t.call} -> {t.result}" + (f": {t.description}" if t.description else "")
    return literals.c_comment_text(doc)


def _state(tool: str, s: SlotSim, var: str) -> dict:
    values = s.slot.values
    groups: dict[int, list[dict]] = {}
    for r in s.rules:
        groups.setdefault(r.field, []).append({
            "word_index": literals.c_int(r.word_index), "word": literals.c_comment_text(f'"{r.word}"'),
            "next": r.target == NEXT, "target": literals.c_int(max(r.target, 0)),
            "target_word": literals.c_comment_text(f'"{values[r.target]}"' if r.target != NEXT else "")})
    follows = "; follows the call" if s.rules else "; REPLACE: set it from your device"
    doc = (f"{tool} result {s.slot.name}: " + ", ".join(f'{i} "{w}"' for i, w in enumerate(values))
           + f"; starts \"{values[s.rest]}\"{follows}")
    return {"var": var, "words_var": f"{var}_words", "n": literals.c_int(len(values)),
            "words": [literals.c_string(w) for w in values], "rest": literals.c_int(s.rest),
            "doc": literals.c_comment_text(doc),
            "groups": [{"field": literals.c_int(k), "cases": cases} for k, cases in groups.items()]}


def _todo(sim: ToolSim) -> str:
    t = sim.tool
    args = [a.name for a in t.args]
    act = f"drive your device from {' and '.join(args)}" if args else "read your device"
    return literals.c_comment_text(f"{act}, then write what it reports as '{t.result}'")


def _tool(sim: ToolSim, taken: set[str]) -> dict:
    t = sim.tool
    fields = [{"index": literals.c_int(k), "doc": literals.c_comment_text(_field_doc(f))}
              for k, f in enumerate(call_fields(t)[1:])]
    ctx = {"name": literals.check_identifier(t.name, "tool name"), "doc": _call_doc(sim), "fields": fields,
           "default": is_default_tool(t), "states": [], "result": [], "uses_call": False, "todo": _todo(sim)}
    vars_ = {}
    for i, s in enumerate(sim.slots):
        if s.slot.kind != "enum":
            continue
        var = f"{t.name}_{s.slot.name}"
        while var in taken:  # tool "a" slot "b_c" and tool "a_b" slot "c"
            var += "_"
        taken.add(var)
        vars_[i] = var
        ctx["states"].append(_state(t.name, s, var))
        ctx["uses_call"] |= bool(s.rules)
    for p in sim.parts:
        if isinstance(p, str):
            ctx["result"].append({"kind": "lit", "text": literals.c_string(p)})
            continue
        s = sim.slots[p]
        doc = literals.c_comment_text(f"{s.slot.name}, {_range(s.slot)}")
        if s.slot.kind == "enum":
            ctx["result"].append({"kind": "enum", "var": vars_[p], "words_var": f"{vars_[p]}_words"})
        elif s.slot.kind == "int":
            ctx["result"].append({"kind": "int", "value": literals.c_int(s.value), "doc": doc})
        else:
            ctx["result"].append({"kind": "decimal", "value": literals.c_int(s.value),
                                  "scale": literals.c_int(10**s.slot.places, "uint32_t"),
                                  "doc": literals.c_comment_text(f"{doc}, in units of {format_value(s.slot, 1)}")})
    return ctx


def render_tools_c(spec: AgentSpec, path: str | Path | None = None) -> str:
    """The tools C file for `spec`; `path` is where it will live (named in its build line)."""
    path = literals.c_comment_text(str(path or tools_c_name(spec.name)))
    if default_tools_only(spec):
        head = (f"/* Tool handlers for the agent \"{literals.c_comment_text(spec.name)}\": its tools are all the "
                f"default agent's, so this is\n * firmware/ta_tools_default.c, which its build uses "
                f"without --tools; edit it and build with\n *     tinyagent build --board mps2-an386 "
                f"--run runs/{literals.c_comment_text(spec.name)} --tools {path}\n */\n")
        return head + DEFAULT_TOOLS_C.read_text(encoding="utf-8")
    sims = tool_sims(spec)
    taken: set[str] = set()
    tools = [_tool(s, taken) for s in sims]
    decimals = any(s.slot.kind == "decimal" for sim in sims for s in sim.slots)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE.parent)), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.globals["section"] = literals.section
    return env.get_template(TEMPLATE.name).render(
        agent=literals.c_comment_text(spec.name), version=literals.c_comment_text(_version()), tools=tools,
        path=path, cat_fixed=decimals)


def write_tools_c(spec: AgentSpec, path: str | Path) -> Path:
    """Write render_tools_c(spec) to `path`, which must not exist (it may hold the user's own code)."""
    path = Path(path)
    if path.exists():
        raise bad_input(f"{path} exists already (it may hold your handlers: move it away to write a fresh one)")
    write_text(path, render_tools_c(spec, path))
    return path
