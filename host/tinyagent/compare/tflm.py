"""Run the .tflite export in TFLM's Python interpreter beside our integer reference, and explain the gap.

Every position of a token sequence is one invoke. The graph's inputs (the outputs of the ops the
export leaves out: embedding, RMSNorm, attention) come from our reference, so each TFLM op sees the
inputs our engine saw (teacher forcing at the left-out ops); the residual stream flows inside TFLM.

Where TFLM and we differ, the numpy twins of TFLM's helpers below say why, op by op. They are checked
against the real interpreter on every op (`emulated_exactly`) before their verdicts are reported.

    python -m tinyagent.compare.tflm models/default    # prints the report as JSON
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import EXIT_CHECK_FAILED, EXIT_TOOL_MISSING, TinyAgentError
from ..integer import intmath as im
from ..integer.intmodel import IntModel
from ..integer.reference import Reference
from .export_tflite import LEFT_OUT, LOGITS, Graph, OpSpec, build_tflite, fc_weight_scales, op_counts, resolve_int_model

ARENA_BYTES = 1 << 22  # offered to the interpreter; the report gives what it used
DEFAULT_TOKENS = 32

# How TFLM requantises, per FULLY_CONNECTED flavour (tensorflow/lite/kernels/internal/common.cc).
TFLM_ROUNDING = {
    "fc int8": "MultiplyByQuantizedMultiplier(int32) rounds twice: SaturatingRoundingDoublingHighMul "
               "rounds x*m/2^31 to an integer (ties up), then RoundingDivideByPOT shifts right rounding "
               "ties away from zero. Ours rounds x*m/2^sh once, ties up. They differ on negative ties "
               "and where the first rounding lands the second on a tie.",
    "fc int16": "MultiplyByQuantizedMultiplier(int64): the Q31 multiplier is cut to 15 bits "
                "((m + 2^15) >> 16), then one round-half-up shift. Ours keeps all 31 bits.",
    "multiplier": "TFLM recomputes every multiplier in Prepare from float32 scales "
                  "(input * weight / output, in double), so its low mantissa bits can differ from ours.",
    "exact": "QUANTIZE int8->int16 (scale 1), ADD int16 (equal scales) and the GELU table gather "
             "compute exactly what we compute.",
}

# ---------------------------------------------------------------------------------------------------
# TFLM's integer helpers, in numpy (int64 throughout, wrapping where TFLM's int32 would)
# ---------------------------------------------------------------------------------------------------


def _wrap32(v: np.ndarray) -> np.ndarray:
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def tflm_quantize_multiplier(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """QuantizeMultiplier: frexp, mantissa * 2^31 rounded half away from zero; below 2^-32 flushes to 0."""
    mant, exp = np.frexp(np.asarray(real, dtype=np.float64))
    q = np.floor(mant * 2.0**31 + 0.5).astype(np.int64)  # real >= 0
    full = q == 1 << 31
    q[full] //= 2
    exp = np.where(full, exp + 1, exp).astype(np.int64)
    tiny = exp < -31
    return np.where(tiny, 0, q), np.where(tiny, 0, exp)


def tflm_mbqm_int32(x: np.ndarray, m: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """MultiplyByQuantizedMultiplier(int32 x): RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(
    x << left, m), right), the double-rounding build (TFLITE_SINGLE_ROUNDING off, as pip ships it).
    The high-mul's nudge (2^30, or 1 - 2^30 below zero, then C's truncating division) rounds ties up;
    RoundingDivideByPOT rounds ties away from zero."""
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    a = _wrap32(np.asarray(x, dtype=np.int64) << left)
    ab = a * m
    s = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(s >= 0, s >> 31, -((-s) >> 31))  # C division truncates toward zero
    high = np.where((a == -(1 << 31)) & (m == -(1 << 31)), (1 << 31) - 1, high)
    mask = (np.int64(1) << right) - 1
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + ((high & mask) > threshold)


def tflm_mbqm_int64(x: np.ndarray, m: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """MultiplyByQuantizedMultiplier(int64 x), used by the 16x8 kernels: a 15-bit multiplier, one shift."""
    reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)
    total = 15 - shift
    return _wrap32((np.asarray(x, dtype=np.int64) * reduced + (np.int64(1) << (total - 1))) >> total)


# ---------------------------------------------------------------------------------------------------
# One graph op, in our arithmetic or TFLM's
# ---------------------------------------------------------------------------------------------------

_RANGE = {np.int8: (im.I8_MIN, im.I8_MAX), np.int16: (im.I16_MIN, im.I16_MAX)}


def eval_op(m: IntModel, g: Graph, op: OpSpec, ins: list[np.ndarray], mode: str = "ours") -> np.ndarray:
    """mode: "ours" (the contract), "tflm" (TFLM's helper and multipliers), or "helper" (TFLM's
    helper applied to our multipliers: separates the rounding rule from the float32 scales)."""
    if op.kind == "to_int16":
        return ins[0].astype(np.int16)
    if op.kind == "add":
        return im.sat(ins[0].astype(np.int32) + ins[1].astype(np.int32), im.I16_MIN, im.I16_MAX, np.int16)
    if op.kind == "gelu":
        return m.t(op.weight)[ins[0].astype(np.int32) + 128]
    x, out = ins[0], g.tensors[op.out]
    acc = m.t(op.weight).astype(np.int64) @ x.astype(np.int64)  # (out,): int32-exact, kept in int64
    mm, sh = m.t(op.mult + ".m").astype(np.int64), m.t(op.mult + ".sh").astype(np.int64)
    lo, hi = _RANGE[out.dtype]
    if mode == "ours":
        if op.out == LOGITS:  # the contract's logits are int32
            return im.sat(im.mul_shift(acc, mm, sh), im.I32_MIN, im.I32_MAX, np.int32)
        return im.sat(im.mul_shift(acc, mm, sh), lo, hi, out.dtype)
    if mode == "tflm":
        s_in = np.float64(np.float32(g.tensors[op.ins[0]].scale))
        s_out = np.float64(np.float32(out.scale))
        q, e = tflm_quantize_multiplier(s_in * fc_weight_scales(m, g, op).astype(np.float64) / s_out)
    else:
        q, e = mm, 31 - sh  # our m / 2^sh in TFLM's (multiplier, exponent) form
    y = (tflm_mbqm_int64 if x.dtype == np.int16 else tflm_mbqm_int32)(acc, q, e)
    return im.sat(y, lo, hi, out.dtype)


# ---------------------------------------------------------------------------------------------------
# Our side: the whole forward, the exported ops evaluated from the graph, the rest as reference.py
# ---------------------------------------------------------------------------------------------------

def trace(m: IntModel, g: Graph, tokens, mode: str = "ours") -> list[dict[str, np.ndarray]]:
    """Every graph tensor at every position, one token at a time from an empty KV cache. The left-out
    ops run in our arithmetic; the graph's ops in `mode` (so mode="tflm" is TFLM's arithmetic
    running free, fed by our embedding, norms and attention)."""
    c = m.cfg
    k_cache = np.zeros((c.n_layers, c.ctx, c.kv_dim), dtype=np.int8)  # (layer, pos, kv_heads*head_dim)
    v_cache = np.zeros((c.n_layers, c.ctx, c.kv_dim), dtype=np.int8)
    out = []
    for pos, tok in enumerate(tokens):
        vals: dict[str, np.ndarray] = {}
        get = _left_out_ops(m, vals, int(tok), pos, k_cache, v_cache)
        for op in g.ops:
            vals[op.out] = eval_op(m, g, op, [get(n) for n in op.ins], mode)
        out.append(vals)
    return out


def _left_out_ops(m: IntModel, vals: dict, tok: int, pos: int, k_cache, v_cache):
    """get(name): a tensor of `vals`, computing a graph input (and what it needs) when first asked."""
    c = m.cfg
    L, nh, hd = c.n_layers, c.n_heads, c.head_dim
    group = nh // c.kv_heads  # query heads per kv head (reference._forward)

    def embed():
        e = im.sat(im.mul_shift(m.t("tok_emb")[tok], m.t("tok_emb.m")[tok], m.t("tok_emb.sh")[tok]),
                   im.I16_MIN, im.I16_MAX, np.int32)
        p = im.sat(im.mul_shift(m.t("pos_emb")[pos], m.t("pos_emb.m")[pos], m.t("pos_emb.sh")[pos]),
                   im.I16_MIN, im.I16_MAX, np.int32)
        return im.sat(e + p, im.I16_MIN, im.I16_MAX, np.int16)

    def norm(x_name: str, k_name: str):
        return lambda: im.rmsnorm(get(x_name), int(m.t(k_name)[0]))

    def attention(li: int):
        def run():
            p = f"layers.{li}."
            k_cache[li, pos], v_cache[li, pos] = vals[p + "k"], vals[p + "v"]
            sm = int(m.t(p + "softmax.m")[0]), int(m.t(p + "softmax.sh")[0])
            ao = int(m.t(p + "attn_out.m")[0]), int(m.t(p + "attn_out.sh")[0])
            o = np.zeros(nh * hd, dtype=np.int8)
            for h in range(nh):
                hs, ks = slice(h * hd, (h + 1) * hd), slice(h // group * hd, (h // group + 1) * hd)
                scores = k_cache[li, :pos + 1, ks].astype(np.int32) @ vals[p + "q"][hs].astype(np.int32)
                pr = im.softmax_q15(scores, *sm, m.t("exp_table"))
                acc = (pr[:, None] * v_cache[li, :pos + 1, ks].astype(np.int32)).sum(axis=0, dtype=np.int64)
                o[hs] = im.requant_i8(acc.astype(np.int32), *ao)
            return o
        return run

    make = {"x0": embed, "final_norm.out": norm(f"layers.{L - 1}.x_out", "final_norm.k")}
    for li in range(L):
        p = f"layers.{li}."
        x_in = "x0" if li == 0 else f"layers.{li - 1}.x_out"
        make[p + "attn_norm.out"] = norm(x_in, p + "attn_norm.k")
        make[p + "attn.out"] = attention(li)
        make[p + "ffn_norm.out"] = norm(p + "x_mid", p + "ffn_norm.k")

    def get(name: str) -> np.ndarray:
        if name not in vals:
            vals[name] = make[name]()
        return vals[name]
    return get


# ---------------------------------------------------------------------------------------------------
# TFLM's side
# ---------------------------------------------------------------------------------------------------

def _capture_stderr(fn):
    """(result, text): run fn() with fd 2 captured; TFLM prints its reports and errors there, from C."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            result, err = fn(), None
        except RuntimeError as e:
            result, err = None, e
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode("utf-8", "replace")
    if err is not None:
        detail = " | ".join(ln.strip() for ln in text.splitlines() if ln.strip()) or str(err)
        raise TinyAgentError(f"TFLM rejected the exported model: {detail}", EXIT_CHECK_FAILED)
    return result, text


