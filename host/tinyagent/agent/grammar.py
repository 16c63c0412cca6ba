"""The tool-call grammar: which call texts are valid, and which prefixes can still become one.

A call is `name field field ...` separated by single spaces; a field is a literal word, one word of
an enum, a decimal integer within min..max (no sign, no leading zero unless it is "0"), or a
duration: parts `<n>h`, `<n>m`, `<n>s` in that order, each n from 1 without a leading zero, at least
one part, adding up to min..max seconds ("1h30m" is 5400).
firmware/ta_agent.c mirrors `viable` and `complete` over the same generated field tables.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    kind: str  # "lit" | "enum" | "int" | "dur"
    words: tuple[str, ...] = ()  # lit: one word; enum: its words
    lo: int = 0
    hi: int = 0


@dataclass(frozen=True)
class CallForm:
    name: str
    fields: tuple[Field, ...]  # after the name
    acts: bool = True  # the tool changes the world (spec effect "write"): the safety gate applies
    arg_names: tuple[str, ...] = ()  # each field's name in the spec ("" for a literal word)
    names: tuple[str, ...] = ()  # a write tool: the request words that name it (agent/naming.py)
    units: bool = False  # it takes a duration: h, m, s right after a digit name it too


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


DURATION_UNITS = (("h", 3600), ("m", 60), ("s", 1))


def duration_caps(hi: int) -> tuple[int, int, int]:
    """The largest number each part of a duration up to hi seconds may say."""
    return tuple(max(1, hi // k) for _, k in DURATION_UNITS)


def _dur_scan(p: str) -> tuple[bool, int, int, int]:
    """(well-formed so far, seconds of the finished parts, the open part's number or 0, next unit
    index). Numbers past int32 are not well-formed."""
    total, v, open_, nxt = 0, 0, False, 0
    for c in p:
        if "0" <= c <= "9":
            if not open_ and c == "0":
                return False, 0, 0, 0
            v, open_ = v * 10 + int(c), True
            if v > 2**31 - 1:
                return False, 0, 0, 0
            continue
        units = [u for u, _ in DURATION_UNITS]
        if c not in units or not open_ or units.index(c) < nxt:
            return False, 0, 0, 0
        i = units.index(c)
        total += v * DURATION_UNITS[i][1]
        v, open_, nxt = 0, False, i + 1
        if total > 2**31 - 1:
            return False, 0, 0, 0
    return True, total, v, nxt


def _dur_viable(p: str, lo: int, hi: int) -> bool:
    """Some duration of lo..hi seconds starts with p (exact: every viable prefix can be finished)."""
    ok, total, v, nxt = _dur_scan(p)
    if not ok or total > hi:
        return False
    if v == 0:  # between parts: done already, or a part of seconds can still follow
        return lo <= total or (nxt <= 2 and total < hi)
    for i in range(nxt, 3):
        f = DURATION_UNITS[i][1]
        if i < 2 and total + v * f <= hi:
            return True  # "<v>h" fits: seconds may follow to reach lo
        if i == 2 and _int_prefix_viable(str(v), max(1, lo - total), hi - total):
            return True  # some number of seconds starting with v fits
    return False


def _dur_complete(p: str, lo: int, hi: int) -> bool:
    ok, total, v, nxt = _dur_scan(p)
    return ok and p != "" and v == 0 and lo <= total <= hi


def duration_seconds(text: str) -> int:
    """ "1h30m" -> 5400 (text already complete under the grammar)."""
    ok, total, v, _ = _dur_scan(text)
    assert ok and v == 0, text
    return total


def _field_ok(f: Field, part: str, partial: bool) -> bool:
    if f.kind == "dur":
        return _dur_viable(part, f.lo, f.hi) if partial else _dur_complete(part, f.lo, f.hi)
    if f.kind == "int":
        return _int_prefix_viable(part, f.lo, f.hi) if partial else _int_complete(part, f.lo, f.hi)
    return any(w.startswith(part) for w in f.words) if partial else part in f.words


def field_longest(f: Field) -> str:
    """A text at least as long as any the field accepts."""
    if f.kind == "int":
        return str(f.hi)
    if f.kind == "dur":  # every part at its largest digit count
        return "".join("9" * len(str(c)) + u for c, (u, _) in zip(duration_caps(f.hi), DURATION_UNITS))
    return max(f.words, key=len)  # the longest word, wherever the enum lists it


def normalized_max_len(form: CallForm) -> int:
    """The longest call text a handler gets: durations as their seconds."""
    return len(form.name) + sum(1 + len(str(f.hi) if f.kind == "dur" else field_longest(f)) for f in form.fields)


class Grammar:
    def __init__(self, forms: list[CallForm]):
        self.forms = forms
        self.max_len = max((len(self._longest(f)) for f in forms), default=0)

    @staticmethod
    def _longest(form: CallForm) -> str:
        return " ".join([form.name] + [field_longest(f) for f in form.fields])

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
        """A complete call -> (tool name, argument texts), durations in seconds ("5400")."""
        parts = text.split(" ")
        form = next((f for f in self.forms if self._match(f, text, False)), None)
        if form is not None:
            for i, f in enumerate(form.fields):
                if f.kind == "dur":
                    parts[i + 1] = str(duration_seconds(parts[i + 1]))
        return parts[0], parts[1:]

    def normalize(self, text: str) -> str:
        """The call as the device prints it and the HAL gets it: durations in seconds."""
        name, args = self.parse(text)
        return " ".join([name] + args)

    def form(self, name: str) -> CallForm | None:
        return next((f for f in self.forms if f.name == name), None)


def grammar_from_spec(spec) -> Grammar:
    """Build the grammar from an AgentSpec (spec.call_fields gives each tool's call as fields)."""
    from .naming import naming_words, takes_time
    from .spec import call_fields

    forms = []
    for tool in spec.tools:
        fields, names = [], []
        for f in call_fields(tool)[1:]:  # the first field is the tool name; a str is a literal word
            names.append("" if isinstance(f, str) else f.name)
            if isinstance(f, str):
                fields.append(Field("lit", (f,)))
            elif f.kind == "int":
                fields.append(Field("int", (), f.min, f.max))
            elif f.kind == "duration":
                fields.append(Field("dur", (), f.min, f.max))
            else:
                fields.append(Field("enum", tuple(f.values)))
        words = naming_words(spec, tool) if tool.acts else ()
        units = tool.acts and takes_time(tool)
        forms.append(CallForm(tool.name, tuple(fields), tool.acts, tuple(names), words, units))
    return Grammar(forms)
