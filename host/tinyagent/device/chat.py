"""Talking to the agent: on the integer reference in Python, or on a device over its console.

A device is anything behind a Console (transport.py): the host board's pseudo-terminal, an emulator's
`-serial pty`, or a real serial port. The console protocol is in docs/engine.md.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, TextIO

from ..errors import bad_input
from .protocol import PROMPT, REPLY_TIMEOUT_S, new_conversation, sync

# ---- the console's line editing (firmware/ta_console.c, read_line and valid_utf8) -------------------

LINE_MAX = 1280  # TA_LINE_MAX (firmware/ta_console.h): a longer line is refused whole
LINE_TOO_LONG = f"error: line too long (max {LINE_MAX} bytes)"
NOT_UTF8 = "error: input is not valid UTF-8"
_BS, _DEL, _ESC, _NUL = 0x08, 0x7F, 0x1B, 0x00
_ESC_NONE, _ESC_START, _ESC_CSI, _ESC_SS3 = range(4)


@dataclass(frozen=True)
class EditedLine:
    """One console line after editing: what the firmware keeps of it, and how it answers it."""

    text: bytes      # the bytes kept (at most LINE_MAX)
    too_long: bool   # more than LINE_MAX were typed: the console refuses the line whole

    @property
    def error(self) -> str | None:
        """The console's one-line refusal of this line, or None if it takes it."""
        if self.too_long:
            return LINE_TOO_LONG
        try:
            self.text.decode("utf-8")  # strict, as valid_utf8: no overlong, surrogates, > U+10FFFF
        except UnicodeDecodeError:
            return NOT_UTF8
        return None

    @property
    def blank(self) -> bool:
        """Nothing but whitespace is left (chat does not send it: the console would answer nothing)."""
        return not self.too_long and not self.text.strip()


def _erase_last(line: bytearray) -> None:
    """BS/DEL: remove the last character, one UTF-8 sequence or one stray byte (erase_last)."""
    k, cont = len(line), 0
    while k > 0 and cont < 3 and line[k - 1] & 0xC0 == 0x80:
        k, cont = k - 1, cont + 1
    if k > 0 and (cont == 0 or line[k - 1] >= 0xC0):
        del line[k - 1:]
    elif line:
        del line[-1]


def edit_line(raw: bytes) -> EditedLine:
    """The firmware console's editing of one line (given without its CR/LF end), byte for byte: BS
    and DEL erase a character; escape sequences (CSI up to its final byte, SS3 and its byte, ESC and
    one byte) and NUL vanish; every other byte is kept, up to LINE_MAX."""
    line, too_long, esc = bytearray(), False, _ESC_NONE
    for c in raw:
        if esc == _ESC_START:
            esc = {0x5B: _ESC_CSI, 0x4F: _ESC_SS3, _ESC: _ESC_START}.get(c, _ESC_NONE)  # [ O ESC
            continue
        if esc == _ESC_CSI:
            if 0x20 <= c <= 0x3F:
                continue  # parameter and intermediate bytes
            esc = _ESC_NONE
            if 0x40 <= c <= 0x7E:
                continue  # final byte; any other byte ends the sequence and is read as itself
        elif esc == _ESC_SS3:
            esc = _ESC_NONE
            continue
        if c == _NUL:
            continue
        if c == _ESC:
            esc = _ESC_START
        elif c in (_BS, _DEL):
            _erase_last(line)
        elif len(line) == LINE_MAX:
            too_long = True
        else:
            line.append(c)
    return EditedLine(bytes(line), too_long)


# ---- the reference, in Python ----------------------------------------------------------------------

@dataclass
class ReferenceAgent:
    """The shipped (or a run's) int8 model, tokenizer and spec, behind the same loop as the device."""

    run: Path

    def __post_init__(self):
        from ..agent.conversation import Conversation, TokenClasses, load_min_margin
        from ..agent.grammar import grammar_from_spec
        from ..agent.simulated_hal import SpecHal
        from ..agent.spec import load_spec
        from ..agent.tokenizer import load_tokenizer
        from ..integer.intmodel import load_int_model
        from ..integer.reference import Reference
        from ..training.run import check_run_file

        check_run_file(self.run)
        self.model = load_int_model(self.run / "int8")
        self.min_margin = load_min_margin(self.run / "int8")
        self.engine = Reference(self.model)
        self.tc = TokenClasses(load_tokenizer(self.run / "tokenizer.json"))
        spec = load_spec(self.run / "spec.toml")
        self.grammar = grammar_from_spec(spec)
        self.hal = SpecHal(spec)  # the simulated board, with this agent's tools
        self.conversation = Conversation(self.engine, self.tc, self.grammar, self.model.cfg.ctx, self.min_margin)

    def ask(self, request: str, out: TextIO | None = None):
        """The conversation's next turn (None, and the console's error line, for a request too long)."""
        from ..agent.conversation import RequestTooLong

        emit = (lambda s: (out.write(s), out.flush())) if out else None
        try:
            return self.conversation.turn(self.hal, request, emit)
        except RequestTooLong as e:
            if out:
                out.write(f"error: {e}\n")
            return None

    def command(self, line: str) -> str | None:
        """The console's reply to a command the reference has (!new and !reset: a new conversation), or
        None for any other line."""
        if line.split(" ", 1)[0] in ("!new", "!reset"):
            self.conversation.new()
            return "ok"
        return None


