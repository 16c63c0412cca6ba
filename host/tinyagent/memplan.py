"""The device's memory plan. For now: the layout of the engine's one arena (firmware/ta_engine.h).

The generator emits the layout as constants (ta_model.h), so the device never computes an offset
and the memory report can quote the same numbers.
"""
from __future__ import annotations

from typing import NamedTuple

from .model import ModelConfig

ARENA_ALIGN = 8  # every buffer starts on an 8-byte boundary (the arena itself is a uint64 union)


class Buffer(NamedTuple):
    name: str
    offset: int  # bytes from the start of the arena
    bytes: int


def arena_buffers(cfg: ModelConfig) -> list[tuple[str, str, tuple[int, ...]]]:
    """(name, C element type, shape) of every working buffer, in arena order (ta_state's fields)."""
    d, a, f = cfg.dim, cfg.n_heads * cfg.head_dim, cfg.ffn_dim
    kv = cfg.kv_dim  # n_kv_heads * head_dim: the KV cache's width (a for multi-head attention)
    wide = max(d, a, f)  # any matvec's output
    return [
        ("x", "int16_t", (d,)),  # residual stream
        ("xn", "int8_t", (d,)),  # norm output
        ("xk", "int16_t", (max(wide, cfg.ctx),)),  # matvec input in the kernel's form (ta_kx); probs too
        ("qo", "int8_t", (a,)),  # q, then the attention output
        ("hg", "int8_t", (f,)),  # FFN pre-activation, then GELU
        ("acc", "int32_t", (wide,)),  # matvec accumulators
        ("scores", "int32_t", (cfg.ctx,)),
        ("probs", "int32_t", (cfg.ctx,)),
        ("logits", "int32_t", (cfg.vocab_size,)),
        ("k_cache", "int8_t", (cfg.n_layers, cfg.ctx, kv)),  # a row per position
        ("v_cache", "int8_t", (cfg.n_layers, kv, cfg.ctx)),  # transposed: probabilities @ values is a matvec
    ]


_SIZES = {"int8_t": 1, "int16_t": 2, "int32_t": 4}


def arena_layout(cfg: ModelConfig, align: int = ARENA_ALIGN) -> list[Buffer]:
    """Every buffer's (name, offset, bytes), each offset a multiple of `align`."""
    out, offset = [], 0
    for name, ctype, shape in arena_buffers(cfg):
        n = _SIZES[ctype]
        for s in shape:
            n *= s
        out.append(Buffer(name, offset, n))
        offset += -(-n // align) * align
    return out


def arena_bytes(layout: list[Buffer], align: int = ARENA_ALIGN) -> int:
    """Total arena size: the end of the last buffer, rounded up to `align`."""
    end = max((b.offset + b.bytes for b in layout), default=0)
    return -(-end // align) * align
