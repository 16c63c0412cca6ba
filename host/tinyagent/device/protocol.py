"""The host side of the firmware console's `!` commands: one function per command of ta_console.c's
table (COMMANDS), over any Console (transport.py) or object with its write_line / read_until.
The protocol itself is in docs/engine.md ("The console").
"""
from __future__ import annotations

import re
import sys

from ..errors import EXIT_DEVICE, TinyAgentError, bad_input

PROMPT = "> "
REPLY_TIMEOUT_S = 30.0  # one chat turn on the slowest emulated board stays well inside this
SYNC_TIMEOUT_S = 10.0  # boot plus the emulators' one-second UART start-up delay
SYNC_RETRY_S = 0.4
# ta_console.c's commands, in its order (tests/test_protocol.py checks them against the firmware)
COMMANDS = ("ping", "info", "new", "reset", "tok", "tokx", "run", "logits", "call", "bench", "stats")
_BENCH_RE = re.compile(r"bench steps=(\d+) cycles=(\d+) argmax=(-?\d+) hash=([0-9a-f]{8})")
STATS_FIELDS = ("fed", "fed_macs", "fed_cycles", "chosen", "chosen_macs", "chosen_cycles", "first_cycles", "cycles")
_STATS_RE = re.compile("stats " + " ".join(rf"{f}=(\d+)" for f in STATS_FIELDS))


def sync(console) -> None:
    """Wait until the device answers, resending `!ping N` until a pong arrives, then drain to the
    prompt that follows the last ping, so no stale reply is left for the first real request."""
    import time

    deadline = time.monotonic() + SYNC_TIMEOUT_S
    n = 0
    while time.monotonic() < deadline:
        n += 1
        console.write_line(f"!ping {n}")
        got = console.read_until("pong", timeout=SYNC_RETRY_S, raise_timeout=False)
        if got is not None and got.endswith("pong"):
            # drain to the last ping's answer; each earlier one shows the device working through the
            # backlog (slowly, on a loaded machine), so each gets SYNC_TIMEOUT_S of its own
            while console.read_until(f"\n{PROMPT}", timeout=SYNC_TIMEOUT_S).split()[:1] != [str(n)]:
                console.read_until("pong", timeout=SYNC_TIMEOUT_S)  # " k\n> " was an earlier ping's
            return
    raise TinyAgentError(f"{console.name}: no answer to !ping within {SYNC_TIMEOUT_S:.0f} s "
                         f"(is it a tinyagent build, at the right baud?)", EXIT_DEVICE)


def ask(console, line: str, timeout: float | None = None) -> str:
    """Send one line; return everything the device printed up to its next prompt (waiting at most
    `timeout`, by default the console's reply_timeout_s)."""
    console.write_line(line)
    text = console.read_until("\n" + PROMPT, timeout=timeout or getattr(console, "reply_timeout_s", REPLY_TIMEOUT_S))
    return text[: -len(PROMPT)]


def new_conversation(console) -> None:
    """`!new`: the device's next request starts from an empty context (a build older than
    conversations does not know it, and is said to run every request on its own)."""
    reply = ask(console, "!new")
    if reply != "ok\n":
        sys.stderr.write(f"note: {console.name} answered !new with {reply.strip()[:80]!r} (an older build?): "
                         f"each request there starts from an empty context; rebuild with `tinyagent build --replace`\n")


def info(console) -> dict[str, str]:
    """`!info`: version, engine, model hash, board, arena and the model's dims, as key=value."""
    return dict(kv.split("=", 1) for kv in ask(console, "!info").split() if "=" in kv)


def run(console, ids: list[int], timeout: float | None = None) -> list[tuple[int, str]]:
    """`!run ids`: (argmax, fnv1a32 of the int32 logits) after each token, fed one at a time."""
    text = ask(console, "!run " + " ".join(map(str, ids)), timeout=timeout)
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "step":
            out.append((int(parts[2]), parts[3]))
        elif line.startswith("error"):
            raise bad_input(f"{console.name}: device refused !run: {line}")
    return out


def tokenize(console, data: bytes) -> list[int]:
    """`!tokx HEX`: the device tokenizer's ids for these bytes."""
    reply = ask(console, "!tokx " + data.hex())
    words = reply.split()
    if words[:1] != ["tok"] or not all(w.isdigit() for w in words[1:]) or not reply.endswith("\n"):
        raise TinyAgentError(f"{console.name}: !tokx gave {reply.strip()[:120]!r}, not 'tok ID ...'", EXIT_DEVICE)
    return [int(t) for t in words[1:]]


def bench(console, ids: list[int], timeout: float | None = None) -> dict:
    """`!bench ids` on a synced console: {"steps", "cycles" (ta_hal_cycles units), "argmax", "hash"}
    of the last step (docs/engine.md)."""
    text = ask(console, "!bench " + " ".join(map(str, ids)), timeout=timeout).strip()
    m = _BENCH_RE.fullmatch(text)
    if not m:
        raise TinyAgentError(f"{console.name}: !bench gave {text[:120]!r}, not 'bench steps=N cycles=N ...' "
                             f"(is the firmware older than the !bench command?)")
    return {"steps": int(m.group(1)), "cycles": int(m.group(2)), "argmax": int(m.group(3)), "hash": m.group(4)}


def stats(console, timeout: float | None = None) -> dict:
    """`!stats` on a synced console: what the last turn cost (docs/engine.md), each of STATS_FIELDS."""
    text = ask(console, "!stats", timeout=timeout).strip()
    m = _STATS_RE.fullmatch(text)
    if not m:
        raise TinyAgentError(f"{console.name}: !stats gave {text[:120]!r}, not 'stats fed=N ...' "
                             f"(is the firmware older than the !stats command?)")
    return dict(zip(STATS_FIELDS, map(int, m.groups())))