def _interpreter(data: bytes, preserve: bool):
    try:
        from tflite_micro import runtime
    except ImportError:
        raise TinyAgentError("the tflite-micro package is needed (pip install tflite-micro)",
                             EXIT_TOOL_MISSING) from None
    modes = runtime.InterpreterConfig
    cfg = modes.kPreserveAllTensors if preserve else modes.kAllocationRecording
    it, _ = _capture_stderr(lambda: runtime.Interpreter.from_bytes(data, arena_size=ARENA_BYTES,
                                                                   intrepreter_config=cfg))
    return it


def _feed(it, g: Graph, vals: dict) -> None:
    for i, name in enumerate(g.inputs):
        it.set_input(vals[name].reshape(1, -1), i)


def parse_allocations(text: str) -> dict:
    """RecordingMicroAllocator's report -> bytes: total, head (planned activations), tail (persistent)."""
    out: dict = {"breakdown": {}}
    for line in text.splitlines():
        words = line.split()
        if "Arena allocation" in line and len(words) >= 5:
            out[words[3]] = int(words[4])
        elif "' used " in line:
            label = line.split("'")[1]
            out["breakdown"][label] = int(line.split(" used ")[1].split()[0])
    if "total" not in out:
        raise TinyAgentError("TFLM printed no arena report (print_allocations format changed?)",
                             EXIT_CHECK_FAILED)
    return {"total": out["total"], "head_activations": out.get("head"), "tail_persistent": out.get("tail"),
            "breakdown": out["breakdown"],
            "note": "host build (64-bit pointers); TFLM's structs are smaller on a 32-bit MCU"}


