"""Export the quantised student as an int8 .tflite model, following TensorFlow Lite Micro's conventions.

What TFLM runs, one token per invoke (batch 1), in TFLite's own op set:

| ours (docs/integer-contract.md) | TFLite |
| --- | --- |
| q, k, v, FFN-in matvecs + requant_i8 | FULLY_CONNECTED int8 -> int8, per-channel symmetric int8 weights |
| wo, w2 matvecs into the int16 residual | QUANTIZE int8 -> int16 (exact), FULLY_CONNECTED 16x8 |
| residual_add | ADD int16 (equal scales on all three tensors: exact) |
| GELU table | CAST int8 -> int32, ADD 128, GATHER from our 256-entry int8 table (exact) |
| tied head | QUANTIZE, FULLY_CONNECTED int16 -> int16 over the embedding table (our logits are int32) |

What is left out (the graph's inputs carry their outputs in, and its outputs carry what they need out):
the token + position embedding, every RMSNorm, and attention over the KV cache. `LEFT_OUT` says why.
No biases (the model has none); activations are symmetric (zero point 0). The flatbuffer is built with
the schema bindings the `tflite-micro` package ships; TensorFlow is not needed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EXIT_TOOL_MISSING, TinyAgentError, bad_input
from ..fileio import write_bytes
from ..integer.intmodel import CONFIG_FILE, IntModel, load_int_model

# Each op of ours that the export leaves to the caller, and why TFLM cannot run it faithfully.
LEFT_OUT = {
    "embedding": "per-row scales requantised into int16; TFLite's GATHER copies rows under one scale "
                 "and TFLM's GATHER has no int16 tables",
    "rmsnorm": "int16 in, integer sqrt and division; TFLite has no RMSNorm, and L2_NORMALIZATION is "
               "int8 in with a fixed 1/128 output scale",
    "attention": "int32 q.k scores into our Q15 exp-table softmax over a KV cache; TFLM's SOFTMAX uses "
                 "its own exp tables and a stateful cache needs variable ops",
}
LEFT_OUT_SHORT = "embedding, RMSNorm, attention (softmax over the KV cache)"

LOGITS = "logits"  # the one output whose type differs from ours: int16 here, int32 in the contract
TFLITE_ALIGN = 16  # constant buffers start on 16 bytes, as TFLite's converter writes them


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: type  # np.int8, np.int16 or np.int32
    size: int  # TFLite shape is [1, size]: one token
    scale: float


@dataclass(frozen=True)
class OpSpec:
    kind: str  # "fc", "to_int16", "add", "gelu"
    ins: tuple[str, ...]
    out: str
    weight: str = ""  # fc: IntModel tensor (out, in) int8; gelu: the int8 table
    mult: str = ""  # fc: IntModel prefix of the per-row `.m` / `.sh` multipliers


@dataclass
class Graph:
    """The exported part, as both the flatbuffer builder and tflm's evaluator walk it."""

    tensors: dict[str, TensorSpec]
    ops: list[OpSpec]
    inputs: list[str]
    outputs: list[str]


def resolve_int_model(folder: str | Path) -> IntModel:
    """An integer-model folder, or a run folder holding one in `int8/`."""
    folder = Path(folder)
    if (folder / CONFIG_FILE).is_file():
        return load_int_model(folder)
    if (folder / "int8" / CONFIG_FILE).is_file():
        return load_int_model(folder / "int8")
    raise bad_input(f"{folder}: no integer model here or in {folder / 'int8'} (expected {CONFIG_FILE}; "
                    f"give a run folder or its int8/ folder, or run `tinyagent quantize` first)")


