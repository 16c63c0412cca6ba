"""The integer model, tokenizer and agent spec -> the device's C sources (templates/model/*.j2).

`generate_sources` writes the generated files and copies the portable runtime (firmware/ta_*.c|h)
into one folder, and returns the C files to compile with a board's toolchain (plus the board's HAL).
Every number is rendered by literals.py; the templates hold structure only.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import jinja2
import numpy as np

from ..agent import conversation
from ..agent.grammar import Grammar, grammar_from_spec, normalized_max_len
from ..agent.tokenizer import BPE
from ..errors import bad_input
from ..fileio import sha256_bytes, write_text
from ..integer.intmodel import IntModel, tensor_shapes
from . import arena, literals

REPO_ROOT = Path(__file__).resolve().parents[3]
FIRMWARE_DIR = REPO_ROOT / "firmware"
TEMPLATE_DIR = REPO_ROOT / "templates" / "model"

# name -> template; headers are written but not compiled
GENERATED = {"ta_model.h": "ta_model.h.j2", "ta_model.c": "ta_model.c.j2", "ta_vocab.c": "ta_vocab.c.j2",
             "ta_tools.h": "ta_tools.h.j2", "ta_tools.c": "ta_tools.c.j2"}
RUNTIME_HEADERS = ("ta_status.h", "ta_intmath.h", "ta_kernels.h", "ta_kernels_rowmajor.h", "ta_engine.h",
                   "ta_tokenizer.h", "ta_text.h", "ta_output.h", "ta_grammar.h", "ta_agent.h", "ta_console.h",
                   "ta_hal.h", "ta_devices.h")
RUNTIME_SOURCES = ("ta_status.c", "ta_engine.c", "ta_tokenizer.c", "ta_text.c", "ta_output.c", "ta_grammar.c",
                   "ta_agent.c", "ta_console.c", "ta_main.c")
KERNELS = {"portable": "ta_kernels.c", "cm4": "ta_kernels_cm4.c", "m0": "ta_kernels_m0.c"}  # one is compiled
ROW_GROUP = {"portable": 1, "cm4": 1, "m0": 3}  # the weight layout each kernel file reads (weight_layout)
DEFAULT_TOOLS = "ta_tools_default.c"
# The engine (firmware/ta_engine.h, TA_ENGINE_VERSION) whose model struct and arithmetic the generated
# sources are written for: ta_model.h refuses to compile against any other (#error).
ENGINE_VERSION = 3
_HANDLER_DEF = re.compile(r"\bta_tool_([A-Za-z_][A-Za-z0-9_]*)\s*\([^;{]*\)\s*\{")


def tool_version() -> str:
    try:
        from importlib.metadata import version
        return version("tinyagent")
    except Exception:  # a source tree without package metadata
        return "unknown"


def model_hash(m: IntModel, bpe: BPE, spec, min_margin: int = 0) -> str:
    """The sha256 that names a model on the host and on the device (TA_MODEL_HASH, `!info`, the build
    manifest): of everything that changes what it does. The weights file, the config and scales of
    model.int.json, the tokenizer's tables, the call grammar (`spec` is an AgentSpec or a Grammar)
    and the confidence gate's threshold (int8/gate.json)."""
    grammar = spec if isinstance(spec, Grammar) else grammar_from_spec(spec)
    named = {"weights_sha256": m.hash or sha256_bytes(m.to_bytes()), "config": m.cfg.to_dict(),
             "scales": m.scales,
             "tokenizer": {"byte_to_id": bpe.byte_to_id, "merges": bpe.merges,
                           "tokens": [t.hex() for t in bpe.token_bytes], "split_bytes": bpe.split_bytes.hex()},
             "grammar": [dataclasses.asdict(f) for f in grammar.forms]}
    if min_margin:
        named["min_margin"] = min_margin
    blob = json.dumps(named, sort_keys=True, separators=(",", ":"), default=float)
    return sha256_bytes(blob.encode("utf-8"))


def _runtime_limit(name: str) -> int:
    """A #define from ta_grammar.h, so the generator's checks and the C buffers share one number."""
    text = (FIRMWARE_DIR / "ta_grammar.h").read_text()
    return int(re.search(rf"#define {name} (\d+)", text).group(1))