def our_ram_plan(cfg) -> dict:
    """Bytes our engine holds in RAM for the part TFLM runs, one token at a time. Weights, multipliers
    and tables are const (flash); each matvec output is requantised as its dot product ends, so no
    int32 vector is kept except the logits."""
    d, a, f, V, kv = cfg.dim, cfg.n_heads * cfg.head_dim, cfg.ffn_dim, cfg.vocab_size, cfg.kv_dim
    w = "a" if kv == a else "kv"  # kv = kv_heads * head_dim, narrower with grouped-query attention
    buffers = {
        "x int16[d] (residual)": 2 * d,
        "xn int8[d] (norm output)": d,
        "q int8[a]": a,
        f"k, v int8[2{w}] (this position's KV-cache row)": 2 * kv,
        "att int8[a] (attention output)": a,
        "hb int8[f] (FFN pre-activation, GELU in place)": f,
        "logits int32[V]": 4 * V,
    }
    left_out = {f"kv_cache int8[2][layers][ctx][{w}] (rest of it)": 2 * cfg.n_layers * cfg.ctx * kv - 2 * kv,
                "scores int32[ctx] (softmax, in place)": 4 * cfg.ctx}
    return {"total": sum(buffers.values()), "buffers": buffers, "left_out_ops": left_out}


