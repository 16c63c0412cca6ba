"""The agent spec: one TOML file that says what an agent can do and how people ask for it.

The agent is data. A spec lists the tools (typed args, call syntax, typed result), and for each tool
its intents: many natural phrasings of a request and answer templates that use the result. It also
lists no-tool chat intents, shared synonym lists and knobs for the corpus generator. The format is
documented for users in docs/agent-spec.md; this module parses it and validates it strictly. Every
failure is one line: `{file}: {where}: {what is wrong} (allowed: ...)`.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from ..errors import bad_input

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_SPEC_PATH = REPO_ROOT / "agents" / "default.toml"
SCAFFOLD_TEMPLATE = REPO_ROOT / "templates" / "agent_new.toml.j2"

WORD_PATTERN = "[a-z][a-z0-9_]*"
_WORD = re.compile(WORD_PATTERN + r"\Z")

# Time units a phrasing may show an int arg in; the factor is in seconds.
UNITS: dict[str, int] = {"seconds": 1, "minutes": 60, "hours": 3600}

# Args go through the decoding grammar as unsigned decimals, and the device keeps them in an int32.
INT_LIMIT = 2**31 - 1
NAMING_WORD_MAX = 32  # letters in one of a tool's `words` (TA_NAME_MAX in firmware/ta_grammar.h)
MAX_PLACES = 4


# ---- data model -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Arg:
    """A typed slot: a call argument, or a field of a tool's result.

    kind "enum": one of `values`; "int": min..max; "decimal" (results only): a number with `places`
    digits after the point, with min/max stored scaled by 10**places (so -20.0..60.0 is -200..600);
    "duration" (args only): seconds in min..max, which the call writes as the parts a person said
    ("1h30m", "90m", "45s") and the device adds up (docs/agent-spec.md, "Durations").
    """
    name: str
    kind: str  # "enum" | "int" | "decimal" | "duration"
    values: tuple[str, ...] = ()
    min: int = 0
    max: int = 0
    unit: str = ""  # "" or a key of UNITS: lets phrasings show an int in minutes while the call has seconds
    places: int = 0


@dataclass(frozen=True)
class Intent:
    """One thing a user may ask: a tool with some args fixed (e.g. led action=on), or chat (tool "")."""
    name: str
    tool: str
    phrasings: tuple[str, ...]  # request templates: literal text with {arg}, {arg:unit}, {synonym}
    answers: tuple[str, ...]  # answer templates: literal text with {arg}, {result_slot}, {slot:unit}
    args: tuple[tuple[str, int | str], ...] = ()  # fixed arg values, in the tool's arg order
    result: tuple[tuple[str, int | str], ...] = ()  # fixed result values (decimals scaled)
    weight: float = 1.0  # relative share of the corpus
    polarity: str = ""  # "" | "on" | "off": the generator adds indirect needs ("stop the motor on pin 6")

    @property
    def fixed_args(self) -> dict[str, int | str]:
        return dict(self.args)

    @property
    def fixed_result(self) -> dict[str, int | str]:
        return dict(self.result)


@dataclass(frozen=True)
class Tool:
    name: str
    args: tuple[Arg, ...]
    call: str  # e.g. "gpio {pin} {level}": the tool name, then literal words and {arg}s, single spaces
    description: str = ""
    result: str = ""  # result format, e.g. "led={led} temp={temp} up={up}"
    result_slots: tuple[Arg, ...] = ()
    intents: tuple[Intent, ...] = ()
    effect: str = "write"  # "write": changes the world, gated by confidence; "read": runs freely
    nouns: tuple[str, ...] = ()  # how people name the tool's thing ("the {light}"); default "the NAME"
    words: tuple[str, ...] = ()  # more words that name it in a request ("dark"): agent/naming.py

    @property
    def acts(self) -> bool:
        return self.effect == "write"

    def noun_templates(self) -> tuple[str, ...]:
        return self.nouns or (f"the {self.name}",)

    def arg(self, name: str) -> Arg:
        return next(a for a in self.args if a.name == name)

    def slot(self, name: str) -> Arg:
        """An arg or a result slot by name (they share one namespace per tool)."""
        return next(a for a in self.args + self.result_slots if a.name == name)


@dataclass(frozen=True)
class CorpusStyle:
    """Knobs and English word lists for the corpus generator; `[corpus]` in a spec overrides any."""
    chat_fraction: float = 0.12  # share of examples that are no-tool chat
    two_call_fraction: float = 0.10  # share of examples that ask two tools at once
    heldout_fraction: float = 0.2  # share of each intent's phrasings kept out of train/val
    typo_rate: float = 0.08  # share of requests with a realistic typo
    number_word_rate: float = 0.15  # share of numbers up to 999 written as words ("forty-five")
    level_word_rate: float = 0.4  # share of a 0..1 int arg's values said as a level word ("true", "hi", "LOW")
    terse_fraction: float = 0.04  # "led on", "gpio 5 1", "timer 90s", "uptime": the call's words typed as a request
    negation_fraction: float = 0.07  # "don't turn on the light", "... never mind", "leave it alone"
    correction_fraction: float = 0.09  # "turn it on, no wait, off": only the second is done
    meta_fraction: float = 0.05  # "what does the timer do?": answered from the tool's description
    offtopic_fraction: float = 0.07  # general questions, other devices, small talk: no call
    wake_rate: float = 0.12  # "ok device, ..." "hey, um, ..." before a request
    filler_rate: float = 0.05  # "could you, um, ..." inside a request
    followup_fraction: float = 0.16  # "make it 8 instead", "again", "undo that", "is that over 25?" after a turn
    conditional_fraction: float = 0.10  # "if the temperature is over 25, turn on pin 5": the second call depends on the first's result
    noise_fraction: float = 0.05  # line noise: random letters, digits, word salad, call syntax typed by the user: no call
    structured_noise_rate: float = 0.0  # of noise lines, share that write a call as data: JSON, a function call, key=value
    out_of_range_fraction: float = 0.03  # "set pin 40 high" (pins 0..39): the call copies 40, the device refuses it
    duration_range_rate: float = 0.0  # of those, share that say a duration past its tool's top ("a timer for 30 hours")
    history_rate: float = 0.45  # share of examples that come after 1-4 unrelated earlier turns of a conversation
    openers: tuple[str, ...] = (
        "hey", "hey,", "hi,", "um", "um,", "uh,", "ok so", "so", "ok,", "okay,", "alright,", "please",
        "hey there,", "excuse me,", "quick one:", "yo", "hmm,", "right,", "now", "oh and")
    context: tuple[str, ...] = (
        "Hi.", "Hello!", "Good morning.", "Quick question.", "Sorry to bother you.", "I'm back.",
        "I'm at my desk.", "I just got home.", "Working late tonight.", "Hey there!", "One more thing.",
        "Ok.", "Thanks for earlier.", "I'm testing you.", "Let's see.", "Good evening.")
    closers: tuple[str, ...] = (
        "please", ", please", "pls", "thanks", ", thanks", "thank you", ", thank you", ". Thanks!",
        "thx", "now", "right now", "for me", ", ok?", "asap", "please and thank you", ", cheers")
    joiners: tuple[str, ...] = (
        "and", ", and", "and then", ", then", "then", "and also", ", also", "plus", ".")
    number_words: tuple[str, ...] = (
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
        "nineteen", "twenty")
    # Per unit, "singular/plural" forms; the first is the one answers use.
    unit_words: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("seconds", ("second/seconds", "sec/secs", "sec/sec", "s/s")),
        ("minutes", ("minute/minutes", "min/mins", "min/min")),
        ("hours", ("hour/hours", "hr/hrs", "h/h")),
    )

    def unit_forms(self, unit: str) -> tuple[str, ...]:
        return dict(self.unit_words)[unit]


@dataclass(frozen=True)
class AgentSpec:
    name: str
    tools: tuple[Tool, ...]
    description: str = ""
    chat: tuple[Intent, ...] = ()
    synonyms: tuple[tuple[str, tuple[str, ...]], ...] = ()
    style: CorpusStyle = CorpusStyle()
    source: str = "<string>"  # path the spec came from; not part of spec_hash

    def tool(self, name: str) -> Tool:
        return next(t for t in self.tools if t.name == name)

    @property
    def intents(self) -> tuple[Intent, ...]:
        """Every intent: tool intents in file order, then chat."""
        return tuple(i for t in self.tools for i in t.intents) + self.chat

    def synonym(self, name: str) -> tuple[str, ...]:
        return dict(self.synonyms)[name]


@dataclass(frozen=True)
class Ref:
    """A `{name}` or `{name:unit}` placeholder in a template."""
    name: str
    unit: str = ""


# ---- public functions -----------------------------------------------------------------------------

def load_spec(path: str | Path) -> AgentSpec:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise bad_input(f"{path}: agent spec not found (expected a TOML file, e.g. agents/default.toml)")
    except (OSError, UnicodeDecodeError) as e:
        raise bad_input(f"{path}: cannot read agent spec ({e})")
    return parse_spec(text, str(path))


def parse_spec(text: str, source: str = "<string>") -> AgentSpec:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise bad_input(f"{source}: bad TOML: {e}")
    return _Parser(source).spec(doc)


def spec_hash(spec: AgentSpec) -> str:
    """sha256 of the parsed spec (with style defaults filled in), independent of path and formatting."""
    d = dataclasses.asdict(spec)
    d.pop("source")
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def call_fields(tool: Tool) -> list[str | Arg]:
    """The call as a sequence of space-separated fields, starting with the tool name: a str is a
    literal word, an Arg is an enum or int argument. "gpio {pin} {level}" -> ["gpio", Arg pin, Arg level]."""
    args = {a.name: a for a in tool.args}
    return [args[p.name] if isinstance(p, Ref) else p
            for tok in tool.call.split(" ") for p in template_parts(tok)]


@functools.lru_cache(maxsize=None)
def template_parts(text: str) -> tuple[str | Ref, ...]:
    """Split a template into literal strings and Refs. Raises ValueError naming a stray brace or a bad
    placeholder (the parser turns that into a one-line TinyAgentError)."""
    parts: list[str | Ref] = []
    pos = 0
    for m in re.finditer(r"\{([^{}]*)\}", text):
        _literal(parts, text[pos:m.start()])
        ref = re.fullmatch(rf"({WORD_PATTERN})(?::([a-z]+))?", m.group(1))
        if ref is None:
            raise ValueError(f"bad placeholder '{m.group(0)}' (allowed: {{name}} or {{name:unit}}, "
                             f"name matching {WORD_PATTERN})")
        parts.append(Ref(ref.group(1), ref.group(2) or ""))
        pos = m.end()
    _literal(parts, text[pos:])
    return tuple(parts)


def _literal(parts: list[str | Ref], text: str) -> None:
    if "{" in text or "}" in text:
        raise ValueError("stray '{' or '}' (allowed: braces only around a placeholder such as {pin})")
    if text:
        parts.append(text)


def scaffold(name: str) -> str:
    """TOML text of a small, valid starter agent for `tinyagent new NAME`."""
    import jinja2  # only the scaffold needs it

    if not _WORD.match(name):
        raise bad_input(f"agent name '{name}' is not a plain lowercase word (allowed: {WORD_PATTERN})")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    text = env.from_string(SCAFFOLD_TEMPLATE.read_text(encoding="utf-8")).render(name=name)
    parse_spec(text, f"<new agent {name}>")  # a scaffold that does not validate is our bug
    return text


# ---- parsing and validation -----------------------------------------------------------------------

_TOP_FIELDS = ("agent", "synonyms", "tools", "chat", "corpus")
_AGENT_FIELDS = ("name", "description")
_TOOL_FIELDS = ("name", "description", "args", "call", "result", "intents", "effect", "nouns", "words")
_RESULT_FIELDS = ("format", "slots")
_INTENT_FIELDS = ("name", "args", "result", "phrasings", "answers", "weight", "polarity")
_CHAT_FIELDS = ("name", "phrasings", "answers", "weight")
_TYPE_FIELDS = {
    "enum": ("type", "values"),
    "int": ("type", "min", "max", "unit"),
    "decimal": ("type", "min", "max", "places"),
    "duration": ("type", "min", "max"),
}
_STYLE_FRACTIONS = ("chat_fraction", "two_call_fraction", "heldout_fraction", "typo_rate",
                    "number_word_rate", "level_word_rate", "terse_fraction", "negation_fraction",
                    "correction_fraction", "meta_fraction", "offtopic_fraction", "wake_rate", "filler_rate",
                    "followup_fraction",
                    "conditional_fraction", "noise_fraction", "structured_noise_rate", "out_of_range_fraction",
                    "duration_range_rate", "history_rate")
_STYLE_LISTS = ("openers", "context", "closers", "joiners", "number_words")
_STYLE_FIELDS = _STYLE_FRACTIONS + _STYLE_LISTS + ("unit_words",)


def _kind(v: Any) -> str:
    for t, name in ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"),
                    (list, "array"), (dict, "table")):
        if isinstance(v, t):
            return name
    return type(v).__name__


class _Parser:
    """Walks the TOML document; `where` strings locate each value for the one-line error."""

    def __init__(self, source: str):
        self.source = source
        self.synonyms: dict[str, tuple[str, ...]] = {}

    def fail(self, where: str, msg: str) -> NoReturn:
        raise bad_input(f"{self.source}: {where}: {msg}" if where else f"{self.source}: {msg}")

    # -- generic checks --

    def table(self, where: str, v: Any, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(v, dict):
            self.fail(where, f"expected a table, got {_kind(v)}")
        for key in v:
            if key not in allowed:
                self.fail(where, f"unknown field '{key}' (allowed: {', '.join(allowed)})")
        for key in required:
            if key not in v:
                self.fail(where, f"missing field '{key}' (required: {', '.join(required)})")
        return v

    def array_of_tables(self, where: str, v: Any, header: str) -> list:
        if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
            self.fail(where, f"expected an array of tables ([[{header}]]), got {_kind(v)}")
        return v

    def word(self, where: str, what: str, v: Any) -> str:
        if not isinstance(v, str):
            self.fail(where, f"{what} must be a string, got {_kind(v)}")
        if not _WORD.match(v):
            self.fail(where, f"{what} '{v}' is not a plain lowercase word (allowed: {WORD_PATTERN})")
        return v

    def text(self, where: str, what: str, v: Any, braces: bool = False) -> str:
        """Plain one-line text for requests/answers: what the model sees must never contain the
        transcript's own delimiters ('[', ']', newline)."""
        if not isinstance(v, str):
            self.fail(where, f"{what} must be a string, got {_kind(v)}")
        if not v or v != v.strip():
            self.fail(where, f"{what} {v!r} is empty or has leading/trailing spaces (allowed: trimmed text)")
        bad = [c for c in v if ord(c) < 0x20 or c in "[]" or (not braces and c in "{}")]
        if bad:
            self.fail(where, f"{what} {v!r} contains {bad[0]!r} (allowed: one line of text without "
                             f"'[' ']'{'' if braces else ' or braces'})")
        return v

    def texts(self, where: str, what: str, v: Any, braces: bool = False) -> tuple[str, ...]:
        if not isinstance(v, list):
            self.fail(where, f"{what} must be an array of strings, got {_kind(v)}")
        if not v:
            self.fail(where, f"{what} is empty (allowed: one or more strings)")
        out = tuple(self.text(where, what[:-1] if what.endswith("s") else what, x, braces) for x in v)
        dup = next((x for i, x in enumerate(out) if x in out[:i]), None)
        if dup is not None:
            self.fail(where, f"{what} lists {dup!r} twice (allowed: each once)")
        return out

    def integer(self, where: str, what: str, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(where, f"{what} must be an integer, got {_kind(v)} {v!r}")
        return v

    def number(self, where: str, what: str, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.fail(where, f"{what} must be a number, got {_kind(v)} {v!r}")
        return float(v)

    def parts(self, where: str, what: str, template: str) -> tuple[str | Ref, ...]:
        try:
            return template_parts(template)
        except ValueError as e:
            self.fail(where, f"{what} {template!r}: {e}")

    # -- document --

    def spec(self, doc: dict) -> AgentSpec:
        self.table("", doc, _TOP_FIELDS, ("agent", "tools"))
        agent = self.table("[agent]", doc["agent"], _AGENT_FIELDS, ("name",))
        name = self.word("[agent]", "name", agent["name"])
        description = agent.get("description", "")
        if not isinstance(description, str):
            self.fail("[agent]", f"description must be a string, got {_kind(description)}")
        self.synonyms = self.synonym_lists(doc.get("synonyms", {}))
        style = self.style(doc.get("corpus", {}))

        tools = tuple(self.tool(i, t) for i, t in
                      enumerate(self.array_of_tables("tools", doc["tools"], "tools")))
        if not tools:
            self.fail("tools", "no tools (allowed: one or more [[tools]] tables)")
        chat = tuple(self.chat(i, c) for i, c in
                     enumerate(self.array_of_tables("chat", doc.get("chat", []), "chat")))
        self.check_unique(tools, chat)
        return AgentSpec(name=name, tools=tools, description=description, chat=chat,
                         synonyms=tuple(self.synonyms.items()), style=style, source=self.source)

    def check_unique(self, tools: tuple[Tool, ...], chat: tuple[Intent, ...]) -> None:
        seen_tools: set[str] = set()
        for t in tools:
            if t.name in seen_tools:
                self.fail(f"tool '{t.name}'", f"duplicate tool name '{t.name}' (allowed: each name once)")
            seen_tools.add(t.name)
        intent_owner: dict[str, str] = {}
        phrasing_owner: dict[str, str] = {}
        for intent in tuple(i for t in tools for i in t.intents) + chat:
            where = self.intent_where(intent.tool, intent.name)
            if intent.name in intent_owner:
                self.fail(where, f"duplicate intent name '{intent.name}' (allowed: each name once)")
            intent_owner[intent.name] = intent.tool
            for p in intent.phrasings:
                if p in phrasing_owner:
                    self.fail(where, f"phrasing {p!r} is also in intent '{phrasing_owner[p]}' "
                                     f"(allowed: each phrasing in one intent)")
                phrasing_owner[p] = intent.name
        slot_names = {a.name: t.name for t in tools for a in t.args + t.result_slots}
        for syn in self.synonyms:
            if syn in slot_names:
                self.fail("[synonyms]", f"'{syn}' is also an arg or result slot of tool "
                                        f"'{slot_names[syn]}' (allowed: names distinct from slots)")

    @staticmethod
    def intent_where(tool: str, name: str) -> str:
        return f"tool '{tool}' intent '{name}'" if tool else f"chat '{name}'"

    def synonym_lists(self, v: Any) -> dict[str, tuple[str, ...]]:
        if not isinstance(v, dict):
            self.fail("[synonyms]", f"expected a table of word lists, got {_kind(v)}")
        return {self.word("[synonyms]", "synonym name", k): self.texts(f"[synonyms] {k}", "words", x)
                for k, x in v.items()}

    def style(self, v: Any) -> CorpusStyle:
        t = self.table("[corpus]", v, _STYLE_FIELDS)
        kw: dict[str, Any] = {}
        for key in _STYLE_FRACTIONS:
            if key in t:
                x = self.number("[corpus]", key, t[key])
                if not 0.0 <= x <= 1.0:
                    self.fail("[corpus]", f"{key} {x} is out of range (allowed: 0.0..1.0)")
                kw[key] = x
        for key in _STYLE_LISTS:
            if key in t:
                kw[key] = self.texts("[corpus]", key, t[key])
        if "unit_words" in t:
            units = self.table("[corpus] unit_words", t["unit_words"], tuple(UNITS))
            merged = dict(CorpusStyle.unit_words)
            for unit, forms in units.items():
                merged[unit] = self.texts(f"[corpus] unit_words {unit}", "forms", forms)
                for f in merged[unit]:
                    if f.count("/") != 1 or "" in f.split("/"):
                        self.fail(f"[corpus] unit_words {unit}",
                                  f"form {f!r} is not 'singular/plural' (e.g. 'minute/minutes')")
            kw["unit_words"] = tuple(merged.items())
        style = CorpusStyle(**kw)
        shares = ("chat_fraction", "two_call_fraction", "terse_fraction", "negation_fraction", "correction_fraction",
                  "meta_fraction", "offtopic_fraction", "followup_fraction", "conditional_fraction",
                  "noise_fraction", "out_of_range_fraction")
        if sum(getattr(style, k) for k in shares) > 1.0:
            self.fail("[corpus]", f"{' + '.join(shares)} exceeds 1.0 (allowed: a sum <= 1.0)")
        return style

    # -- tools --

    def tool(self, index: int, v: dict) -> Tool:
        where = f"tool '{v['name']}'" if isinstance(v.get("name"), str) else f"tool #{index + 1}"
        self.table(where, v, _TOOL_FIELDS, ("name", "call", "result", "intents"))
        name = self.word(where, "name", v["name"])
        description = v.get("description", "")
        if not isinstance(description, str):
            self.fail(where, f"description must be a string, got {_kind(description)}")
        args_table = v.get("args", {})
        if not isinstance(args_table, dict):
            self.fail(where, f"args must be a table (args.NAME = {{ type = ... }}), got {_kind(args_table)}")
        args = tuple(self.slot(f"{where} arg", k, x, result=False) for k, x in args_table.items())
        call = self.call(where, name, v["call"], args)
        result, slots = self.result(where, v["result"])
        for s in slots:
            if any(a.name == s.name for a in args):
                self.fail(where, f"result slot '{s.name}' has the name of an arg (allowed: distinct names)")
        effect = v.get("effect", "write")
        if effect not in ("write", "read"):
            self.fail(where, f"effect {effect!r} is not 'write' or 'read' (allowed: 'write' for a tool "
                             f"that changes the world, 'read' for one that only reads)")
        nouns = self.texts(where, "nouns", v["nouns"], braces=True) if "nouns" in v else ()
        for noun in nouns:
            for r in self.refs(where, "noun", noun):
                if r.unit or (r.name not in self.synonyms and r.name not in {a.name for a in args}):
                    self.fail(where, f"noun {noun!r} uses unknown slot '{_ref_text(r)}' (allowed: "
                                     f"synonyms and args of the tool)")
        words = self.naming_words(where, v["words"]) if "words" in v else ()
        tool = Tool(name=name, args=args, call=call, description=description, result=result,
                    result_slots=slots, effect=effect, nouns=nouns, words=words)
        intents = self.array_of_tables(where, v["intents"], "tools.intents")
        if not intents:
            self.fail(where, "no intents (allowed: one or more [[tools.intents]] with phrasings)")
        return dataclasses.replace(tool, intents=tuple(self.intent(tool, i, x)
                                                       for i, x in enumerate(intents)))

    def naming_words(self, where: str, v: Any) -> tuple[str, ...]:
        if not isinstance(v, list):
            self.fail(where, f"words must be an array of strings, got {_kind(v)}")
        for w in v:
            if not isinstance(w, str) or not re.fullmatch(r"[a-z]{1,%d}" % NAMING_WORD_MAX, w):
                self.fail(where, f"words: {w!r} is not one lower-case word (allowed: 1 to "
                                 f"{NAMING_WORD_MAX} letters a-z, as a request spells it)")
        dup = next((w for i, w in enumerate(v) if w in v[:i]), None)
        if dup is not None:
            self.fail(where, f"words lists {dup!r} twice (allowed: each once)")
        return tuple(v)

    def slot(self, where: str, name: str, v: Any, result: bool) -> Arg:
        self.word(where, "name", name)
        where = f"{where} '{name}'"
        kinds = ("enum", "int", "decimal") if result else ("enum", "int", "duration")
        if not isinstance(v, dict) or "type" not in v:
            self.fail(where, 'expected a table with a type, e.g. { type = "int", min = 0, max = 9 }')
        kind = v["type"]
        if kind not in kinds:
            self.fail(where, f"unknown type {kind!r} (allowed: {', '.join(kinds)})")
        allowed = _TYPE_FIELDS[kind]
        self.table(where, v, allowed, allowed[:2] if kind == "enum" else ("type", "min", "max"))
        if kind == "enum":
            values = v["values"]
            if not isinstance(values, list) or not values:
                self.fail(where, f"values {values!r} is empty or not an array (allowed: one or more "
                                 f"plain lowercase words)")
            for i, w in enumerate(values):
                self.word(where, "enum value", w)
                if w in values[:i]:
                    self.fail(where, f"enum value '{w}' is listed twice (allowed: each once)")
            return Arg(name, "enum", values=tuple(values))
        if kind == "decimal":
            places = self.integer(where, "places", v.get("places", 1))
            if not 1 <= places <= MAX_PLACES:
                self.fail(where, f"places {places} is out of range (allowed: 1..{MAX_PLACES})")
            lo = self.scaled(where, "min", v["min"], places)
            hi = self.scaled(where, "max", v["max"], places)
        else:
            places = 0
            lo = self.integer(where, "min", v["min"])
            hi = self.integer(where, "max", v["max"])
        floor = -INT_LIMIT if result else 0  # args have no sign in the call grammar
        for what, x in (("min", lo), ("max", hi)):
            if not floor <= x <= INT_LIMIT:
                self.fail(where, f"{what} {v[what]} is out of range (allowed: {floor}..{INT_LIMIT})")
        if lo > hi:
            self.fail(where, f"min {v['min']} > max {v['max']} (allowed: min <= max)")
        unit = v.get("unit", "") if kind != "duration" else "seconds"
        if kind == "duration" and lo < 1:
            self.fail(where, f"min {lo} is out of range (allowed: a duration of at least 1 second)")
        if unit and unit not in UNITS:
            self.fail(where, f"unknown unit {unit!r} (allowed: {', '.join(UNITS)})")
        return Arg(name, kind, min=lo, max=hi, unit=unit, places=places)

    def scaled(self, where: str, what: str, v: Any, places: int) -> int:
        x = self.number(where, what, v)
        scaled = round(x * 10**places)
        if abs(scaled - x * 10**places) > 1e-6:
            self.fail(where, f"{what} {v} has more than {places} decimal places (allowed: {places})")
        return scaled

    def call(self, where: str, tool: str, v: Any, args: tuple[Arg, ...]) -> str:
        """The decoding grammar reads a call as space-separated fields, so keep to exactly that."""
        if not isinstance(v, str):
            self.fail(where, f"call must be a string, got {_kind(v)}")
        tokens = v.split(" ")
        if tokens[0] != tool:
            self.fail(where, f"call {v!r} must start with the tool name '{tool}'")
        used: list[str] = []
        for tok in tokens:
            if _WORD.match(tok):
                continue
            m = re.fullmatch(r"\{([^{}:]*)\}", tok)
            if m is None:
                self.fail(where, f"call {v!r}: field {tok!r} is not a word or an {{arg}} (allowed: "
                                 f"words matching {WORD_PATTERN} and {{arg}}s, separated by single spaces)")
            if m.group(1) not in {a.name for a in args}:
                known = ", ".join(a.name for a in args) or "none"
                self.fail(where, f"call {v!r} uses unknown arg '{m.group(1)}' (allowed: {known})")
            if m.group(1) in used:
                self.fail(where, f"call {v!r} uses arg '{m.group(1)}' twice (allowed: each arg once)")
            used.append(m.group(1))
        for a in args:
            if a.name not in used:
                self.fail(where, f"call {v!r} does not use arg '{a.name}' (each arg appears exactly once)")
        return v

    def result(self, where: str, v: Any) -> tuple[str, tuple[Arg, ...]]:
        where = f"{where} result"
        self.table(where, v, _RESULT_FIELDS, ("format",))
        fmt = self.text(where, "format", v["format"], braces=True)
        slots_table = v.get("slots", {})
        if not isinstance(slots_table, dict):
            self.fail(where, f"slots must be a table (slots.NAME = {{ type = ... }}), "
                             f"got {_kind(slots_table)}")
        slots = tuple(self.slot(f"{where} slot", k, x, result=True) for k, x in slots_table.items())
        names = [s.name for s in slots]
        refs = [p for p in self.parts(where, "format", fmt) if isinstance(p, Ref)]
        for r in refs:
            if r.unit or r.name not in names:
                self.fail(where, f"format {fmt!r} uses unknown slot '{_ref_text(r)}' "
                                 f"(allowed: {', '.join(names) or 'no slots'})")
        for n in names:
            if [r.name for r in refs].count(n) != 1:
                self.fail(where, f"format {fmt!r} must use slot '{n}' exactly once")
        return fmt, slots

    # -- intents --

    def intent(self, tool: Tool, index: int, v: dict) -> Intent:
        name = v.get("name")
        where = self.intent_where(tool.name, name) if isinstance(name, str) else \
            f"tool '{tool.name}' intent #{index + 1}"
        self.table(where, v, _INTENT_FIELDS, ("name", "phrasings", "answers"))
        name = self.word(where, "name", v["name"])
        fixed_args = self.fixed(f"{where} args", v.get("args", {}), tool.args)
        fixed_result = self.fixed(f"{where} result", v.get("result", {}), tool.result_slots)
        phrasings = self.texts(where, "phrasings", v["phrasings"], braces=True)
        for p in phrasings:
            self.check_phrasing(where, tool, dict(fixed_args), p)
        answers = self.texts(where, "answers", v["answers"], braces=True)
        for a in answers:
            self.check_answer(where, tool, a)
        polarity = v.get("polarity", "")
        if polarity not in ("", "on", "off"):
            self.fail(where, f"polarity {polarity!r} is not 'on' or 'off' (allowed: on, off)")
        return Intent(name=name, tool=tool.name, phrasings=phrasings, answers=answers, args=fixed_args,
                      result=fixed_result, weight=self.weight(where, v), polarity=polarity)

    def chat(self, index: int, v: dict) -> Intent:
        where = f"chat '{v['name']}'" if isinstance(v.get("name"), str) else f"chat #{index + 1}"
        self.table(where, v, _CHAT_FIELDS, ("name", "phrasings", "answers"))
        name = self.word(where, "name", v["name"])
        phrasings = self.texts(where, "phrasings", v["phrasings"], braces=True)
        for p in phrasings:
            for r in self.refs(where, "phrasing", p):
                if r.unit or r.name not in self.synonyms:
                    self.fail(where, f"phrasing {p!r} uses unknown slot '{{{r.name}}}' "
                                     f"(allowed in chat: synonyms {', '.join(self.synonyms) or 'none'})")
        answers = self.texts(where, "answers", v["answers"])
        return Intent(name=name, tool="", phrasings=phrasings, answers=answers,
                      weight=self.weight(where, v))

    def weight(self, where: str, v: dict) -> float:
        w = self.number(where, "weight", v.get("weight", 1.0))
        if w <= 0:
            self.fail(where, f"weight {w} is not positive (allowed: a number > 0)")
        return w

    def fixed(self, where: str, v: Any, slots: tuple[Arg, ...]) -> tuple[tuple[str, int | str], ...]:
        names = tuple(s.name for s in slots)
        if not isinstance(v, dict):
            self.fail(where, f"expected a table, got {_kind(v)}")
        if v and not names:
            self.fail(where, f"unknown field '{next(iter(v))}' (allowed: none, the tool has no such slots)")
        table = self.table(where, v, names)
        out = []
        for s in slots:  # slot order, so equal specs compare equal however the table was written
            if s.name not in table:
                continue
            x = table[s.name]
            if s.kind == "enum":
                if x not in s.values:
                    self.fail(where, f"{s.name} = {x!r} is not one of its values "
                                     f"(allowed: {', '.join(s.values)})")
            elif s.kind in ("int", "duration"):
                x = self.integer(where, s.name, x)
            else:
                x = self.scaled(where, s.name, x, s.places)
            if s.kind != "enum" and not s.min <= x <= s.max:
                self.fail(where, f"{s.name} = {table[s.name]} is out of range (allowed: "
                                 f"{_show(s, s.min)}..{_show(s, s.max)})")
            out.append((s.name, x))
        return tuple(out)

    def refs(self, where: str, what: str, template: str) -> list[Ref]:
        return [p for p in self.parts(where, what, template) if isinstance(p, Ref)]

    def check_phrasing(self, where: str, tool: Tool, fixed: dict, p: str) -> None:
        args = {a.name: a for a in tool.args}
        result_names = [s.name for s in tool.result_slots]
        seen: list[str] = []
        for r in self.refs(where, "phrasing", p):
            if r.name in args:
                a = args[r.name]
                if r.name in seen:
                    self.fail(where, f"phrasing {p!r} uses arg '{r.name}' twice (allowed: once)")
                seen.append(r.name)
                if r.unit:
                    self.check_unit(where, p, a, r.unit)
                    if r.name in fixed and a.kind == "int" and fixed[r.name] * UNITS[a.unit] % UNITS[r.unit]:
                        self.fail(where, f"phrasing {p!r}: fixed {r.name} = {fixed[r.name]} {a.unit} is "
                                         f"not a whole number of {r.unit}")
            elif r.name in self.synonyms and not r.unit:
                continue
            elif r.name in result_names:
                self.fail(where, f"phrasing {p!r} uses result slot '{{{r.name}}}', which is not known "
                                 f"before the call (allowed: args {', '.join(args) or 'none'} and synonyms)")
            else:
                self.fail(where, f"phrasing {p!r} uses unknown slot '{_ref_text(r)}' "
                                 f"(allowed: args {', '.join(args) or 'none'}; synonyms "
                                 f"{', '.join(self.synonyms) or 'none'})")
        for a in tool.args:
            if a.name not in fixed and a.name not in seen:
                self.fail(where, f"phrasing {p!r} does not mention arg '{{{a.name}}}' and the intent "
                                 f"does not fix it (allowed: mention it, or set args.{a.name})")

    def check_unit(self, where: str, p: str, a: Arg, unit: str) -> None:
        if a.kind == "duration" and unit == "adj":
            return  # said before a noun: "a 10 minute {timer}"
        if unit not in UNITS:
            allowed = ", ".join(UNITS) + (", adj" if a.kind == "duration" else "")
            self.fail(where, f"phrasing {p!r}: unknown unit '{unit}' (allowed: {allowed})")
        if a.kind == "duration":
            return  # any unit: the hint only picks the unit the request mostly says
        if a.kind != "int" or not a.unit:
            self.fail(where, f"phrasing {p!r}: '{{{a.name}:{unit}}}' needs an int arg with a unit "
                             f"(add unit = \"seconds\" to arg '{a.name}')")
        lo, hi = unit_range(a, unit)
        if lo > hi:
            self.fail(where, f"phrasing {p!r}: no value of '{a.name}' ({a.min}..{a.max} {a.unit}) is a "
                             f"whole number of {unit}")

    def check_answer(self, where: str, tool: Tool, answer: str) -> None:
        slots = {s.name: s for s in tool.args + tool.result_slots}
        for r in self.refs(where, "answer", answer):
            if r.name not in slots:
                self.fail(where, f"answer {answer!r} uses unknown slot '{{{r.name}}}' "
                                 f"(allowed: {', '.join(slots) or 'none'})")
            s = slots[r.name]
            if r.unit and (s.kind not in ("int", "duration") or r.unit != s.unit):
                # Answers copy values from the call/result; converting units is arithmetic the model
                # would have to do, so only the slot's own unit (which adds the unit word) is allowed.
                self.fail(where, f"answer {answer!r}: '{{{r.name}:{r.unit}}}' is not allowed (allowed: "
                                 f"{{{r.name}}}" + (f" or {{{r.name}:{s.unit}}})" if s.unit else ")"))


def unit_range(a: Arg, unit: str) -> tuple[int, int]:
    """The values of int arg `a` that are a whole number of `unit`, counted in `unit` (for a unit
    smaller than the arg's own every value converts exactly)."""
    f_arg, f_show = UNITS[a.unit], UNITS[unit]
    if f_show <= f_arg:
        k = f_arg // f_show
        return a.min * k, a.max * k
    k = f_show // f_arg
    return -(-a.min // k), a.max // k


def format_value(a: Arg, v: int | str) -> str:
    """A slot value as the device prints it: enum word, decimal integer, or fixed-point decimal."""
    if a.kind == "decimal":
        assert isinstance(v, int)
        sign = "-" if v < 0 else ""
        whole, frac = divmod(abs(v), 10**a.places)
        return f"{sign}{whole}.{frac:0{a.places}d}"
    return str(v)


def _ref_text(r: Ref) -> str:
    return f"{{{r.name}:{r.unit}}}" if r.unit else f"{{{r.name}}}"


def _show(a: Arg, v: int) -> str:
    return format_value(a, v) if a.kind == "decimal" else str(v)
