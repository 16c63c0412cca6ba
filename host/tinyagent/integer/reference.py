"""The integer reference: the quantised student, run with integers only. This is the spec.

`Reference.step` is what the device runs (one token, a KV cache). `forward_seq` computes the same
numbers for a whole sequence at once (for eval); a test holds the two equal. Every intermediate is an
int8/int16/int32/int64 array (intmath asserts it); the order of operations is docs/integer-contract.md.
"""
from __future__ import annotations

import numpy as np

from . import intmath as im
from .intmodel import IntModel


class Reference:
    def __init__(self, model: IntModel):
        self.m = model
        c = model.cfg
        kv = c.kv_dim
        self.k_cache = np.zeros((c.n_layers, c.ctx, kv), dtype=np.int8)  # (layer, pos, kv_heads*head_dim)
        self.v_cache = np.zeros((c.n_layers, c.ctx, kv), dtype=np.int8)
        self.pos = 0

    def reset(self) -> None:
        self.pos = 0

    def rewind(self, pos: int) -> None:
        """Forget positions pos.. (a conversation that drops a refused turn): the next token goes at
        `pos`. Cache rows 0..pos-1 stay as they are; later ones are overwritten before they are read."""
        if not 0 <= pos <= self.pos:
            raise ValueError(f"cannot rewind to position {pos} (allowed: 0..{self.pos})")
        self.pos = pos

    def step(self, token: int) -> np.ndarray:
        """Feed one token at the next position; returns int32 logits (vocab,)."""
        return self.feed([token])

    def feed(self, tokens: list[int]) -> np.ndarray:
        """Feed tokens at the next positions in one pass (the same numbers as one step each);
        returns the last position's int32 logits."""
        if self.pos + len(tokens) > self.m.cfg.ctx:
            raise ValueError(f"context full ({self.m.cfg.ctx} tokens)")
        logits = _forward(self.m, np.asarray(tokens, dtype=np.int64), self.pos, self.k_cache, self.v_cache)[-1]
        self.pos += len(tokens)
        return logits


def forward_seq(model: IntModel, tokens: list[int] | np.ndarray) -> np.ndarray:
    """int32 logits (T, vocab) for every position of `tokens`, from an empty cache."""
    c = model.cfg
    k = np.zeros((c.n_layers, c.ctx, c.kv_dim), dtype=np.int8)
    v = np.zeros((c.n_layers, c.ctx, c.kv_dim), dtype=np.int8)
    return _forward(model, np.asarray(tokens, dtype=np.int64), 0, k, v)


def _forward(m: IntModel, toks: np.ndarray, pos0: int, k_cache: np.ndarray, v_cache: np.ndarray) -> np.ndarray:
    """Positions pos0 .. pos0+T-1 for tokens `toks` (T,), filling the caches. Returns (T, vocab) int32."""
    c = m.cfg
    T = len(toks)
    pos = np.arange(pos0, pos0 + T)
    # ---- embedding: each term requantised to the residual scale, then added (int16)
    t_m, t_sh = m.t("tok_emb.m")[toks][:, None], m.t("tok_emb.sh")[toks][:, None]
    p_m, p_sh = m.t("pos_emb.m")[pos][:, None], m.t("pos_emb.sh")[pos][:, None]
    e = im.sat(im.mul_shift(m.t("tok_emb")[toks], t_m, t_sh), im.I16_MIN, im.I16_MAX, np.int32)
    p = im.sat(im.mul_shift(m.t("pos_emb")[pos], p_m, p_sh), im.I16_MIN, im.I16_MAX, np.int32)
    x = im.sat(e + p, im.I16_MIN, im.I16_MAX, np.int16)  # (T, d)
    nh, hd = c.n_heads, c.head_dim
    group = nh // c.kv_heads  # query heads per kv head (1: multi-head attention)
    exp_t = m.t("exp_table")
    for li in range(c.n_layers):
        L = f"layers.{li}."
        w = lambda n: m.t(L + n)  # noqa: E731
        # ---- attention
        xn = im.rmsnorm(x, int(w("attn_norm.k")[0]))  # (T, d) int8
        q = im.requant_i8(im.matvec(w("wq"), xn), w("wq.m"), w("wq.sh"))  # (T, a)
        k_cache[li, pos] = im.requant_i8(im.matvec(w("wk"), xn), w("wk.m"), w("wk.sh"))  # (T, kv)
        v_cache[li, pos] = im.requant_i8(im.matvec(w("wv"), xn), w("wv.m"), w("wv.sh"))
        sm_m, sm_sh = int(w("softmax.m")[0]), int(w("softmax.sh")[0])
        ao_m, ao_sh = int(w("attn_out.m")[0]), int(w("attn_out.sh")[0])
        o = np.zeros((T, nh * hd), dtype=np.int8)
        for h in range(nh):
            hs, ks = slice(h * hd, (h + 1) * hd), slice(h // group * hd, (h // group + 1) * hd)
            kh = k_cache[li, :pos0 + T, ks].astype(np.int32)  # (P, hd): kv head h // group
            vh = v_cache[li, :pos0 + T, ks].astype(np.int32)
            for t in range(T):  # causal: row t sees cache positions 0 .. pos0+t
                n = pos0 + t + 1
                scores = kh[:n] @ q[t, hs].astype(np.int32)  # (n,) int32
                pr = im.softmax_q15(scores, sm_m, sm_sh, exp_t)  # (n,) Q15
                acc = (pr[:, None] * vh[:n]).sum(axis=0, dtype=np.int64).astype(np.int32)  # (hd,)
                o[t, hs] = im.requant_i8(acc, ao_m, ao_sh)
        x = im.residual_add(x, im.matvec(w("wo"), o), w("wo.m"), w("wo.sh"))
        # ---- feed-forward
        xn = im.rmsnorm(x, int(w("ffn_norm.k")[0]))
        hpre = im.requant_i8(im.matvec(w("w1"), xn), w("w1.m"), w("w1.sh"))  # (T, f)
        g = w("gelu")[hpre.astype(np.int32) + 128]  # int8 table lookup
        x = im.residual_add(x, im.matvec(w("w2"), g), w("w2.m"), w("w2.sh"))
    xn = im.rmsnorm(x, int(m.t("final_norm.k")[0]))
    acc = im.matvec(m.t("tok_emb"), xn)  # (T, vocab): the head is tied to the embedding
    return im.sat(im.mul_shift(acc, m.t("logits.m"), m.t("logits.sh")), im.I32_MIN, im.I32_MAX, np.int32)
