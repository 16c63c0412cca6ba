"""The model's shape (ModelConfig, its presets) and its frozen activation scales (QatScales): plain
data that the integer path (intmodel, reference, generate, arena, build) reads without torch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..errors import bad_input


@dataclass
class ModelConfig:
    vocab_size: int = 512  # byte-level BPE: 256 bytes + merges
    ctx: int = 128  # context length in tokens (KV cache rows on the device)
    dim: int = 96  # residual width
    n_layers: int = 3
    n_heads: int = 4  # per layer, after head pruning too
    head_dim: int = 24  # kept fixed by head pruning
    ffn_dim: int = 192  # per layer, after FFN pruning too
    # Key/value heads (grouped-query attention): query head h reads kv head h // (n_heads // n_kv_heads).
    # None (or n_heads) is plain multi-head attention; fewer shrink wk, wv and the KV cache.
    n_kv_heads: int | None = None

    def __post_init__(self) -> None:
        g = self.n_kv_heads
        if g is None:
            return
        allowed = [k for k in range(1, self.n_heads + 1) if self.n_heads % k == 0] if self.n_heads > 0 else []
        if type(g) is not int or g not in allowed:
            raise bad_input(f"n_kv_heads is {g!r} (allowed: a divisor of n_heads {self.n_heads}: "
                            f"{', '.join(map(str, allowed)) or 'none'}; or absent for n_heads)")

    @property
    def kv_heads(self) -> int:
        """Key/value heads: n_kv_heads, or n_heads when it is absent."""
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads

    @property
    def kv_dim(self) -> int:
        """Width of one position's keys (and of its values): kv_heads * head_dim."""
        return self.kv_heads * self.head_dim

    def kv_bytes_per_token(self) -> int:
        """KV cache bytes per token of context: int8 K and V in every layer."""
        return 2 * self.n_layers * self.kv_dim

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["n_kv_heads"] is None:  # absent = n_heads: a multi-head config stores what it always did
            del d["n_kv_heads"]
        return d

    @staticmethod
    def from_dict(d: dict) -> "ModelConfig":
        return ModelConfig(**d)

    def n_params(self) -> int:
        d, a, kv, f = self.dim, self.n_heads * self.head_dim, self.kv_dim, self.ffn_dim
        per_layer = 2 * d * a + 2 * d * kv + 2 * d * f + 2 * d
        return self.vocab_size * d + self.ctx * d + self.n_layers * per_layer + d

    def macs_per_token(self, pos: int | None = None) -> int:
        """Multiply-accumulates to produce one token's logits at position `pos` (default: ctx/2)."""
        pos = self.ctx // 2 if pos is None else pos
        d, a, kv, f = self.dim, self.n_heads * self.head_dim, self.kv_dim, self.ffn_dim
        attn = 2 * (pos + 1) * a  # q.k over the cache, then p.v: every query head reads its kv head
        return self.n_layers * (2 * d * a + 2 * d * kv + 2 * d * f + attn) + self.vocab_size * d


# Presets. The student is sized for a microcontroller; the teacher is several times larger. Both hold
# 256 tokens: a conversation of a few turns (the corpus's are up to MAX_DIALOGUE_BYTES); the student's
# 2 key/value heads halve its KV cache, the bulk of its RAM.
TEACHER = ModelConfig(ctx=256, dim=192, n_layers=4, n_heads=6, head_dim=32, ffn_dim=768)
STUDENT = ModelConfig(ctx=256, n_kv_heads=2)
TINY = ModelConfig(vocab_size=512, ctx=64, dim=32, n_layers=2, n_heads=2, head_dim=16, ffn_dim=64)


@dataclass
class QatScales:
    """Static activation scales, calibrated once in float, then frozen (one per quantisation point)."""

    resid: float  # int16 residual stream, shared by all layers
    norm: list[float]  # int8 output of each RMSNorm: 2 per layer, then the final one
    q: list[float]
    k: list[float]
    v: list[float]
    attn: list[float]  # int8 attention output (p @ v), input of wo
    ffn_h: list[float]  # int8 pre-activation (w1 output)
    ffn_g: list[float]  # int8 GELU output (w2 input)
    logits: float  # int32 logits
    sm_steps: int = 16  # softmax input resolution: steps per nat (exp table index)
    extra: dict = field(default_factory=dict)