def plan_graph(m: IntModel) -> Graph:
    c, s = m.cfg, m.scales
    d, a, f, kv = c.dim, c.n_heads * c.head_dim, c.ffn_dim, c.kv_dim  # kv < a: grouped-query attention
    T: dict[str, TensorSpec] = {}
    ops: list[OpSpec] = []
    inputs: list[str] = []
    outputs: list[str] = []

    def t(name: str, dtype, n: int, scale: float) -> str:
        T[name] = TensorSpec(name, dtype, n, float(scale))
        return name

    def fc(x: str, out: str, dtype, n: int, scale: float, weight: str, mult: str) -> str:
        ops.append(OpSpec("fc", (x,), t(out, dtype, n, scale), weight, mult))
        return out

    def to16(x: str) -> str:
        ops.append(OpSpec("to_int16", (x,), t(x + "16", np.int16, T[x].size, T[x].scale)))
        return x + "16"

    x = t("x0", np.int16, d, s["resid"])
    inputs.append(x)
    for li in range(c.n_layers):
        p = f"layers.{li}."
        xn = t(p + "attn_norm.out", np.int8, d, s["norm"][2 * li])
        inputs.append(xn)
        for w, key, n in (("wq", "q", a), ("wk", "k", kv), ("wv", "v", kv)):
            outputs.append(fc(xn, p + key, np.int8, n, s[key][li], p + w, p + w))
        o = t(p + "attn.out", np.int8, a, s["attn"][li])
        inputs.append(o)
        y = fc(to16(o), p + "wo.out", np.int16, d, s["resid"], p + "wo", p + "wo")
        ops.append(OpSpec("add", (x, y), t(p + "x_mid", np.int16, d, s["resid"])))
        x = p + "x_mid"
        outputs.append(x)
        xn = t(p + "ffn_norm.out", np.int8, d, s["norm"][2 * li + 1])
        inputs.append(xn)
        h = fc(xn, p + "h", np.int8, f, s["ffn_h"][li], p + "w1", p + "w1")
        ops.append(OpSpec("gelu", (h,), t(p + "g", np.int8, f, s["ffn_g"][li]), p + "gelu"))
        y = fc(to16(p + "g"), p + "w2.out", np.int16, d, s["resid"], p + "w2", p + "w2")
        ops.append(OpSpec("add", (x, y), t(p + "x_out", np.int16, d, s["resid"])))
        x = p + "x_out"
        outputs.append(x)
    xn = t("final_norm.out", np.int8, d, s["norm"][2 * c.n_layers])
    inputs.append(xn)
    outputs.append(fc(to16(xn), LOGITS, np.int16, c.vocab_size, s["logits"], "tok_emb", "logits"))
    return Graph(T, ops, inputs, outputs)


def fc_weight_scales(m: IntModel, g: Graph, op: OpSpec) -> np.ndarray:
    """Per-output-channel float32 weight scales that make TFLM's Prepare (input * weight / output
    scale, in double from float32) recompute our multiplier m / 2^sh as closely as float32 allows."""
    real = m.t(op.mult + ".m").astype(np.float64) * np.exp2(-m.t(op.mult + ".sh").astype(np.float64))
    s_in = np.float64(np.float32(g.tensors[op.ins[0]].scale))
    s_out = np.float64(np.float32(g.tensors[op.out].scale))
    return (real * s_out / s_in).astype(np.float32)


def _schema():
    try:
        import flatbuffers
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    except ImportError as e:
        raise TinyAgentError(f"the tflite-micro package is needed for TFLite export ({e.name} missing); "
                             f"pip install tflite-micro", EXIT_TOOL_MISSING) from None
    return flatbuffers, schema