def _flash_bytes(m: IntModel, g: Graph) -> int:
    """Our const bytes for the same part: int8 weights, per-row m (int32) and sh (int8), GELU tables."""
    n = 0
    for op in g.ops:
        if op.kind == "fc":
            n += m.t(op.weight).nbytes + m.t(op.mult + ".m").nbytes + m.t(op.mult + ".sh").nbytes
        elif op.kind == "gelu":
            n += m.t(op.weight).nbytes
    return n


# ---------------------------------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------------------------------

def _diff(ours: list[np.ndarray], theirs: list[np.ndarray]) -> dict:
    a = np.stack(ours).astype(np.int64)
    b = np.stack(theirs).astype(np.int64).reshape(a.shape)
    d = np.abs(a - b)
    return {"elements": int(a.size), "differ": int((d > 0).sum()),
            "fraction": round(float((d > 0).mean()), 6), "max_abs_diff": int(d.max())}


def _op_kind(g: Graph, op: OpSpec) -> str:
    if op.kind == "fc":
        return "fc int16" if g.tensors[op.ins[0]].dtype == np.int16 else "fc int8"
    return op.kind


def _median_us(fn, n: int) -> float:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1e6, 1)


def compare_with_tflm(intmodel_folder: str | Path, tokens=None, n_tokens: int = DEFAULT_TOKENS,
                      seed: int = 0, repeats: int = 3) -> dict:
    """Run the export in TFLM and our reference on the same tokens; a JSON-able report (module doc).

    `intmodel_folder` is an int8 folder or a run folder; `tokens` default to `n_tokens` random ids.
    """
    m = resolve_int_model(intmodel_folder)
    c = m.cfg
    if tokens is None:
        tokens = np.random.default_rng(seed).integers(0, c.vocab_size, min(n_tokens, c.ctx)).tolist()
    tokens = [int(t) for t in tokens]
    if not tokens or len(tokens) > c.ctx or not all(0 <= t < c.vocab_size for t in tokens):
        raise TinyAgentError(f"tokens: need 1..{c.ctx} ids in 0..{c.vocab_size - 1}, got {len(tokens)}")
    data, g, index = build_tflite(m)

    # Ours, checked against the reference itself: the trace must be the contract, logit for logit.
    ours = trace(m, g, tokens)
    ref = Reference(m)
    for pos, t in enumerate(tokens):
        if not np.array_equal(ref.step(t), ours[pos][LOGITS]):
            raise AssertionError(f"trace diverged from reference.py at position {pos}")

    # TFLM, every tensor kept, fed our values for the left-out ops.
    it = _interpreter(data, preserve=True)
    tflm = []
    for vals in ours:
        _feed(it, g, vals)
        it.invoke()
        tflm.append({n: it.GetTensor(index[n], 0)["tensor_data"].reshape(-1) for n in g.tensors})

    computed = [op.out for op in g.ops]
    tensors = {n: _diff([v[n] for v in ours], [v[n] for v in tflm]) for n in computed}

    # Each op alone, on the inputs TFLM gave it: ours vs TFLM, and why (via the emulated helpers).
    ops, emulation_misses = {}, 0
    for op in g.ops:
        got, mine, helper, emul = [], [], [], []
        for v in tflm:
            ins = [v[n] for n in op.ins]
            got.append(v[op.out])
            mine.append(eval_op(m, g, op, ins, "ours"))
            helper.append(eval_op(m, g, op, ins, "helper"))
            emul.append(eval_op(m, g, op, ins, "tflm"))
        row = {"kind": _op_kind(g, op), **_diff(mine, got)}
        emulation_misses += _diff(emul, got)["differ"]
        if op.kind == "fc":
            lo, hi = _RANGE[g.tensors[op.out].dtype]
            mine_sat = [np.clip(x, lo, hi) for x in mine]
            row["cause"] = {"int16_saturation": _diff(mine, mine_sat)["differ"],
                            "helper_rounding": _diff(mine_sat, helper)["differ"],
                            "float32_scales": _diff(helper, emul)["differ"]}
        ops[op.out] = row

    # TFLM's arithmetic running free (emulated, exact per op above) under our left-out ops.
    free = trace(m, g, tokens, mode="tflm")
    argmax_same = [int(np.argmax(a[LOGITS])) == int(np.argmax(b[LOGITS])) for a, b in zip(ours, free)]

    # Arena and time: a recording interpreter, invoked once per position.
    rec = _interpreter(data, preserve=False)
    _feed(rec, g, ours[0])
    rec.invoke()
    _, report = _capture_stderr(rec.print_allocations)

    def tflm_step(i):
        rec.invoke()

    def ref_step(i):
        if i % len(tokens) == 0:
            ref.reset()
        ref.step(tokens[i % len(tokens)])

    def ours_part(i):
        vals = dict(ours[i % len(tokens)])
        for op in g.ops:
            vals[op.out] = eval_op(m, g, op, [vals[n] for n in op.ins])

    n_time = len(tokens) * repeats
    # TFLM keeps an int32 multiplier and an int32 shift per output channel in the arena; ours are const.
    n_mult = 8 * sum(g.tensors[op.out].size for op in g.ops if op.kind == "fc")
    return {
        "tflm_version": _tflm_version(),
        "model": {"sha256": m.hash, "config": c.to_dict()},
        "tokens": len(tokens),
        "exported": {"ops": op_counts(g), "inputs": g.inputs, "outputs": g.outputs,
                     "tflite_bytes": len(data)},
        "left_out": dict(LEFT_OUT),
        "bit_exact": all(r["differ"] == 0 for r in tensors.values()),
        "tensors": tensors,
        "ops": ops,
        "emulated_exactly": emulation_misses == 0,
        "rounding": dict(TFLM_ROUNDING),
        "free_running": {"note": "TFLM arithmetic (emulated) for the exported ops, ours for the rest",
                         "logits": _diff([v[LOGITS] for v in ours], [v[LOGITS] for v in free]),
                         "argmax_agree": round(sum(argmax_same) / len(tokens), 6)},
        "arena_bytes": {"tflm": {**parse_allocations(report), "of_which_per_channel_multipliers": n_mult},
                        "ours": our_ram_plan(c)},
        "flash_bytes": {"tflite_file": len(data), "ours_same_part": _flash_bytes(m, g)},
        "time_us_per_token": {"tflm_invoke_exported_part": _median_us(tflm_step, n_time),
                              "numpy_exported_part": _median_us(ours_part, n_time),
                              "numpy_reference_step_whole_model": _median_us(ref_step, n_time)},
    }


