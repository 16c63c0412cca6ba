"""Durations: how the corpus says them, how the call writes them ("1h30m"), what the device gets (5400).

The generator's phrases are checked against an independent reading of spoken English durations
written here, so a phrase whose call says something else is caught. The C grammar's side is in
test_agent_c.py (`!call` over the same forms, and printed calls compared with the reference).
"""
from __future__ import annotations

import random
import re

import pytest

from tinyagent.agent import phrasebook as pb
from tinyagent.agent.corpus import _Generator, split_phrasings
from tinyagent.agent.grammar import CallForm, Field, Grammar, duration_seconds
from tinyagent.agent.spec import DEFAULT_SPEC_PATH, Arg, load_spec

G = Grammar([CallForm("timer", (Field("dur", (), 1, 86400),)), CallForm("pump", (Field("dur", (), 5, 600),))])


@pytest.mark.parametrize("call, seconds", [
    ("timer 1h30m", 5400), ("timer 90m", 5400), ("timer 2m30s", 150), ("timer 45s", 45), ("timer 24h", 86400),
    ("timer 1h15m", 4500), ("timer 45m", 2700), ("timer 1m30s", 90), ("timer 1h1m1s", 3661), ("timer 300s", 300),
    ("timer 1440m", 86400), ("timer 86400s", 86400), ("pump 5s", 5), ("pump 10m", 600), ("pump 9m59s", 599),
])
def test_complete_durations_are_their_seconds(call, seconds):
    assert G.complete(call)
    assert G.normalize(call) == f"{call.split()[0]} {seconds}"


@pytest.mark.parametrize("call", [
    "timer 0s", "timer 05m", "timer 1s1m", "timer 1m1h", "timer 1h1h", "timer 24h1s", "timer 86401s", "timer 25h",
    "timer 90", "timer 1h30", "timer h", "timer 1x", "timer 1 h", "pump 4s", "pump 10m1s", "pump 1h", "timer ",
])
def test_malformed_or_out_of_range_durations(call):
    assert not G.complete(call)


def test_every_viable_duration_prefix_can_be_finished():
    """The decoder can never be stuck inside a duration: from each viable prefix some continuation
    stays viable until the call is complete (checked breadth-first over short prefixes)."""
    alphabet = "0123456789hms"
    for lo, hi in ((1, 86400), (5, 600), (60, 120), (3600, 3600)):
        f = Field("dur", (), lo, hi)
        g = Grammar([CallForm("t", (f,))])
        frontier = [""]
        for _ in range(4):
            nxt = []
            for p in frontier:
                text = "t " + p
                if not g.viable(text):
                    continue
                todo, seen, done = [p], 0, False
                while todo and not done and seen < 3000:
                    q = todo.pop(0)
                    seen += 1
                    done = g.complete("t " + q)
                    todo += [q + c for c in alphabet if g.viable("t " + q + c)]
                assert done, (lo, hi, p)
                nxt += [p + c for c in alphabet]
            frontier = nxt


# ---- an independent reading of spoken durations -----------------------------------------------------

_SMALL = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i >= 2}
_UNIT = {"hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600, "h": 3600, "minute": 60, "minutes": 60, "min": 60,
         "mins": 60, "m": 60, "second": 1, "seconds": 1, "sec": 1, "secs": 1, "s": 1}


def _number(words: list[str]) -> float:
    """English words or digits -> a number: "a hundred and twenty", "forty-five", "2.5"."""
    if len(words) == 1 and re.fullmatch(r"[0-9]+(\.[0-9]+)?", words[0]):
        return float(words[0])
    total = 0
    for w in words:
        for part in w.split("-"):
            if part in ("and",):
                continue
            if part in ("a", "an"):
                total += 1
            elif part == "hundred":
                total = (total or 1) * 100
            elif part in _SMALL:
                total += _SMALL[part]
            elif part in _TENS:
                total += _TENS[part]
            else:
                raise ValueError(part)
    return total