def generate_sources(int_model: IntModel, bpe: BPE, spec, board_name: str, out_dir: str | Path,
                     user_tools_c: str | Path | None = None, kernels: str = "portable",
                     min_margin: int = 0, prefill_block: int = arena.DEFAULT_PREFILL_BLOCK) -> list[Path]:
    """Write the generated model files and the runtime into out_dir; return the C sources to compile.

    `spec` is an AgentSpec (or an already built grammar.Grammar). `user_tools_c` is the user's C file
    with one `ta_tool_<name>` handler per tool (default: firmware/ta_tools_default.c, the default
    agent's); it is checked here, so a missing handler is one error naming the tool. It is returned
    as is (not copied), so that its own includes keep working; out_dir must be on the include path.
    `prefill_block` is the tokens ta_engine_feed runs through the weights at once (TA_PREFILL_BLOCK;
    the arena's activations are sized for it; 1: one at a time, the smallest arena; at most the
    context, which a larger one is cut to).
    """
    if kernels not in KERNELS:
        raise bad_input(f"kernels {kernels!r} are not known (allowed: {', '.join(KERNELS)})")
    if type(prefill_block) is not int or prefill_block < 1:
        raise bad_input(f"prefill block {prefill_block!r} is not allowed (a whole number of tokens, at least 1)")
    prefill_block = min(prefill_block, int_model.cfg.ctx)  # no feed is longer than the context
    grammar = spec if isinstance(spec, Grammar) else grammar_from_spec(spec)
    cfg = int_model.cfg
    if bpe.vocab_size != cfg.vocab_size:
        raise bad_input(f"tokenizer has {bpe.vocab_size} tokens but the model's vocabulary is "
                        f"{cfg.vocab_size} (they must come from the same run)")
    tools_max = _runtime_limit("TA_MAX_TOOLS")
    if len(grammar.forms) > tools_max:  # before the handlers: no use asking for 33 of them
        raise bad_input(f"the agent has {len(grammar.forms)} tools (allowed: at most {tools_max})")
    tools_c = Path(user_tools_c).resolve() if user_tools_c else FIRMWARE_DIR / DEFAULT_TOOLS
    _check_handlers(grammar, tools_c, default=not user_tools_c, agent=getattr(spec, "name", "NAME"))

    out_dir = Path(out_dir)
    digest = model_hash(int_model, bpe, grammar, min_margin)
    version = tool_version()
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.globals["section"] = literals.section
    contexts = {
        "ta_model.h": _model_header(int_model, digest, prefill_block),
        "ta_model.c": _model_source(int_model, board_name, version, prefill_block, ROW_GROUP[kernels]),
        "ta_vocab.c": _vocab_source(bpe),
        "ta_tools.h": _tools_header(grammar),
        "ta_tools.c": _tools_source(grammar, min_margin),
    }
    what = {"ta_model.h": "model dimensions and arena layout", "ta_model.c": "the integer model",
            "ta_vocab.c": "tokenizer tables", "ta_tools.h": "agent tools", "ta_tools.c": "agent call grammar"}
    for name, template in GENERATED.items():
        ctx = contexts[name] | {"header": literals.generated_header(version, digest, what[name])}
        write_text(out_dir / name, env.get_template(template).render(**ctx))

    kernel_src = KERNELS[kernels]
    copied = [*RUNTIME_HEADERS, *RUNTIME_SOURCES, kernel_src] + ([] if user_tools_c else [DEFAULT_TOOLS])
    for name in copied:
        write_text(out_dir / name, (FIRMWARE_DIR / name).read_text())
    for stale in [*KERNELS.values(), DEFAULT_TOOLS]:  # left by a generation with other choices
        if stale not in copied and (out_dir / stale).exists():
            (out_dir / stale).unlink()

    sources = [out_dir / n for n in GENERATED if n.endswith(".c")]
    sources += [out_dir / n for n in (*RUNTIME_SOURCES, kernel_src)]
    sources.append(tools_c if user_tools_c else out_dir / DEFAULT_TOOLS)
    return sources