# ---- a device over its console ---------------------------------------------------------------------


def open_device(board: str | None, out: str | None, port: str | None, baud: int):
    """A synced Console for a build (host process or emulator) or a real port."""
    from .transport import open_console

    if port:
        console = open_console(None, port=port, baud=baud)
    else:
        from ..targets.build import load_build

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


def input_lines(stream: IO, interactive: bool = False) -> Iterator[bytes]:
    """The lines of `stream` as bytes, ended as the console ends them: CR, LF and CRLF each end one
    line. A last line without an end is a line too. A stream with a binary buffer (sys.stdin) is read
    from it, so invalid UTF-8 arrives as it is; text (io.StringIO) is encoded as UTF-8."""
    read = getattr(stream, "buffer", stream).readline
    while True:
        if interactive:
            sys.stdout.write(PROMPT)
            sys.stdout.flush()
        chunk = read()
        if isinstance(chunk, str):
            try:  # surrogateescape: bytes that a text decoder could not read, as they were
                chunk = chunk.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                chunk = chunk.encode("utf-8", "surrogatepass")  # a lone surrogate: invalid, as on the wire
        if not chunk:
            return
        # readline stops after an LF, so a CRLF never straddles two chunks
        chunk = chunk.removesuffix(b"\n")
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
        yield from chunk.split(b"\r")


def chat(board: str | None = None, out: str | None = None, port: str | None = None, baud: int = 115200,
         run: Path | None = None, stdin: IO | None = None, stdout: TextIO | None = None,
         diagnostics: bool = False, stderr: TextIO | None = None) -> None:
    """Each line of `stdin` as the console would take it (edit_line), one request at a time, all of
    them one conversation (a device is sent !new first; the reference starts a fresh one, and takes
    !new and !reset as the console does); a line that edits to nothing is skipped (the console would
    not answer it), so each answer stays under its request. The device gets the line as typed; the
    reference gets the edited line, or the console's refusal (too long, not UTF-8). With
    `diagnostics`, what the firmware or its emulator wrote to stderr during a reply follows it on
    `stderr`, each line marked `[BOARD stderr]` (a board behind a serial port has none). stdin, stdout
    and stderr default to sys's at the call."""
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    interactive = stdin.isatty()
    agent = ReferenceAgent(Path(run)) if board == "reference" else None
    console = open_device(board, out, port, baud) if agent is None else None
    try:
        if console is not None:
            new_conversation(console)
        if interactive:
            stdout.write("One conversation: each request sees the earlier ones (the oldest are dropped when "
                         "the context is full); !new starts a new one.\n")
        for raw in input_lines(stdin, interactive):
            line = edit_line(raw)
            if line.blank:
                continue
            if not interactive:
                stdout.write(f"{PROMPT}{line.text.decode('utf-8', 'replace')}\n")
            if agent is not None:
                said = None if line.error else agent.command(line.text.decode("utf-8"))
                if line.error or said is not None:
                    stdout.write(f"{line.error or said}\n")
                else:
                    agent.ask(line.text.decode("utf-8"), stdout)
                stdout.flush()  # as the device's replies are: a program on the other end of a pipe sees each
                continue
            # stream the reply as it arrives; the device's own prompt at the end is not repeated
            console.write_line(raw)
            held = ""
            for chunk in console.stream_until("\n" + PROMPT, timeout=getattr(console, "reply_timeout_s", REPLY_TIMEOUT_S)):
                held += chunk
                stdout.write(held[:-len(PROMPT)])
                held = held[-len(PROMPT):]
                stdout.flush()
            if diagnostics:
                for said in console.new_stderr().splitlines():
                    stderr.write(f"[{board or console.port} stderr] {said}\n")
                stderr.flush()
    finally:
        if console is not None:
            console.close()
