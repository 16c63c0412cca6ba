"""The integer model: int8 weights, int32 multipliers and shifts, lookup tables. Export and storage.

`calibrate` measures activation ranges in float and fixes the static scales; `export_int_model`
turns a QAT model into integers once, on the host. Nothing on the device or in the reference
ever sees a float. Tensor names and order are those the C generator walks (docs/integer-contract.md).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save

from . import intmath as im
from .errors import bad_input
from .fileio import read_json, sha256_bytes, write_bytes, write_json
from .model import GPT, ModelConfig, QatScales, weight_scales

INT_FORMAT_VERSION = 1
WEIGHTS_FILE = "model.int.safetensors"
CONFIG_FILE = "model.int.json"

RESID_HEADROOM = 1.5  # the int16 residual keeps 50% above the largest calibrated value
LOGIT_RANGE = 8192  # calibrated max |logit| maps here; leaves int16-sized logits with headroom

# What a stored ModelConfig may hold: field -> (min, max). Far beyond any microcontroller, but they keep
# the generator's loops and arrays, and the device's int32 sizes and offsets, in range.
CONFIG_LIMITS = {"vocab_size": (256, 65535),  # the 256 byte tokens, then merges; device ids are uint16
                 "ctx": (1, 32768), "dim": (1, 16384), "n_layers": (1, 256), "n_heads": (1, 256),
                 "head_dim": (1, 4096), "ffn_dim": (1, 65536)}
OPTIONAL_CONFIG = ("n_kv_heads",)  # absent = n_heads (multi-head attention), as every older export
SM_STEPS_MAX = 1024  # softmax steps per nat (the exp table's resolution)


@dataclass
class IntModel:
    cfg: ModelConfig
    tensors: dict[str, np.ndarray]  # every array is an integer dtype
    scales: dict  # the float scales it was exported from (metadata; eval uses `logit_scale`)
    hash: str = ""  # sha256 of the weights file, set by save/load (generate.model_hash names the model)

    def t(self, name: str) -> np.ndarray:
        return self.tensors[name]

    @property
    def logit_scale(self) -> float:
        return float(self.scales["logits"])

    def weight_bytes(self) -> int:
        return sum(a.nbytes for a in self.tensors.values())

    def to_bytes(self) -> bytes:
        meta = {"format": str(INT_FORMAT_VERSION)}
        return save({k: np.ascontiguousarray(v) for k, v in self.tensors.items()}, metadata=meta)

    def save(self, folder: str | Path) -> str:
        folder = Path(folder)
        data = self.to_bytes()
        self.hash = sha256_bytes(data)
        write_bytes(folder / WEIGHTS_FILE, data)
        write_json(folder / CONFIG_FILE, {"format": INT_FORMAT_VERSION, "config": self.cfg.to_dict(),
                                          "scales": self.scales, "sha256": self.hash})
        return self.hash


def load_int_model(folder: str | Path) -> IntModel:
    """The integer model in `folder`, every field of model.int.json and every tensor checked against
    the config (names, dtypes, shapes, multiplier and shift ranges): one bad_input line per problem."""
    folder = Path(folder)
    cpath, wpath = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not cpath.is_file() or not wpath.is_file():
        raise bad_input(f"{folder}: no integer model here (expected {CONFIG_FILE} and {WEIGHTS_FILE}; "
                        f"run `tinyagent quantize` first)")
    meta = read_json(cpath, "integer-model config")
    if not isinstance(meta, dict):
        raise bad_input(f"{cpath}: not a valid integer-model config (corrupt: {_kind(meta)}, not an object)")
    fmt = meta.get("format")
    if type(fmt) is not int or fmt != INT_FORMAT_VERSION:
        raise bad_input(f"{cpath}: integer-model format {_show(fmt)} is not supported (this tinyagent reads "
                        f"format {INT_FORMAT_VERSION})")
    extra = sorted(set(meta) - {"format", "config", "scales", "sha256"})
    if extra:
        raise bad_input(f"{cpath}: field {extra[0]!r} is not an integer-model field (allowed: format, config, "
                        "scales, sha256)")
    digest = meta.get("sha256")
    if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        raise bad_input(f"{cpath}: sha256 is {_show(digest)} (allowed: 64 lowercase hex digits, the "
                        f"sha256 of {WEIGHTS_FILE})")
    cfg = check_model_config(meta.get("config"), f"{cpath}: config")
    scales = check_scales(meta.get("scales"), cfg.n_layers, f"{cpath}: scales")
    data = wpath.read_bytes()
    if sha256_bytes(data) != digest:
        raise bad_input(f"{wpath}: weights do not match their config's sha256 (corrupt or truncated file)")
    try:
        tensors = load_file(str(wpath))
    except Exception:
        raise bad_input(f"{wpath}: not a readable safetensors file (corrupt or truncated)") from None
    check_tensors(cfg, scales, tensors, str(wpath))
    return IntModel(cfg, tensors, scales, digest)


def _kind(v) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), "a number")


def _show(v) -> str:
    """A JSON value as the user wrote it, cut short."""
    text = json.dumps(v)
    return text if len(text) <= 40 else text[:37] + "..."


def check_model_config(d, where: str) -> ModelConfig:
    """A ModelConfig from its stored dict: every field present, an integer (not a bool or 128.5) and in
    CONFIG_LIMITS, and no other field. `where` starts the message ("path: config")."""
    names = [f.name for f in fields(ModelConfig)]
    required = [n for n in names if n not in OPTIONAL_CONFIG]
    if not isinstance(d, dict):
        raise bad_input(f"{where} is {_kind(d)} (allowed: an object with {', '.join(required)}; "
                        f"optionally {', '.join(OPTIONAL_CONFIG)})")
    for n in required:
        lo, hi = CONFIG_LIMITS[n]
        if n not in d:
            raise bad_input(f"{where}.{n} is missing (allowed: an integer {lo}..{hi})")
        if type(d[n]) is not int or not lo <= d[n] <= hi:
            raise bad_input(f"{where}.{n} is {_show(d[n])} (allowed: an integer {lo}..{hi})")
    extra = sorted(set(d) - set(names))
    if extra:
        raise bad_input(f"{where}.{extra[0]} is not a model field (allowed: {', '.join(names)})")
    g, nh = d.get("n_kv_heads"), d["n_heads"]
    if "n_kv_heads" in d and (type(g) is not int or not 1 <= g <= nh or nh % g):
        divisors = ", ".join(str(k) for k in range(1, nh + 1) if nh % k == 0)
        raise bad_input(f"{where}.n_kv_heads is {_show(g)} (allowed: a divisor of n_heads {nh}: {divisors}; "
                        "or absent for n_heads)")
    return ModelConfig(**d)


def _positive(v) -> bool:
    return type(v) in (int, float) and math.isfinite(v) and v > 0


def check_scales(s, n_layers: int, where: str) -> dict:
    """The float scales of an export: positive finite numbers, one per quantisation point (lists of
    n_layers, norm 2 * n_layers + 1), and sm_steps an integer 1..SM_STEPS_MAX."""
    lengths = {"norm": 2 * n_layers + 1, **{k: n_layers for k in ("q", "k", "v", "attn", "ffn_h", "ffn_g")}}
    names = ["resid", *lengths, "logits", "sm_steps"]
    if not isinstance(s, dict):
        raise bad_input(f"{where} is {_kind(s)} (allowed: an object with {', '.join(names)})")
    for k in names:
        if k not in s:
            raise bad_input(f"{where}.{k} is missing (the scales are {', '.join(names)})")
        v = s[k]
        if k == "sm_steps":
            if type(v) is not int or not 1 <= v <= SM_STEPS_MAX:
                raise bad_input(f"{where}.sm_steps is {_show(v)} (allowed: an integer 1..{SM_STEPS_MAX})")
        elif k in lengths:
            if not isinstance(v, list) or len(v) != lengths[k]:
                raise bad_input(f"{where}.{k} is {_show(v)} (allowed: a list of {lengths[k]} positive numbers, "
                                f"for {n_layers} layers)")
            bad = [x for x in v if not _positive(x)]
            if bad:
                raise bad_input(f"{where}.{k} holds {_show(bad[0])} (allowed: positive finite numbers)")
        elif not _positive(v):
            raise bad_input(f"{where}.{k} is {_show(v)} (allowed: a positive finite number)")
    extra = sorted(set(s) - set(names))
    if extra:
        raise bad_input(f"{where}.{extra[0]} is not a scale (allowed: {', '.join(names)})")
    return s


def tensor_specs(cfg: ModelConfig) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (dtype, shape) of every tensor an export of `cfg` holds."""
    V, C, d, a, f = cfg.vocab_size, cfg.ctx, cfg.dim, cfg.n_heads * cfg.head_dim, cfg.ffn_dim
    kv = cfg.kv_dim  # = a, or fewer rows with grouped-query attention

    def lin(name: str, out: int, inp: int) -> dict:
        return {name: ("int8", (out, inp)), name + ".m": ("int32", (out,)), name + ".sh": ("int8", (out,))}

    one = {"m": ("int32", (1,)), "sh": ("int8", (1,))}
    specs = {**lin("tok_emb", V, d), **lin("pos_emb", C, d), "exp_table": ("uint16", (im.EXP_ENTRIES,))}
    for li in range(cfg.n_layers):
        p = f"layers.{li}."
        specs |= {p + "attn_norm.k": ("int32", (1,)), **lin(p + "wq", a, d), **lin(p + "wk", kv, d),
                  **lin(p + "wv", kv, d), **{p + "softmax." + k: v for k, v in one.items()},
                  **{p + "attn_out." + k: v for k, v in one.items()}, **lin(p + "wo", d, a),
                  p + "ffn_norm.k": ("int32", (1,)), **lin(p + "w1", f, d), p + "gelu": ("int8", (256,)),
                  **lin(p + "w2", d, f)}
    specs |= {"final_norm.k": ("int32", (1,)), "logits.m": ("int32", (V,)), "logits.sh": ("int8", (V,))}
    return specs