def _check_handlers(grammar: Grammar, tools_c: Path, default: bool = False, agent: str = "NAME") -> None:
    """Every tool has its `ta_tool_<name>` definition in tools_c; one error names all that do not.
    `default`: tools_c is firmware/ta_tools_default.c because no --tools was given."""
    if not tools_c.is_file():
        raise bad_input(f"tools file {tools_c} does not exist (give the C file with your tool handlers)")
    defined = set(_HANDLER_DEF.findall(tools_c.read_text(errors="replace")))
    for form in grammar.forms:
        literals.check_identifier(form.name, "tool name")
    missing = [form.name for form in grammar.forms if form.name not in defined]
    if not missing:
        return
    what = f"tool{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)}"
    handler = (f"`ta_status ta_tool_{missing[0]}(const ta_call *call, char *result, size_t cap)`"
               + (" and one for each of the others" if len(missing) > 1 else ""))
    if default:
        raise bad_input(f"tools file {tools_c.relative_to(REPO_ROOT)} (the default agent's) has no handler for "
                        f"{what} (pass your agent's tools file with --tools FILE: `tinyagent new {agent}` wrote "
                        f"one beside its spec, `tinyagent new {agent} --tools-only` writes one from the spec; "
                        f"a handler is {handler})")
    raise bad_input(f"tools file {tools_c} has no handler for {what} (define {handler}, docs/engine.md 'Adding "
                    f"a tool'; `tinyagent new {agent} --tools-only` writes a file with every handler; pass your "
                    f"file with --tools FILE)")


# ---- ta_model.h / ta_model.c ---------------------------------------------------------------------

def _c_name(tensor: str) -> str:
    """IntModel tensor name -> C array name: layers.0.wq.m -> l0_wq_m."""
    name = re.sub(r"^layers\.(\d+)\.", r"l\1_", tensor).replace(".", "_")
    return literals.check_identifier(name, "tensor name")


def _model_header(m: IntModel, digest: str, block: int) -> dict:
    c = m.cfg
    config = [("TA_MODEL_ENGINE_VERSION", ENGINE_VERSION, "the engine these sources were generated for"),
              ("TA_MODEL_HASH", literals.c_string(digest), "sha256 naming the model: weights, config and "
                                                               "scales, tokenizer, call grammar"),
              ("TA_MODEL_VOCAB", c.vocab_size, "tokens"),
              ("TA_MODEL_CTX", c.ctx, "context length: KV-cache rows"),
              ("TA_MODEL_DIM", c.dim, "d: residual width"),
              ("TA_MODEL_N_LAYERS", c.n_layers, ""),
              ("TA_MODEL_N_HEADS", c.n_heads, ""),
              ("TA_MODEL_HEAD_DIM", c.head_dim, "per head; a = heads * head_dim"),
              ("TA_MODEL_FFN_DIM", c.ffn_dim, "f"),
              ("TA_MODEL_N_KV_HEADS", c.kv_heads, "key/value heads (divides heads); kv = kv_heads * head_dim"),
              ("TA_MODEL_KV_BYTES_PER_TOKEN", c.kv_bytes_per_token(), "int8 K and V per token of context, all layers"),
              ("TA_MODEL_PARAMS", c.n_params(), "int8 weights (the scales are extra)"),
              ("TA_MODEL_MACS_PER_TOKEN", c.macs_per_token(), "at position ctx / 2"),
              ("TA_PREFILL_BLOCK", block, f"prompt tokens per pass of ta_engine_feed (activations: "
                                          f"{arena.prefill_block_bytes(c, block)} bytes more than 1)")]
    layout = arena.arena_layout(c, block=block)
    shapes = {n: (t, s) for n, t, s in arena.arena_buffers(c, block)}
    rows = []
    for b in layout:
        ctype, shape = shapes[b.name]
        rows.append((f"TA_ARENA_{b.name.upper()}_OFFSET", b.offset,
                     f"{ctype}{list(shape)}, {b.bytes} bytes"))
    rows.append(("TA_ARENA_BYTES", arena.arena_bytes(layout), "the whole arena"))
    return {"config": [(n, str(v), literals.c_comment_text(doc)) for n, v, doc in config],
            "layout": [(n, str(v), literals.c_comment_text(doc)) for n, v, doc in rows]}


