"""Talking to the agent: on the integer reference in Python, or on a device over its console.

A device is anything behind a Console (transport.py): the host board's pseudo-terminal, an emulator's
`-serial pty`, or a real serial port. The console protocol is in docs/engine.md.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, TextIO

from .errors import EXIT_DEVICE, TinyAgentError, bad_input

PROMPT = "> "
REPLY_TIMEOUT_S = 30.0  # one chat turn on the slowest emulated board stays well inside this
SYNC_TIMEOUT_S = 10.0  # boot plus the emulators' one-second UART start-up delay
SYNC_RETRY_S = 0.4


# ---- the reference, in Python ----------------------------------------------------------------------

@dataclass
class ReferenceAgent:
    """The shipped (or a run's) int8 model, tokenizer and spec, behind the same loop as the device."""

    run: Path

    def __post_init__(self):
        from .agent import SimHal, TokenClasses
        from .grammar import grammar_from_spec
        from .intmodel import load_int_model
        from .reference import Reference
        from .spec import load_spec
        from .tokenizer import load_tokenizer

        from .run import check_run_file

        check_run_file(self.run)
        self.model = load_int_model(self.run / "int8")
        self.engine = Reference(self.model)
        self.tc = TokenClasses(load_tokenizer(self.run / "tokenizer.json"))
        self.grammar = grammar_from_spec(load_spec(self.run / "spec.toml"))
        self.hal = SimHal()

    def ask(self, request: str, out: TextIO | None = None):
        from .agent import RequestTooLong, run_turn

        emit = (lambda s: (out.write(s), out.flush())) if out else None
        try:
            return run_turn(self.engine, self.tc, self.grammar, self.hal, request, self.model.cfg.ctx, emit)
        except RequestTooLong as e:
            if out:
                out.write(f"error: {e}\n")
            return None


# ---- a device over its console ---------------------------------------------------------------------

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
            rest = console.read_until(f"\n{PROMPT}", timeout=SYNC_TIMEOUT_S)  # " k\n> "
            if rest.split()[:1] != [str(n)]:  # an earlier ping's answer: drain to the last one's
                console.read_until(f"pong {n}\n{PROMPT}", timeout=SYNC_TIMEOUT_S)
            return
    raise TinyAgentError(f"{console.name}: no answer to !ping within {SYNC_TIMEOUT_S:.0f} s "
                         f"(is it a tinyagent build, at the right baud?)", EXIT_DEVICE)


def ask(console, line: str, timeout: float = REPLY_TIMEOUT_S) -> str:
    """Send one line; return everything the device printed up to its next prompt."""
    console.write_line(line)
    text = console.read_until("\n" + PROMPT, timeout=timeout)
    return text[: -len(PROMPT)]


def open_device(board: str | None, out: str | None, port: str | None, baud: int):
    """A synced Console for a build (host process or emulator) or a real port."""
    from .transport import open_console

    if port:
        console = open_console(None, port=port, baud=baud)
    else:
        from .build import load_build

        if not board and not out:
            raise bad_input("say which device: --board BOARD (with its build in build/BOARD or --out), "
                            "or --port for a real board")
        b = load_build(out or f"build/{board}", board)
        console = open_console(b.board, artifact=b.artifact)
    try:
        sync(console)
    except BaseException:
        console.close()
        raise
    return console


def _requests(stream: TextIO, interactive: bool) -> Iterator[str]:
    while True:
        if interactive:
            sys.stdout.write(PROMPT)
            sys.stdout.flush()
        line = stream.readline()
        if not line:
            return
        line = line.rstrip("\r\n")
        if line.strip():
            yield line


def chat(board: str | None = None, out: str | None = None, port: str | None = None, baud: int = 115200,
         run: Path | None = None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    interactive = stdin.isatty()
    if board == "reference":
        agent = ReferenceAgent(Path(run))
        for req in _requests(stdin, interactive):
            if not interactive:
                stdout.write(f"{PROMPT}{req}\n")
            agent.ask(req, stdout)
        return
    console = open_device(board, out, port, baud)
    with console:
        for req in _requests(stdin, interactive):
            if not interactive:
                stdout.write(f"{PROMPT}{req}\n")
            # stream the reply as it arrives; the device's own prompt at the end is not repeated
            console.write_line(req)
            held = ""
            for chunk in console.stream_until("\n" + PROMPT, timeout=REPLY_TIMEOUT_S):
                held += chunk
                stdout.write(held[:-len(PROMPT)])
                held = held[-len(PROMPT):]
                stdout.flush()