def spoken_seconds(text: str) -> int:
    t = text.lower()
    t = re.sub(r"([0-9])([a-z])", r"\1 \2", t)  # "90mins" -> "90 mins", "1h15m" -> "1 h15 m"
    t = re.sub(r"([a-z])([0-9])", r"\1 \2", t)
    t = re.sub(r"-(hour|minute|second|min|sec|hr)\b", r" \1", t)  # "ten-minute" (a number's own hyphen stays)
    fixed = {"half an hour": 1800, "half a minute": 30, "a quarter of an hour": 900, "quarter of an hour": 900,
             "a quarter of a minute": 15, "quarter of a minute": 15, "three quarters of an hour": 2700,
             "three quarters of a minute": 45, "an hour and a half": 5400, "a minute and a half": 90,
             "an hour and a quarter": 4500, "a minute and a quarter": 75, "an hour": 3600, "a minute": 60,
             "an hour and three quarters": 6300, "a minute and three quarters": 105, "half-hour": 1800,
             "half hour": 1800, "quarter-hour": 900, "quarter hour": 900, "half-minute": 30, "half minute": 30}
    if t in fixed:
        return fixed[t]
    total = 0.0
    words = t.replace(",", " ").split()
    i, pending, last_unit = 0, [], 0
    while i < len(words):
        w = words[i]
        if w in _UNIT and pending:
            total += _number(pending) * _UNIT[w]
            pending, last_unit = [], _UNIT[w]
        elif w in _UNIT and i > 0 and words[i - 1] in ("a", "an"):
            total += _UNIT[w]
        elif w == "and" and not pending:
            pass
        elif w == "half" and pending[-2:] == ["and", "a"]:  # "two and a half hours"
            pending = [str(_number(pending[:-2]) + 0.5)]
        elif w == "quarter" and pending[-2:] == ["and", "a"]:
            pending = [str(_number(pending[:-2]) + 0.25)]
        elif w == "quarters" and pending[-2:] == ["and", "three"]:  # "two and three quarters hours"
            pending = [str(_number(pending[:-2]) + 0.75)]
        elif w in ("an", "a") and i + 1 < len(words) and words[i + 1] in _UNIT:
            pass
        else:
            pending.append(w)
        i += 1
    if pending and last_unit == 3600:  # "2h30": the number after the hours is minutes
        total += _number(pending) * 60
        pending = []
    assert not pending, (text, pending)
    assert abs(total - round(total)) < 1e-9, text
    return round(total)


@pytest.mark.parametrize("text, seconds", [
    ("an hour and a half", 5400), ("90 mins", 5400), ("2.5 min", 150), ("three quarters of an hour", 2700),
    ("1h 15m", 4500), ("1h15m", 4500), ("forty-five seconds", 45), ("a hundred and twenty seconds", 120),
    ("two and a half hours", 9000), ("an hour and 20 minutes", 4800), ("2 minutes 30 seconds", 150),
    ("half an hour", 1800), ("3 hrs", 10800), ("45s", 45), ("one hundred five minutes", 6300),
    ("ten-minute", 600), ("2h30", 9000), ("an hour and three quarters", 6300), ("0.5 hours", 1800),
    ("two and three quarters hours", 9900), ("quarter-hour", 900), ("forty-five minute", 2700),
])
def test_the_reader_of_this_test(text, seconds):
    assert spoken_seconds(text) == seconds


def test_generated_duration_phrases_say_what_their_call_does():
    """2000 durations as the corpus says them: the call's seconds are what the phrase means."""
    spec = load_spec(DEFAULT_SPEC_PATH)
    train, _ = split_phrasings(spec, 0)
    gen = _Generator(spec, train, "tinyagent/test/durations")
    arg = Arg("seconds", "duration", min=1, max=86400, unit="seconds")
    shapes = set()
    for i in range(2000):
        call, phrase = gen.duration(arg, random.Random(i).choice(["", "minutes", "hours", "seconds", "adj"]), None)
        assert G.complete("timer " + call), call
        assert duration_seconds(call) == spoken_seconds(phrase), (phrase, call)
        shapes.add(re.sub(r"[0-9]+", "N", call))
    assert {"Nh", "Nm", "Ns", "NhNm", "NmNs"} <= shapes, shapes


def test_number_words_to_999():
    assert pb.number_in_words(0) == "zero" and pb.number_in_words(45) == "forty-five"
    assert pb.number_in_words(312) == "three hundred and twelve" and pb.number_in_words(900) == "nine hundred"
    rng = random.Random(0)
    for n in range(1000):
        for _ in range(3):
            assert _number(pb.number_in_words(n, rng).split()) == n, n
    with pytest.raises(ValueError):
        pb.number_in_words(1000)
