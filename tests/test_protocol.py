"""protocol.py mirrors the firmware console's command table: the same commands, in the same order."""
import re

from c_harness import FIRMWARE
from tinyagent.device.protocol import COMMANDS


def test_commands_are_the_firmwares():
    src = (FIRMWARE / "ta_console.c").read_text()
    dispatched = tuple(re.findall(r'word_is\(name, name_n, "([a-z]+)"\)', src))
    assert dispatched == COMMANDS
    listed = re.search(r"\(commands: ([^)]*)\)", src).group(1).split()
    assert tuple(c.lstrip("!") for c in listed) == COMMANDS