class _Builder:
    """Tensors, constant buffers and operators by name, packed with the TFLite schema's object API."""

    def __init__(self, schema):
        self.S = schema
        self.tensors: list = []
        self.index: dict[str, int] = {}
        self.buffers: list[bytes] = [b""]  # buffer 0 is the empty buffer, by TFLite convention
        self.ops: list = []
        self.codes: list[int] = []

    def tensor(self, name: str, shape, dtype, data: np.ndarray | None = None, scales=None,
               axis: int = 0) -> int:
        S = self.S
        t = S.TensorT()
        t.name, t.shape = name, list(shape)
        t.type = {np.int8: S.TensorType.INT8, np.int16: S.TensorType.INT16,
                  np.int32: S.TensorType.INT32}[dtype]
        t.buffer = 0
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data, dtype=dtype).tobytes())
            t.buffer = len(self.buffers) - 1
        if scales is not None:
            q = S.QuantizationParametersT()
            q.scale = [float(v) for v in np.atleast_1d(np.asarray(scales, dtype=np.float32))]
            q.zeroPoint = [0] * len(q.scale)
            q.quantizedDimension = axis
            t.quantization = q
        self.tensors.append(t)
        self.index[name] = len(self.tensors) - 1
        return self.index[name]

    def op(self, code: int, ins: list[int], outs: list[int], options_type: int = 0, options=None) -> None:
        if code not in self.codes:
            self.codes.append(code)
        o = self.S.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = self.codes.index(code), ins, outs
        o.builtinOptionsType, o.builtinOptions = options_type, options
        self.ops.append(o)

    def finish(self, flatbuffers, inputs: list[int], outputs: list[int], description: str) -> bytes:
        S = self.S
        sg = S.SubGraphT()
        sg.tensors, sg.operators, sg.name = self.tensors, self.ops, "main"
        sg.inputs, sg.outputs = inputs, outputs
        model = S.ModelT()
        model.version, model.description, model.subgraphs = 3, description, [sg]
        model.buffers = [_AlignedBuffer(b, S) for b in self.buffers]
        model.operatorCodes = []
        for code in self.codes:
            oc = S.OperatorCodeT()
            # Codes above 127 live in builtinCode; the deprecated byte then holds the placeholder 127.
            oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
            model.operatorCodes.append(oc)
        b = flatbuffers.Builder(1 << 16)
        b.Finish(model.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


class _AlignedBuffer:
    """A BufferT whose data vector starts on TFLITE_ALIGN bytes (int32 constants need 4 on a device)."""

    def __init__(self, data: bytes, schema):
        self.data, self.S = data, schema

    def Pack(self, b):  # noqa: N802 (the schema's object API calls this name)
        vec = None
        if self.data:
            n = len(self.data)
            b.StartVector(1, n, TFLITE_ALIGN)
            b.head -= n
            b.Bytes[b.head:b.head + n] = self.data
            b.vectorNumElems = n
            vec = b.EndVector()
        self.S.BufferStart(b)
        if vec is not None:
            self.S.BufferAddData(b, vec)
        return self.S.BufferEnd(b)


def build_tflite(m: IntModel) -> tuple[bytes, Graph, dict[str, int]]:
    """The .tflite bytes, the graph they hold, and each graph tensor's index in the flatbuffer."""
    flatbuffers, S = _schema()
    g = plan_graph(m)
    B = _Builder(S)
    BO, OPT = S.BuiltinOperator, S.BuiltinOptions
    for spec in g.tensors.values():
        B.tensor(spec.name, (1, spec.size), spec.dtype, scales=spec.scale)
    c128 = B.tensor("gelu.index_offset", (1,), np.int32, data=np.array([128], dtype=np.int32))
    for op in g.ops:
        ins, out = [B.index[n] for n in op.ins], B.index[op.out]
        if op.kind == "fc":
            w = m.t(op.weight)
            wi = B.tensor(op.weight, w.shape, np.int8, data=w, scales=fc_weight_scales(m, g, op), axis=0)
            opts = S.FullyConnectedOptionsT()
            opts.fusedActivationFunction, opts.keepNumDims = S.ActivationFunctionType.NONE, False
            B.op(BO.FULLY_CONNECTED, [ins[0], wi, -1], [out], OPT.FullyConnectedOptions, opts)
        elif op.kind == "to_int16":
            B.op(BO.QUANTIZE, ins, [out])
        elif op.kind == "add":
            opts = S.AddOptionsT()
            opts.fusedActivationFunction, opts.potScaleInt16 = S.ActivationFunctionType.NONE, False
            B.op(BO.ADD, ins, [out], OPT.AddOptions, opts)
        elif op.kind == "gelu":  # TFLM's interpreter registers no GELU: our table, gathered at h + 128
            f = g.tensors[op.out].size
            hi = B.tensor(op.out + ".h_i32", (1, f), np.int32)
            idx = B.tensor(op.out + ".index", (1, f), np.int32)
            table = B.tensor(op.weight, (256,), np.int8, data=m.t(op.weight), scales=g.tensors[op.out].scale)
            cast = S.CastOptionsT()
            cast.inDataType, cast.outDataType = S.TensorType.INT8, S.TensorType.INT32
            B.op(BO.CAST, ins, [hi], OPT.CastOptions, cast)
            B.op(BO.ADD, [hi, c128], [idx], OPT.AddOptions, S.AddOptionsT())
            B.op(BO.GATHER, [table, idx], [out], OPT.GatherOptions, S.GatherOptionsT())
        else:
            raise AssertionError(op.kind)
    desc = (f"tinyagent int8 export of model sha256 {m.hash[:16] or 'unsaved'}; one token per invoke; "
            f"left out (graph inputs/outputs): {LEFT_OUT_SHORT}")
    data = B.finish(flatbuffers, [B.index[n] for n in g.inputs], [B.index[n] for n in g.outputs], desc)
    return data, g, dict(B.index)


def op_counts(g: Graph) -> dict[str, int]:
    """TFLite builtin ops in the exported graph, by name."""
    n: dict[str, int] = {}
    per_kind = {"fc": ["FULLY_CONNECTED"], "to_int16": ["QUANTIZE"], "add": ["ADD"],
                "gelu": ["CAST", "ADD", "GATHER"]}
    for op in g.ops:
        for name in per_kind[op.kind]:
            n[name] = n.get(name, 0) + 1
    return n


def export_tflite(run_or_intmodel_folder: str | Path, out_path: str | Path) -> str:
    """Write the exported part as .tflite; returns a one-line summary naming what was left out."""
    m = resolve_int_model(run_or_intmodel_folder)
    data, g, _ = build_tflite(m)
    write_bytes(out_path, data)
    ops = ", ".join(f"{k} x{v}" for k, v in op_counts(g).items())
    n_fc = sum(op.kind == "fc" for op in g.ops)
    return (f"wrote {out_path} ({len(data)} bytes): int8 TFLite, one token per invoke, {ops}: all {n_fc} "
            f"matvecs (per-channel int8 weights; 16x8 into the int16 residual and the int16 logits), "
            f"GELU table, residual adds; left out (graph inputs): {LEFT_OUT_SHORT}")
