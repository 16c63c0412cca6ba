"""The C console (firmware/ta_console.c) against junk: any bytes, line endings, editing and escape
sequences, overlong lines, UTF-8 as Python checks it, unknown commands."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from tinyagent.device.chat import LINE_MAX  # TA_LINE_MAX (test_device_line_max_is_the_firmwares checks it)

# ---- the console against junk -------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=2000))
def test_console_survives_junk(device, junk):
    device.ask(junk)  # whatever it answers, it answers (ask waits for the prompt after a !ping)
    assert device.ask("!ping 42") == b"pong 42\n"


def test_line_endings(device):
    assert device.ask(b"!ping 1\r!ping 2\r\n!ping 3\n\r!ping 4", end=b"\r\n") == \
        b"pong 1\n> pong 2\n> pong 3\n> > pong 4\n"
    assert device.ask(b"") == b""


def test_editing_and_escape_sequences(device):
    assert device.ask(b"!pinx\x7fg 1") == b"pong 1\n"
    assert device.ask(b"!pinxx\x08\x08g 2") == b"pong 2\n"
    assert device.ask("!ping é\x7f3".encode()) == b"pong 3\n"  # DEL erases a whole character
    assert device.ask(b"\x7f\x7f!ping 4") == b"pong 4\n"
    assert device.ask(b"!pi\x1b[Dng\x1b[1;5C 5") == b"pong 5\n"  # CSI sequences (arrow keys)
    assert device.ask(b"!ping\x1bOA 6\x00") == b"pong 6\n"  # SS3, NUL
    assert device.ask(b"\x1bx!ping 7") == b"pong 7\n"


def test_overlong_lines(device):
    err = b"error: line too long (max %d bytes)\n" % LINE_MAX
    assert device.ask(b"!ping " + b"x" * (LINE_MAX - 6)) == b"pong " + b"x" * (LINE_MAX - 6) + b"\n"
    assert device.ask(b"!ping " + b"x" * (LINE_MAX - 5)) == err
    assert device.ask(b"y" * 5000 + b"\x7f" * 10) == err


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=60).map(lambda b: bytes(c for c in b if c not in b"\r\n\x00\x1b\x08\x7f")))
def test_utf8_check_matches_python(device, bpe, data):
    reply = device.ask(b"!tok " + data)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        assert reply == b"error: input is not valid UTF-8\n"
    else:
        assert reply == ("tok " + " ".join(map(str, bpe.encode(data)))).rstrip().encode() + b"\n"


def test_unknown_command(device):
    assert device.ask("!frobnicate now") == \
        b"error: unknown command !frobnicate (commands: !ping !info !new !reset !tok !tokx !run !logits !call !bench !stats)\n"
    assert device.ask("!") == b"error: unknown command ! (commands: !ping !info !new !reset !tok !tokx !run !logits !call !bench !stats)\n"
    assert device.ask("!ping") == b"pong\n"
