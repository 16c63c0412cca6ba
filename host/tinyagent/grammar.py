"""The tool-call grammar: which call texts are valid, and which prefixes can still become one.

A call is `name field field ...` separated by single spaces; a field is a literal word, one word of
an enum, or a decimal integer within min..max (no sign, no leading zero unless it is "0").
firmware/ta_agent.c mirrors `viable` and `complete` over the same generated field tables.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    kind: str  # "lit" | "enum" | "int"
    words: tuple[str, ...] = ()  # lit: one word; enum: its words
    lo: int = 0
    hi: int = 0


@dataclass(frozen=True)
class CallForm:
    name: str
    fields: tuple[Field, ...]  # after the name


def _int_prefix_viable(p: str, lo: int, hi: int) -> bool:
    if p == "":
        return True
    if not p.isdigit() or not p.isascii() or (p[0] == "0" and len(p) > 1):
        return False
    if p == "0":
        return lo <= 0
    v, k = int(p), 0
    while v * 10**k <= hi:  # some integer in [v*10^k, (v+1)*10^k - 1] within [lo, hi]
        if (v + 1) * 10**k - 1 >= lo:
            return True
        k += 1
    return False


def _int_complete(p: str, lo: int, hi: int) -> bool:
    return p.isascii() and p.isdigit() and (p == "0" or p[0] != "0") and lo <= int(p) <= hi


def _field_ok(f: Field, part: str, partial: bool) -> bool:
    if f.kind == "int":
        return _int_prefix_viable(part, f.lo, f.hi) if partial else _int_complete(part, f.lo, f.hi)
    return any(w.startswith(part) for w in f.words) if partial else part in f.words


class Grammar:
    def __init__(self, forms: list[CallForm]):
        self.forms = forms
        self.max_len = max((len(self._longest(f)) for f in forms), default=0)

    @staticmethod
    def _longest(form: CallForm) -> str:
        parts = [form.name] + [max(f.words, key=len) if f.kind != "int" else str(f.hi) for f in form.fields]
        return " ".join(parts)

    def _match(self, form: CallForm, text: str, partial: bool) -> bool:
        parts = text.split(" ")
        fields = (Field("lit", (form.name,)),) + form.fields
        if len(parts) > len(fields) or (not partial and len(parts) != len(fields)):
            return False
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if not _field_ok(fields[i], part, partial and last):
                return False
        return True

    def viable(self, text: str) -> bool:
        """`text` is a prefix of some valid call (the empty text is)."""
        return len(text) <= self.max_len and any(self._match(f, text, True) for f in self.forms)

    def complete(self, text: str) -> bool:
        return any(self._match(f, text, False) for f in self.forms)

    def parse(self, text: str) -> tuple[str, list[str]]:
        """A complete call -> (tool name, argument texts)."""
        parts = text.split(" ")
        return parts[0], parts[1:]


def grammar_from_spec(spec) -> Grammar:
    """Build the grammar from an AgentSpec (spec.call_fields gives each tool's call as fields)."""
    from .spec import call_fields

    forms = []
    for tool in spec.tools:
        fields = []
        for f in call_fields(tool)[1:]:  # the first field is the tool name; a str is a literal word
            if isinstance(f, str):
                fields.append(Field("lit", (f,)))
            elif f.kind == "int":
                fields.append(Field("int", (), f.min, f.max))
            else:
                fields.append(Field("enum", tuple(f.values)))
        forms.append(CallForm(tool.name, tuple(fields)))
    return Grammar(forms)