def check_tensors(cfg: ModelConfig, scales: dict, tensors: dict[str, np.ndarray], where: str) -> None:
    """The tensors are exactly those of `cfg` (tensor_specs), and their values keep the integer
    contract: multipliers 0..2^31-1, shifts 1..62, norm constants >= 0, the exp table of sm_steps."""
    specs = tensor_specs(cfg)
    for name, (dtype, shape) in specs.items():
        if name not in tensors:
            raise bad_input(f"{where}: tensor {name} is missing (the config has {cfg.n_layers} layers)")
        t = tensors[name]
        if str(t.dtype) != dtype or tuple(t.shape) != shape:
            raise bad_input(f"{where}: tensor {name} is {t.dtype} {tuple(t.shape)}; the config says "
                            f"{dtype} {shape}")
        if name.endswith(".m") and t.size and int(t.min()) < 0:
            raise bad_input(f"{where}: tensor {name} holds multiplier {int(t.min())} (allowed: 0..2^31-1)")
        if name.endswith(".sh") and t.size and not (1 <= int(t.min()) and int(t.max()) <= 62):
            raise bad_input(f"{where}: tensor {name} holds shifts {int(t.min())}..{int(t.max())} (allowed: 1..62)")
        if name.endswith(".k") and int(t.min()) < 0:
            raise bad_input(f"{where}: tensor {name} holds norm constant {int(t.min())} (allowed: >= 0)")
    extra = sorted(set(tensors) - set(specs))
    if extra:
        raise bad_input(f"{where}: tensor {extra[0]} is not part of a model with this config "
                        f"({cfg.n_layers} layers)")
    if not np.array_equal(tensors["exp_table"], im.exp_table(scales["sm_steps"])):
        raise bad_input(f"{where}: exp_table is not the table of scales.sm_steps {scales['sm_steps']} "
                        "(the config and the weights come from different exports)")