def _tflm_version() -> str:
    try:
        import tflite_micro
        return str(tflite_micro.__version__)
    except (ImportError, AttributeError):
        return "unknown"


def format_report(r: dict) -> str:
    """A few lines for people; the dict has the rest."""
    a = r["arena_bytes"]
    worst = max(r["ops"].items(), key=lambda kv: kv[1]["fraction"])
    return "\n".join([
        f"TFLM {r['tflm_version']}, {r['tokens']} tokens, exported: "
        + ", ".join(f"{k} x{v}" for k, v in r["exported"]["ops"].items()),
        f"left out: {', '.join(r['left_out'])}",
        f"bit-exact: {r['bit_exact']}; TFLM helpers emulated exactly: {r['emulated_exactly']}",
        f"worst op: {worst[0]} ({worst[1]['kind']}): {worst[1]['differ']}/{worst[1]['elements']} differ, "
        f"max {worst[1]['max_abs_diff']} LSB",
        f"free-running logits: max diff {r['free_running']['logits']['max_abs_diff']}, "
        f"argmax agree {r['free_running']['argmax_agree']:.3f}",
        f"arena: TFLM {a['tflm']['total']} B (activations {a['tflm']['head_activations']}), "
        f"ours {a['ours']['total']} B",
        f"time/token: TFLM {r['time_us_per_token']['tflm_invoke_exported_part']} us; numpy: same part "
        f"{r['time_us_per_token']['numpy_exported_part']} us, whole reference step "
        f"{r['time_us_per_token']['numpy_reference_step_whole_model']} us",
    ])


if __name__ == "__main__":
    import json

    try:
        report = compare_with_tflm(sys.argv[1] if len(sys.argv) > 1 else "models/default")
    except TinyAgentError as e:
        print(f"tinyagent: error: {e}", file=sys.stderr)
        sys.exit(e.code)
    print(json.dumps(report, indent=2))
    print(format_report(report), file=sys.stderr)
