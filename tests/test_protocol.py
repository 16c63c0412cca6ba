"""protocol.py mirrors the firmware console's command table: the same commands, in the same order."""
import re

from tinyagent.device.protocol import COMMANDS

from c_harness import FIRMWARE


def test_commands_are_the_firmwares():
    src = (FIRMWARE / "ta_console.c").read_text()
    dispatched = tuple(re.findall(r'ta_text_match\("([a-z]+)", name, name_n, 0\)', src))
    assert dispatched == COMMANDS
    listed = re.search(r"\(commands: ([^)]*)\)", src).group(1).split()
    assert tuple(c.lstrip("!") for c in listed) == COMMANDS


class BadHexConsole:
    """FAKE-ish: the real harness console, but every line it is given goes out as `!tokx zz`, so the
    device's refusal comes back where protocol.tokenize expects ids."""

    def __init__(self, con):
        self.con, self.name = con, con.name

    def write_line(self, text):
        self.con.write_line("!tokx zz")

    def read_until(self, *args, **kwargs):
        return self.con.read_until(*args, **kwargs)


def test_one_client_drives_the_harness_console(tmp_path, tiny_int, bpe, spec):
    """The C tests' pipe console is a protocol console too: the same client functions as a board's."""
    import pytest

    from tinyagent.device import protocol
    from tinyagent.errors import TinyAgentError

    from c_harness import expected_steps, start_firmware

    im = tiny_int[1]
    con = start_firmware(tmp_path, im, bpe, spec)
    try:
        assert protocol.info(con)["engine"] == "3" and protocol.info(con)["board"] == "harness"
        ids = protocol.tokenize(con, b"turn on the light\n")
        assert ids == bpe.encode("turn on the light\n")
        steps = protocol.run(con, ids)
        assert [f"{a} {h}" for a, h in steps] == [" ".join(line.split()[2:]) for line in expected_steps(im, ids)]
        protocol.new_conversation(con)
        with pytest.raises(TinyAgentError, match=r"!tokx gave 'error: !tokx needs hex digits"):
            protocol.tokenize(BadHexConsole(con), b"x")
        assert con.ask("!ping 7") == b"pong 7\n"  # nothing left over between the two ways of asking
    finally:
        assert con.close() == 0


def test_a_turn_splits_at_newlines_only():
    """An answer may hold any byte the model wrote: a "\\r" (or "\\x0b", "\\x1c") stays in it, as the
    reference has it, instead of cutting the answer into lines (found by a random model's answer)."""
    from tinyagent.device.conformance import parse_turn

    reply = "[water 90] -> ok\nCor\r00\x0b1\x1c2\n"
    assert parse_turn(reply) == ([("water 90", "ok")], "Cor\r00\x0b1\x1c2")
