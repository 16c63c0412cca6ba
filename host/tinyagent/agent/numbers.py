"""Number words to digits, before a request is tokenised: "ninety seconds" -> "90 seconds", "one
hundred and twenty" -> "120", "pin twenty-seven" -> "pin 27", "a thousand" -> "1000".

The model copies digits well and reads number words badly (v10 wrote [timer 9] for "ninety seconds"
and [timer 20] for "one hundred and twenty"), so the device rewrites the words people say for
numbers as digits before the model sees them, the way speech assistants' inverse text normalisation
does. This module is the spec; the firmware's ta_text_numbers() (firmware/ta_text.c) writes the same
bytes for every line, and tests/test_numbers.py holds it to that.

The rules, over words (runs of ASCII letters, compared without case; the rest of the line is kept as
it is):
- a number is a run of number words: units (zero..nineteen), tens (twenty..ninety), a tens word and a
  unit joined by one space or one hyphen ("forty-five"), "hundred" after a unit, "a" or "an" ("a
  hundred"), "thousand" after a number below a thousand or "a"/"an"; "and" joins a hundred or a
  thousand to the number below it ("one hundred and five");
- a number ends where the next word cannot continue it; a tens word after a tens word, a unit after
  a unit ("one two three") or a hundred after a hundred starts a new number;
- "one" alone is a pronoun as often as a number ("the blue one", "that one off"), so it stays a word
  unless a unit of time follows it ("one second", "one hour") or "pin" comes before it, one space
  apart;
- "a"/"an" and "and" that do not join a number stay as they are ("a minute and a half");
- a number with a digit right before or after it ("2one", "ten5") is left alone.
The result is never longer than the line (a number's words are at least as long as its digits), so
the firmware rewrites the line in place.
"""
from __future__ import annotations

import re

UNITS = {w: i for i, w in enumerate((
    b"zero", b"one", b"two", b"three", b"four", b"five", b"six", b"seven", b"eight", b"nine", b"ten",
    b"eleven", b"twelve", b"thirteen", b"fourteen", b"fifteen", b"sixteen", b"seventeen", b"eighteen",
    b"nineteen"))}
TENS = {w: 10 * i for i, w in enumerate(
    (b"twenty", b"thirty", b"forty", b"fifty", b"sixty", b"seventy", b"eighty", b"ninety"), start=2)}
TIME_UNITS = frozenset((b"second", b"seconds", b"sec", b"secs", b"minute", b"minutes", b"min", b"mins",
                        b"hour", b"hours", b"hr", b"hrs"))
_WORD = re.compile(rb"[A-Za-z]+")
_DIGITS = b"0123456789"


class _Line:
    """A line's words: their spans and their lowercased text."""

    def __init__(self, line: bytes):
        self.line = line
        found = list(_WORD.finditer(line))
        self.span = [(m.start(), m.end()) for m in found]
        self.text = [m.group().lower() for m in found]

    def joined(self, a: int, b: int, hyphen: bool = False) -> bool:
        """Words a and b (= a + 1) are apart by one space (or, with `hyphen`, one '-')."""
        gap = self.line[self.span[a][1]:self.span[b][0]]
        return gap == b" " or (hyphen and gap == b"-")

    def next_is(self, k: int, word: bytes) -> bool:
        return k + 1 < len(self.text) and self.text[k + 1] == word and self.joined(k, k + 1)

    def below_100(self, k: int) -> tuple[int, int] | None:
        """(value, last word) of the number below 100 that starts at word k."""
        w = self.text[k]
        if w in UNITS:
            return UNITS[w], k
        if w not in TENS:
            return None
        if k + 1 < len(self.text) and 1 <= UNITS.get(self.text[k + 1], 0) <= 9 and self.joined(k, k + 1, True):
            return TENS[w] + UNITS[self.text[k + 1]], k + 1
        return TENS[w], k

    def with_and(self, k: int) -> tuple[int, int] | None:
        """The number below 100 after word k, with or without an "and" between."""
        j = k + 2 if self.next_is(k, b"and") else k + 1
        if j >= len(self.text) or not self.joined(j - 1, j):
            return None
        return self.below_100(j)

    def below_1000(self, k: int) -> tuple[int, int] | None:
        if self.text[k] in (b"a", b"an"):
            if not self.next_is(k, b"hundred"):
                return None
            head, end = 100, k + 1
        else:
            small = self.below_100(k)
            if small is None:
                return None
            head, end = small
            if not (1 <= head <= 9 and self.next_is(end, b"hundred")):
                return small
            head, end = head * 100, end + 1
        rest = self.with_and(end)
        return (head + rest[0], rest[1]) if rest else (head, end)

    def number(self, i: int) -> tuple[int, int] | None:
        """The number that starts at word i: (value, its last word), or None."""
        if self.text[i] in (b"a", b"an") and self.next_is(i, b"thousand"):
            found: tuple[int, int] | None = (1, i)
        else:
            found = self.below_1000(i)
        if found is None:
            return None
        value, end = found
        if self.next_is(end, b"thousand"):
            value, end = value * 1000, end + 1
            j = end + 2 if self.next_is(end, b"and") else end + 1
            if j < len(self.text) and self.joined(j - 1, j):
                rest = self.below_1000(j)
                if rest:
                    value, end = value + rest[0], rest[1]
        return value, end


def digits_for_numbers_bytes(line: bytes) -> bytes:
    """The line with every number said in words written in digits (the module's rules)."""
    w = _Line(line)
    out, done, i = [], 0, 0
    while i < len(w.text):
        found = w.number(i)
        if found is not None:
            end = found[1]
            s, e = w.span[i][0], w.span[end][1]
            if (s > 0 and line[s - 1] in _DIGITS) or (e < len(line) and line[e] in _DIGITS):
                found = None
            elif end == i and w.text[i] == b"one":
                after = w.text[i + 1] if i + 1 < len(w.text) and w.joined(i, i + 1) else b""
                before = w.text[i - 1] if i > 0 and w.joined(i - 1, i) else b""
                if after not in TIME_UNITS and before != b"pin":
                    found = None
        if found is None:
            i += 1
            continue
        value, end = found
        out += [line[done:w.span[i][0]], str(value).encode()]
        done = w.span[end][1]
        i = end + 1
    out.append(line[done:])
    return b"".join(out)


def digits_for_numbers(line: str) -> str:
    """digits_for_numbers_bytes on text (it changes ASCII only, so UTF-8 stays UTF-8)."""
    return digits_for_numbers_bytes(line.encode()).decode()
