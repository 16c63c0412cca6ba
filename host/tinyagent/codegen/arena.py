"""The device's memory plan. For now: the layout of the engine's one arena (firmware/ta_engine.h).

The generator emits the layout as constants (ta_model.h), so the device never computes an offset
and the memory report can quote the same numbers. The activations are sized for a prefill block of
`block` tokens (ta_engine_feed runs up to that many prompt tokens through each weight row at once);
block 1 is token-by-token feeding, the smallest arena.
"""
from __future__ import annotations

from typing import NamedTuple

from ..integer.config import ModelConfig

ARENA_ALIGN = 8  # every buffer starts on an 8-byte boundary (the arena itself is a uint64 union)
DEFAULT_PREFILL_BLOCK = 8  # prompt tokens per pass through the weights, where the board's RAM allows


class Buffer(NamedTuple):
    name: str
    offset: int  # bytes from the start of the arena
    bytes: int


def arena_buffers(cfg: ModelConfig, block: int = DEFAULT_PREFILL_BLOCK) -> list[tuple[str, str, tuple[int, ...]]]:
    """(name, C element type, shape) of every working buffer, in arena order (ta_state's fields), with
    the activations of `block` tokens (the prefill block, >= 1)."""
    if block < 1:
        raise ValueError(f"prefill block {block} is not allowed (at least 1 token)")
    d, a, f, B = cfg.dim, cfg.n_heads * cfg.head_dim, cfg.ffn_dim, block
    kv = cfg.kv_dim  # n_kv_heads * head_dim: the KV cache's width (a for multi-head attention)
    wide = max(d, a, f)  # any matvec's output
    return [
        ("x", "int16_t", (B, d)),  # residual stream, a row per token of the block
        ("xn", "int8_t", (B, d)),  # norm output
        ("xk", "int16_t", (max(B * wide, cfg.ctx),)),  # matvec/matmat input in the kernel's form (ta_kx); probs too
        ("qo", "int8_t", (B, a)),  # q, then the attention output
        ("hg", "int8_t", (B, f)),  # FFN pre-activation, then GELU
        ("acc", "int32_t", (B, wide)),  # matvec/matmat accumulators
        ("scores", "int32_t", (cfg.ctx,)),
        ("probs", "int32_t", (cfg.ctx,)),
        ("logits", "int32_t", (cfg.vocab_size,)),
        ("k_cache", "int8_t", (cfg.n_layers, cfg.ctx, kv)),  # a row per position
        ("v_cache", "int8_t", (cfg.n_layers, kv, cfg.ctx)),  # transposed: probabilities @ values is a matvec
    ]


_SIZES = {"int8_t": 1, "int16_t": 2, "int32_t": 4}


def arena_layout(cfg: ModelConfig, align: int = ARENA_ALIGN, block: int = DEFAULT_PREFILL_BLOCK) -> list[Buffer]:
    """Every buffer's (name, offset, bytes), each offset a multiple of `align`, for a prefill block of
    `block` tokens."""
    out, offset = [], 0
    for name, ctype, shape in arena_buffers(cfg, block):
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


def prefill_block_bytes(cfg: ModelConfig, block: int) -> int:
    """What a prefill block of `block` tokens adds to the arena of token-by-token feeding (block 1)."""
    return arena_bytes(arena_layout(cfg, block=block)) - arena_bytes(arena_layout(cfg, block=1))


def choose_prefill_block(cfg: ModelConfig, arena_budget: int, largest: int = DEFAULT_PREFILL_BLOCK) -> int:
    """The largest block of largest, largest/2, ... 1 tokens whose arena fits `arena_budget` bytes (the
    RAM left for it); 1 when none does (the plan then reports what does not fit)."""
    block = max(1, largest)
    while block > 1 and arena_bytes(arena_layout(cfg, block=block)) > arena_budget:
        block //= 2
    return block