_WEIGHT_DOCS = {
    "tok_emb": "token embedding, int8 per row; also the tied output head",
    "tok_emb.m": "multiplier to the residual scale, per token", "tok_emb.sh": "shift, per token",
    "pos_emb": "position embedding", "pos_emb.m": "multiplier to the residual scale, per position",
    "pos_emb.sh": "shift, per position", "logits.m": "head accumulator -> logit multiplier, per token",
    "logits.sh": "shift, per token",
}
_TABLES = {"exp_table": "softmax: round(32768 * exp(-i / steps))", "gelu": "GELU, int8 -> int8, indexed by h + 128"}


def _model_fields(T: dict, names: list[str], prefix: str, linears: bool) -> list[tuple[str, str]]:
    """(field, initializer) of a ta_layer (`linears`: a weight with its .m and .sh is one ta_linear) or
    of ta_model (each its own field), in the tensor table's order; a (1,) tensor is a constant."""
    out = []
    for name in names:
        base, _, suffix = name.rpartition(".")
        if linears and suffix in ("m", "sh") and base in T and T[base].ndim == 2:
            continue  # inside its ta_linear
        field = name.removeprefix(prefix)
        if T[name].shape == (1,):
            out.append((field.replace(".", "_"), literals.c_int(int(T[name].reshape(-1)[0]))))
        elif linears and T[name].ndim == 2:
            arr = _c_name(name)
            out.append((field, f"{{ {arr}, {arr}_m, {arr}_sh }}"))
        else:
            out.append((field.replace(".", "_"), _c_name(name)))
    return out


