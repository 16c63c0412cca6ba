"""Number words to digits (agent/numbers.py, the spec) and its C twin ta_text_numbers (ta_text.c).

A small C program (firmware/test/numbers_main.c) rewrites one hex-encoded line per input line;
hypothesis draws lines made of number words, the words that join them and the separators that
decide whether they join, and arbitrary bytes.
"""
from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings, strategies as st

from tinyagent.agent import conversation
from tinyagent.agent.numbers import digits_for_numbers, digits_for_numbers_bytes

from c_harness import FIRMWARE, build_program

CASES = [
    ("countdown of ninety seconds", "countdown of 90 seconds"),
    ("one hundred and twenty seconds timer", "120 seconds timer"),
    ("timer for two hundred fifty seconds", "timer for 250 seconds"),
    ("timer for a hundred seconds", "timer for 100 seconds"),
    ("Forty-five secs", "45 secs"),
    ("forty five", "45"),
    ("pin twenty-seven on and pin six off", "pin 27 on and pin 6 off"),
    ("a thousand and one", "1001"),
    ("three thousand four hundred and five", "3405"),
    ("ninety-nine thousand nine hundred ninety-nine", "99999"),
    ("set a timer for one second", "set a timer for 1 second"),
    ("pin one high", "pin 1 high"),
    ("twelve and a half minutes", "12 and a half minutes"),  # "and a" joins no number
    ("an hour and a half", "an hour and a half"),
    ("turn that one off", "turn that one off"),  # "one" alone is a pronoun
    ("the blue one, pin two", "the blue one, pin 2"),
    ("one two three", "one 2 3"),  # units do not join each other
    ("twenty one hundred", "21 hundred"),
    ("twenty  five", "20  5"),  # two spaces: two numbers
    ("2one ten5 zero", "2one ten5 0"),  # glued to digits: left alone
    ("café forty two ünd", "café 42 ünd"),
    ("hundred thousand", "hundred thousand"),
    ("", ""),
]


@pytest.mark.parametrize("text,want", CASES)
def test_examples(text, want):
    assert digits_for_numbers(text) == want


@pytest.fixture(scope="module")
def calc(tmp_path_factory):
    exe = build_program([FIRMWARE / "test" / "numbers_main.c", FIRMWARE / "ta_text.c"], [FIRMWARE],
                        tmp_path_factory.mktemp("numbers") / "numbers_main")
    proc = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def rewrite(data: bytes) -> bytes:
        proc.stdin.write(data.hex() + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        assert line, f"numbers_main died on {data!r}"
        return bytes.fromhex(line.strip())

    yield rewrite
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0


WORDS = ["zero", "one", "two", "nine", "ten", "Eleven", "nineteen", "twenty", "NINETY", "forty", "hundred",
         "thousand", "and", "a", "an", "pin", "seconds", "min", "hr", "half", "5", "42", "x", "é"]
line_of_words = st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from([" ", " ", " ", "-", "", "  ", ", "])),
                         max_size=16).map(lambda parts: "".join(w + s for w, s in parts))


@pytest.mark.parametrize("text,want", CASES)
def test_c_examples(calc, text, want):
    assert calc(text.encode()) == want.encode()


@settings(max_examples=400, deadline=None)
@given(line_of_words)
def test_c_matches_python_on_number_words(calc, text):
    data = text.encode()
    assert calc(data) == digits_for_numbers_bytes(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_c_matches_python_on_bytes(calc, data):
    assert calc(data) == digits_for_numbers_bytes(data)


@settings(max_examples=300, deadline=None)
@given(line_of_words)
def test_never_longer_and_idempotent(text):
    """The firmware rewrites the line in place, so the result may not grow; and a line already
    rewritten (a request typed with digits) stays as it is."""
    once = digits_for_numbers(text)
    assert len(once.encode()) <= len(text.encode())
    assert digits_for_numbers(once) == once


def test_the_model_reads_digits(bpe):
    """Conversation.turn (every host path: chat, eval, conformance) tokenises the rewritten request."""
    seen = []

    class Engine:
        def reset(self): ...
        def rewind(self, pos): ...
        def step(self, token): ...

        def feed(self, tokens):
            seen.extend(tokens)
            raise StopIteration

    conv = conversation.Conversation(Engine(), conversation.TokenClasses(bpe), None, 64)
    with pytest.raises(StopIteration):
        conv.turn(lambda tool, args: "ok", "timer for ninety seconds")
    assert seen == bpe.encode("timer for 90 seconds\n")