# ---------------------------------------------------------------------------------------------------
# Calibration and export
# ---------------------------------------------------------------------------------------------------

@torch.no_grad()
def calibrate(model: GPT, batches: list[torch.Tensor], sm_steps: int = 16) -> QatScales:
    """Static activation scales from the max |value| seen at each point over `batches`."""
    model.eval()
    rec: dict[str, np.ndarray] = {}
    for idx in batches:
        r = {k: np.array(v) for k, v in model.observe(idx).items()}
        rec = r if not rec else {k: np.maximum(rec[k], r[k]) for k in rec}
    L = model.cfg.n_layers
    per = lambda k: [float(v) / 127.0 for v in rec[k]]  # noqa: E731
    return QatScales(
        resid=float(rec["resid"].max()) * RESID_HEADROOM / 32767.0,
        norm=per("norm"), q=per("q"), k=per("k"), v=per("v"), attn=per("attn"),
        ffn_h=per("ffn_h"), ffn_g=per("ffn_g"),
        logits=float(rec["logits"].max()) / LOGIT_RANGE, sm_steps=sm_steps,
        extra={"layers": L})


def _w8(w: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-row symmetric int8 weights and their float scales (exactly as fake_quant_weight)."""
    s = weight_scales(w)
    q = torch.clamp(torch.floor(w / s[:, None] + 0.5), -127, 127)
    return q.to(torch.int8).numpy(), s.double().numpy()


@torch.no_grad()
def export_int_model(model: GPT) -> IntModel:
    qs = model.qat
    if qs is None:
        raise ValueError("export needs a QAT model (set model.qat from calibrate first)")
    cfg = model.cfg
    T: dict[str, np.ndarray] = {}

    def mult(prefix: str, reals) -> None:
        m, sh = im.quantize_multipliers(np.asarray(reals, dtype=np.float64))
        T[prefix + ".m"], T[prefix + ".sh"] = m, sh

    def norm_k(s_out: float) -> np.ndarray:
        return np.array([int(round(math.sqrt(cfg.dim) / s_out * 65536))], dtype=np.int32)

    emb, s_emb = _w8(model.tok_emb.weight)
    pos, s_pos = _w8(model.pos_emb.weight)
    T["tok_emb"], T["pos_emb"] = emb, pos
    mult("tok_emb", s_emb / qs.resid)
    mult("pos_emb", s_pos / qs.resid)
    T["exp_table"] = im.exp_table(qs.sm_steps)
    for li, b in enumerate(model.blocks):
        p = f"layers.{li}."
        s_n1, s_n2 = qs.norm[2 * li], qs.norm[2 * li + 1]
        T[p + "attn_norm.k"] = norm_k(s_n1)
        g1 = b.attn_norm.weight[None, :]
        for name, lin, s_out in (("wq", b.wq, qs.q[li]), ("wk", b.wk, qs.k[li]), ("wv", b.wv, qs.v[li])):
            w, s_w = _w8(lin.weight * g1)
            T[p + name] = w
            mult(p + name, s_n1 * s_w / s_out)
        mult(p + "softmax", [qs.q[li] * qs.k[li] / math.sqrt(cfg.head_dim) * qs.sm_steps])
        mult(p + "attn_out", [qs.v[li] / 32768.0 / qs.attn[li]])
        w, s_w = _w8(b.wo.weight)
        T[p + "wo"] = w
        mult(p + "wo", qs.attn[li] * s_w / qs.resid)
        T[p + "ffn_norm.k"] = norm_k(s_n2)
        w, s_w = _w8(b.w1.weight * b.ffn_norm.weight[None, :])
        T[p + "w1"] = w
        mult(p + "w1", s_n2 * s_w / qs.ffn_h[li])
        T[p + "gelu"] = im.gelu_table(qs.ffn_h[li], qs.ffn_g[li])
        w, s_w = _w8(b.w2.weight)
        T[p + "w2"] = w
        mult(p + "w2", qs.ffn_g[li] * s_w / qs.resid)
    s_nf = qs.norm[2 * cfg.n_layers]
    T["final_norm.k"] = norm_k(s_nf)
    mult("logits", s_nf * s_emb / qs.logits)
    scales = {"resid": qs.resid, "norm": qs.norm, "q": qs.q, "k": qs.k, "v": qs.v, "attn": qs.attn,
              "ffn_h": qs.ffn_h, "ffn_g": qs.ffn_g, "logits": qs.logits, "sm_steps": qs.sm_steps}
    return IntModel(cfg, T, scales)


def qat_scales_from(scales: dict) -> QatScales:
    return QatScales(**{k: scales[k] for k in ("resid", "norm", "q", "k", "v", "attn", "ffn_h", "ffn_g",
                                               "logits", "sm_steps")})