def weight_layout(w: np.ndarray, group: int) -> np.ndarray:
    """A weight matrix (rows, cols) in the order a kernel file reads it (ta_kernels.h, ta_matvec_w):
    row-major for group 1 or a column count that is not a multiple of 4; else in groups of `group` rows
    (the last may have fewer), each holding, for every 4 columns, those 4 weights of each of its rows
    in turn. Same shape, same values; only the order in flash changes."""
    rows, cols = w.shape
    if group == 1 or cols % 4:
        return w
    parts = [w[g:g + group].reshape(-1, cols // 4, 4).transpose(1, 0, 2).reshape(-1) for g in range(0, rows, group)]
    return np.concatenate(parts).reshape(rows, cols)


def _matvec_weights(T: dict) -> set[str]:
    """The tensors the engine reads through ta_matvec_w / ta_matmat_w: every layer linear's weights
    (those with a .m and .sh per row) and the tied head (tok_emb); pos_emb is read by rows only."""
    return {n for n, a in T.items() if a.ndim == 2 and a.dtype == np.int8 and f"{n}.m" in T
            and (n.startswith("layers.") or n == "tok_emb")}


def _model_source(m: IntModel, board_name: str, version: str, block: int, row_group: int = 1) -> dict:
    """ta_model.c's parts, every one read off intmodel.tensor_shapes (the table the exporter and the
    checker read, tied to ta_engine.h's structs by a test): arrays, per-layer fields, model fields.
    The matrices the kernels read are in the kernel file's layout (`weight_layout`)."""
    c = m.cfg
    T = m.tensors
    # the table with the C macros for dims: its names (in order) drive everything below, and each weight
    # array's length is checked by the compiler against ta_model.h's dims, so that sources edited by
    # hand, or a header from another model, stop the build instead of reading past an array
    sym = tensor_shapes(c.n_layers, V="TA_MODEL_VOCAB", C="TA_MODEL_CTX", d="TA_MODEL_DIM",
                        a="TA_MODEL_N_HEADS * TA_MODEL_HEAD_DIM", kv="TA_MODEL_N_KV_HEADS * TA_MODEL_HEAD_DIM",
                        f="TA_MODEL_FFN_DIM")
    table = list(sym)
    weights, tables = [], []
    mats = _matvec_weights(T)
    for name in table:
        if T[name].shape == (1,):
            continue  # a constant in a struct field
        short = name.rpartition(".")[2] if name.startswith("layers.") else name
        if short in _TABLES:
            tables.append(literals.c_array(_c_name(name), T[name], comment=_TABLES[short]))
            continue
        doc = _WEIGHT_DOCS.get(name, "")
        if not doc:
            lin = name.split(".")[2]
            doc = {"m": "multiplier per output row", "sh": "shift per output row"}.get(name.split(".")[-1],
                                                                                       f"{lin}: (out, in) int8")
        values = T[name]
        if name in mats and weight_layout(values, row_group) is not values:
            values, doc = weight_layout(values, row_group), f"{doc}, in groups of {row_group} rows (weight_layout)"
        weights.append(literals.c_array(_c_name(name), values, comment=doc, attr="TA_WEIGHTS_ATTR"))
    size_checks = [(_c_name(name), " * ".join(f"({x})" for x in sym[name][1]))
                   for name in table if name not in _TABLES and any(isinstance(x, str) for x in sym[name][1])]
    layers = [_model_fields(T, [n for n in table if n.startswith(f"layers.{li}.")], f"layers.{li}.", True)
              for li in range(c.n_layers)]
    model = _model_fields(T, [n for n in table if not n.startswith("layers.")], "", False)
    state = [(name, "ta_kx" if name == "xk" else ctype, f"TA_ARENA_{name.upper()}_OFFSET")
             for name, ctype, _ in arena.arena_buffers(c, block)]
    return {"board": literals.c_string(board_name), "tool_version": literals.c_string(version),
            "weights": weights, "tables": tables, "layers": layers, "model": model, "state": state,
            "size_checks": size_checks}


# ---- ta_vocab.c ----------------------------------------------------------------------------------

def _vocab_source(bpe: BPE) -> dict:
    if bpe.vocab_size > 65535:
        raise bad_input(f"tokenizer has {bpe.vocab_size} tokens (allowed: at most 65535, ids are uint16)")
    merges = sorted(((a << 16 | b), rank, mid) for rank, (a, b, mid) in enumerate(bpe.merges))
    keys = [k for k, _, _ in merges]
    if len(set(keys)) != len(keys):
        raise bad_input("tokenizer has a pair with two merges (not a BPE this tinyagent understands)")
    blob = b"".join(bpe.token_bytes)
    offsets = np.cumsum([0] + [len(t) for t in bpe.token_bytes]).astype(np.uint32)
    split = np.zeros(32, dtype=np.uint8)
    for b in bpe.split_bytes:
        split[b >> 3] |= 1 << (b & 7)
    tables = [literals.c_array("byte_to_id", np.array(bpe.byte_to_id, dtype=np.uint16),
                              comment="byte -> its single-byte token"),
              literals.c_array("split", split, comment="bit b: byte b is a piece of its own ("
                              + " ".join(repr(chr(b))[1:-1] for b in bpe.split_bytes) + ")")]
    if merges:
        tables += [
            literals.c_array("merge_keys", np.array(keys, dtype=np.uint32),
                            comment="left << 16 | right, ascending"),
            literals.c_array("merge_rank", np.array([r for _, r, _ in merges], dtype=np.uint16),
                            comment="merge order: lower first"),
            literals.c_array("merge_id", np.array([i for _, _, i in merges], dtype=np.uint16),
                            comment="the merged token"),
        ]
    tables += [literals.c_array("token_bytes", np.frombuffer(blob, dtype=np.uint8),
                               comment="every token's bytes, concatenated"),
               literals.c_array("token_offsets", offsets, comment="token t: token_bytes[off[t] .. off[t+1])")]
    return {"tables": tables, "vocab": bpe.vocab_size, "n_merges": len(merges)}


# ---- ta_tools.h / ta_tools.c ---------------------------------------------------------------------

def _call_doc(form) -> str:
    parts = [form.name]
    for f in form.fields:
        parts.append(f.words[0] if f.kind == "lit" else "{" + "|".join(f.words) + "}" if f.kind == "enum"
                     else f"<{f.lo}..{f.hi} s as 1h30m>" if f.kind == "dur" else f"<{f.lo}..{f.hi}>")
    return literals.c_comment_text(" ".join(parts))


def _check_form(form, fields_max: int) -> None:
    where = f"tool {form.name!r}"
    if len(form.fields) > fields_max:
        raise bad_input(f"{where} has {len(form.fields)} fields after its name (allowed: at most {fields_max})")
    for f in form.fields:
        if f.kind in ("int", "dur") and not (0 <= f.lo <= f.hi <= 2**31 - 1):
            raise bad_input(f"{where}: integer range {f.lo}..{f.hi} is not allowed (0 <= min <= max < 2^31)")
        for w in f.words:
            if not w or any(ch in w for ch in " []\n"):
                raise bad_input(f"{where}: word {w!r} is not allowed (non-empty, no space, '[', ']' or newline)")


def _tools_header(grammar: Grammar) -> dict:
    tools, enum_words = [], []
    for form in grammar.forms:
        tools.append({"name": form.name, "macro": literals.c_macro_name(form.name), "doc": _call_doc(form)})
        seen: dict[str, int] = {}
        for f in form.fields:
            if f.kind != "enum":
                continue
            for i, w in enumerate(f.words):
                if re.fullmatch(r"[A-Za-z0-9_]+", w):
                    macro = "TA_" + literals.c_macro_name(form.name, w)
                    seen[macro] = i if macro not in seen or seen[macro] == i else -1
        enum_words += [(k, v) for k, v in seen.items() if v >= 0]  # ambiguous words get no macro
    return {"tools": tools, "enum_words": enum_words}


def longest_said(form, call_len: int) -> int:
    """The longest line the safety gate can say for a call of `form` (0 for a tool that only reads), in
    bytes: the clarifying question around a call of `call_len` bytes, or an argument's range."""
    if not form.acts:
        return 0
    lines = [conversation.unsure_text("x" * call_len)]
    lines += [conversation.range_text(f, form.arg_names[k]) for k, f in enumerate(form.fields)
              if f.kind != "lit" and k < len(form.arg_names)]
    return max(len(line.encode()) for line in lines)


def _tools_source(grammar: Grammar, min_margin: int = 0) -> dict:
    call_max, fields_max = _runtime_limit("TA_CALL_MAX"), _runtime_limit("TA_MAX_FIELDS")
    said_max = _runtime_limit("TA_SAID_MAX")
    name_max = _runtime_limit("TA_NAME_MAX")
    if grammar.max_len > call_max:
        raise bad_input(f"the longest call is {grammar.max_len} bytes (allowed: at most {call_max})")
    kinds = {"lit": "TA_FIELD_LIT", "enum": "TA_FIELD_ENUM", "int": "TA_FIELD_INT", "dur": "TA_FIELD_DUR"}
    tools = []
    for form in grammar.forms:
        _check_form(form, fields_max)
        # a duration is handed on as its seconds: that text must fit the call buffer too
        normalized = normalized_max_len(form)
        if normalized > call_max:
            raise bad_input(f"tool {form.name!r}: its call with durations in seconds is {normalized} bytes "
                            f"(allowed: at most {call_max})")
        said = longest_said(form, normalized)
        if said > said_max:
            raise bad_input(f"tool {form.name!r}: the safety gate's longest line for it is {said} bytes "
                            f"(allowed: at most {said_max}; use fewer or shorter enum words)")
        word_arrays, fields = [], []
        for k, f in enumerate(form.fields):
            words = "0"
            if f.kind not in ("int", "dur"):
                words = f"{form.name}_f{k}_words"
                word_arrays.append({"name": words, "literals": [literals.c_string(w) for w in f.words]})
            name = form.arg_names[k] if k < len(form.arg_names) else ""
            fields.append({"kind": kinds[f.kind], "n_words": len(f.words), "words": words,
                           "lo": literals.c_int(f.lo), "hi": literals.c_int(f.hi), "name": literals.c_string(name)})
        long = next((w for w in form.names if len(w) > name_max), None)
        if long is not None:
            raise bad_input(f"tool {form.name!r}: the word {long!r} that names it is {len(long)} letters "
                            f"(allowed: at most {name_max}; shorten that noun or synonym)")
        tools.append({"name": form.name, "macro": literals.c_macro_name(form.name), "doc": _call_doc(form),
                      "name_c": literals.c_string(form.name), "word_arrays": word_arrays, "fields": fields,
                      "acts": int(form.acts), "names": [literals.c_string(w) for w in form.names],
                      "units": int(form.units)})
    return {"tools": tools, "max_call_len": grammar.max_len, "max_calls": conversation.MAX_CALLS,
            "reply_reserve": conversation.REPLY_RESERVE, "min_margin": literals.c_int(min_margin)}
