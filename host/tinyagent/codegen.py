"""Rendering C: every number, array and string literal in generated code comes from here.

Templates (templates/model/*.j2) hold structure only; they receive these already-rendered pieces.
Nothing here knows about the model: see generate.py for what is emitted.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np

from .errors import bad_input

VALUES_PER_LINE = 16
INDENT = "    "

C_KEYWORDS = frozenset("""auto break case char const continue default do double else enum extern float for goto
if inline int long register restrict return short signed sizeof static struct switch typedef union unsigned void
volatile while _Bool _Complex _Imaginary""".split())
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# numpy dtype -> (C type, min, max)
C_TYPES = {
    np.dtype(np.int8): ("int8_t", -(2**7), 2**7 - 1),
    np.dtype(np.uint8): ("uint8_t", 0, 2**8 - 1),
    np.dtype(np.int16): ("int16_t", -(2**15), 2**15 - 1),
    np.dtype(np.uint16): ("uint16_t", 0, 2**16 - 1),
    np.dtype(np.int32): ("int32_t", -(2**31), 2**31 - 1),
    np.dtype(np.uint32): ("uint32_t", 0, 2**32 - 1),
}


def check_identifier(name: str, what: str = "name") -> str:
    """`name` if it is a valid C identifier (and not a keyword), else a one-line error naming it."""
    if not isinstance(name, str) or not _IDENT.match(name) or name in C_KEYWORDS:
        raise bad_input(f"{what} {name!r} is not a valid C identifier "
                        "(allowed: a letter or '_', then letters, digits, '_'; not a C keyword)")
    return name


def c_macro_name(*parts: str) -> str:
    """TA-style upper-case macro name from parts ('led', 'on' -> 'LED_ON')."""
    return "_".join(p.upper() for p in parts)


def c_int(value: int, ctype: str = "int32_t") -> str:
    """One integer literal that has `ctype`'s value without warnings on any target."""
    v = int(value)
    if ctype == "int32_t" and v == -(2**31):
        return "(-2147483647 - 1)"  # 2147483648 alone does not fit int32, so negating it would widen
    if ctype in ("uint32_t", "size_t"):
        return f"{v}u"
    return str(v)


def c_values(values: Iterable[int], ctype: str, hex_bytes: bool = False,
             per_line: int = VALUES_PER_LINE, indent: str = INDENT) -> str:
    """Comma-separated literals, `per_line` to a line, each line indented (no braces)."""
    vals = [int(v) for v in values]
    fmt = (lambda v: f"0x{v:02x}") if hex_bytes else (lambda v: c_int(v, ctype))
    lines = []
    for i in range(0, len(vals), per_line):
        lines.append(indent + ", ".join(fmt(v) for v in vals[i:i + per_line]) + ",")
    return "\n".join(lines)


def c_array(name: str, values: np.ndarray | Sequence[int], dtype=None, shape: tuple[int, ...] | None = None,
            comment: str = "", static: bool = True, attr: str = "") -> str:
    """A const C array definition with a shape comment:

        /* (512, 96) the token embedding */
        static const int8_t tok_emb[49152] = {
            ...
        };
    """
    check_identifier(name, "array name")
    arr = np.asarray(values) if dtype is None else np.asarray(values, dtype=dtype)
    if arr.dtype not in C_TYPES:
        raise ValueError(f"array {name}: dtype {arr.dtype} has no C type (allowed: "
                         f"{', '.join(str(d) for d in C_TYPES)})")
    ctype, lo, hi = C_TYPES[arr.dtype]
    flat = arr.reshape(-1)
    if flat.size == 0:
        raise ValueError(f"array {name} is empty (C has no zero-length arrays)")
    if flat.size and (int(flat.min()) < lo or int(flat.max()) > hi):
        raise ValueError(f"array {name}: values outside {ctype}")
    shape = tuple(arr.shape) if shape is None else shape
    dims = "(" + ", ".join(str(s) for s in shape) + (",)" if len(shape) == 1 else ")")
    head = f"/* {dims}{' ' + comment if comment else ''} */\n"
    decl = f"{'static ' if static else ''}const {ctype} {name}[{flat.size}]{' ' + attr if attr else ''} = {{\n"
    body = c_values(flat.tolist(), ctype, hex_bytes=arr.dtype == np.uint8)
    return head + decl + body + "\n};\n"


def c_string(text: str | bytes) -> str:
    """A C string literal for any bytes: printable ASCII as is, everything else as 3-digit octal."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    out = []
    for b in data:
        ch = chr(b)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif 0x20 <= b < 0x7F and ch != "?":  # '?' escaped: no trigraphs
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def c_comment_text(text: str) -> str:
    """Text safe inside a /* */ comment (one line, no comment terminator)."""
    return " ".join(text.replace("*/", "* /").split())


def section(title: str, width: int = 100) -> str:
    """A `// ---- title ----...` banner line."""
    head = f"// ---- {title} "
    return head + "-" * max(4, width - len(head))


def generated_header(tool_version: str, model_hash: str, what: str) -> str:
    """The first line of every generated file."""
    return (f"/* Generated by tinyagent {c_comment_text(tool_version)} from model sha256:{model_hash}: "
            f"{c_comment_text(what)}. Do not edit; regenerate instead. */")
