"""Which words of a request name a tool: the second half of the safety gate (docs/integer-contract.md,
"Decoding"). A write call runs only if the request names its tool, or the tool ran in the last turn
that ran a call (a follow-up: "turn it off", "make it 8 instead"); otherwise the device asks, as for
a call below the confidence threshold. Line noise, word salad and small talk name no tool, so
whatever the model decodes from them does not act.

A tool's naming words come from its spec: the last word of each value of every synonym its nouns or
its phrasings use ("the {light}" gives light, led, lamp, lights, bulb), the other words of its nouns
that are not articles or prepositions ("the GPIO pins": gpio, pins), the words of its name, the time
units if it takes a duration (or an int said in a time unit), and the words it lists under `words`.
A request word names the tool if it is one of them, or one typo away from one (`_typo_of`: the same
first letter, and two neighbours swapped, or in words of 5 letters or more one letter inserted,
dropped or changed). A time unit of one letter (h, m, s) counts only right after a digit ("90s",
"1h30m"). firmware/ta_text.c (`ta_text_names`) does the same, byte for byte.

A bare acknowledgement ("great", "ok thanks", "cool, thank you very much") is no follow-up: it asks
for nothing, so the last turn's tool is not exempt for it (`is_acknowledgement`; `ta_text_ack`).
"""
from __future__ import annotations

import re

from .numbers import TIME_UNITS

# noun words that name nothing
STOP_WORDS = frozenset({"the", "a", "an", "on", "of", "in", "at", "to", "for", "and", "or", "my", "your", "our",
                        "this", "that", "its", "his", "her", "their", "with", "by", "from"})
UNITS = tuple(sorted(u.decode() for u in TIME_UNITS))
SHORT_UNITS = ("h", "m", "s")  # only right after a digit
FUZZY_MIN = 4  # a swap is forgiven in words of at least this many letters, other typos from one more

# A request of these words alone, and no digit, acknowledges the last turn (lower-case letters; a word
# is a run of letters, so "that's" is "that" and "s"). At most ACK_WORD_MAX letters each.
ACK_WORDS = frozenset({
    "ok", "okay", "okey", "k", "kk", "alright", "allright", "right", "fine", "good", "great", "cool", "nice",
    "neat", "sweet", "super", "perfect", "awesome", "excellent", "wonderful", "brilliant", "lovely", "amazing",
    "fantastic", "thanks", "thank", "thx", "ty", "cheers", "you", "very", "much", "so", "a", "lot", "yes",
    "yeah", "yep", "yup", "sure", "got", "it", "that", "s", "is", "was", "works", "worked", "job", "work",
    "well", "done", "wow", "haha", "lol", "oh", "ah", "hmm", "appreciated", "please", "bye", "goodbye",
    "the", "and", "just", "what", "needed", "i", "all", "for", "exactly", "indeed"})
ACK_WORD_MAX = 11

_WORD = re.compile(r"[a-z]+")
_BRACES = re.compile(r"\{([^{}]*)\}")


def words_of(text: str) -> list[str]:
    """The runs of ASCII letters in text, lower-cased."""
    return _WORD.findall("".join(ch.lower() if ch.isascii() else " " for ch in text))


def takes_time(tool) -> bool:
    """The tool takes a duration, or an int said in a time unit ("5 minutes" for seconds = 300)."""
    return any(a.kind == "duration" or a.unit for a in tool.args)


def naming_words(spec, tool) -> tuple[str, ...]:
    """The words that name `tool` in a request (sorted, each once); see the module docstring."""
    syn = dict(spec.synonyms)
    out = set(words_of(tool.name))  # "led_strip": led, strip
    nouns = tool.noun_templates()
    used = {n for t in nouns + tuple(p for i in tool.intents for p in i.phrasings) for n in _BRACES.findall(t)}
    for name in sorted(used & set(syn)):
        out.update(ws[-1] for ws in map(words_of, syn[name]) if ws)
    for noun in nouns:
        out.update(w for w in words_of(_BRACES.sub(" ", noun)) if w not in STOP_WORDS)
    if takes_time(tool):
        out.update(UNITS)
    out.update(tool.words)
    return tuple(sorted(out))


def _typo_of(word: str, name: str) -> bool:
    """`word` is `name` with one typo after the first letter: two neighbours swapped (both at least
    FUZZY_MIN letters), or, both at least FUZZY_MIN + 1 letters, one letter inserted, dropped or
    changed. The first letter must match: "right" is not a typo of "light", nor "back" of "black"."""
    if min(len(word), len(name)) < FUZZY_MIN or word[0] != name[0]:
        return False
    a, b = (word, name) if len(word) <= len(name) else (name, word)
    if len(b) - len(a) > 1:
        return False
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        if i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2:] == b[i + 2:]:
            return True  # swapped
        return len(a) > FUZZY_MIN and a[i + 1:] == b[i + 1:]  # changed
    return len(a) >= FUZZY_MIN + 1 and a[i:] == b[i + 1:]  # one more letter in b


def word_names(word: str, names: tuple[str, ...]) -> bool:
    """One request word (lower-case letters) against a tool's naming words."""
    return any(word == n or _typo_of(word, n) for n in names)


def names_tool(request: str, names: tuple[str, ...], units: bool) -> bool:
    """Whether the request (as the device tokenises it: after the numbers rewrite) names the tool;
    `units`: the tool takes a duration, so h, m and s right after a digit name it too."""
    text = "".join(ch.lower() if ch.isascii() else " " for ch in request)
    for m in _WORD.finditer(text):
        w = m.group()
        if word_names(w, names):
            return True
        if units and w in SHORT_UNITS and m.start() > 0 and text[m.start() - 1].isdigit():
            return True
    return False


def is_acknowledgement(request: str) -> bool:
    """The request (after the numbers rewrite) has no digit and no word outside ACK_WORDS: "thanks",
    "great!", "ok, got it", "👍" (no word at all). Then the last turn's tool needs naming again."""
    if any("0" <= ch <= "9" for ch in request):
        return False
    return all(w in ACK_WORDS for w in words_of(request))


def unnamed_phrasings(spec) -> list[tuple[str, str]]:
    """(tool, phrasing) for each phrasing of a write tool whose own words, with every synonym and arg
    left out, name no tool word: said that way, the device asks before it runs the call (unless the
    tool ran in the last turn). `tinyagent build` lists them, so that the spec can add `words`."""
    out = []
    for tool in spec.tools:
        if not tool.acts:
            continue
        names, units = naming_words(spec, tool), takes_time(tool)
        syn = dict(spec.synonyms)
        for intent in tool.intents:
            for p in intent.phrasings:
                # each synonym as its first value, an arg as a number with its unit: the words it always has
                text = _BRACES.sub(lambda m: syn[m.group(1)][0] if m.group(1) in syn else
                                   "5 " + UNITS[0] if units else "5", p)
                if not names_tool(text, names, units):
                    out.append((tool.name, p))
    return out


def unnamed_note(spec, most: int = 4) -> str:
    """One line for the build report about unnamed_phrasings, or "" if there are none."""
    found = unnamed_phrasings(spec)
    if not found:
        return ""
    shown = ", ".join(f"{p!r} ({t})" for t, p in found[:most]) + (", ..." if len(found) > most else "")
    return (f"naming: {len(found)} phrasing(s) of a write tool name no word of it, so the device asks before "
            f"running them: {shown}; list the missing words under the tool's `words` (docs/agent-spec.md)")
