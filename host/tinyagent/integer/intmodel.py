"""The integer model: int8 weights, int32 multipliers and shifts, lookup tables; its checks and storage.

numpy only: the reference, the generator and the build read it without torch (intexport.py makes it
from a QAT model). Nothing on the device or in the reference ever sees a float. Tensor names and order
are those the C generator walks (docs/integer-contract.md).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save

from ..errors import bad_input
from ..fileio import read_json, sha256_bytes, write_bytes, write_json
from . import intmath as im
from .config import ModelConfig, QatScales

INT_FORMAT_VERSION = 1
WEIGHTS_FILE = "model.int.safetensors"
CONFIG_FILE = "model.int.json"


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
    return tensor_shapes(cfg.n_layers, V=cfg.vocab_size, C=cfg.ctx, d=cfg.dim, a=cfg.n_heads * cfg.head_dim,
                         kv=cfg.kv_dim, f=cfg.ffn_dim)


def tensor_shapes(n_layers: int, **dims) -> dict[str, tuple[str, tuple]]:
    """name -> (dtype, shape), each dim one of `dims` (V vocab, C ctx, d dim, a heads * head_dim,
    kv kv_heads * head_dim, f ffn): ints for a config, or the C macros that generate.py checks the
    generated arrays against at compile time."""
    V, C, d, a, kv, f = (dims[k] for k in ("V", "C", "d", "a", "kv", "f"))

    def lin(name: str, out, inp) -> dict:
        return {name: ("int8", (out, inp)), name + ".m": ("int32", (out,)), name + ".sh": ("int8", (out,))}

    one = {"m": ("int32", (1,)), "sh": ("int8", (1,))}
    specs = {**lin("tok_emb", V, d), **lin("pos_emb", C, d), "exp_table": ("uint16", (im.EXP_ENTRIES,))}
    for li in range(n_layers):
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


def qat_scales_from(scales: dict) -> QatScales:
    return QatScales(**{k: scales[k] for k in ("resid", "norm", "q", "k", "v", "attn", "ffn_h", "ffn_g",
                                               "logits", "sm_steps")})
