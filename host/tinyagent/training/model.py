"""The decoder-only transformer, in float and in quantisation-aware (QAT) form.

One architecture serves teacher and student; only ModelConfig differs. It is chosen so that every op
has a simple integer form (docs/integer-contract.md): RMSNorm without bias, learned absolute positions
(no RoPE tables), GELU (an int8 lookup table on the device), no biases, output head tied to the token
embedding (per-row scales serve both the lookup and the logits).

In QAT mode (`model.qat = QatScales(...)`) the forward pass computes, in float, the same numbers the
integer reference computes: every quantisation point rounds half up and saturates as the reference
does, and the straight-through estimator carries gradients past the rounding.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..integer.config import ModelConfig, QatScales


# ---------------------------------------------------------------------------------------------------
# QAT: static activation scales and fake quantisation that rounds exactly as the reference does
# ---------------------------------------------------------------------------------------------------

def round_half_up(x: torch.Tensor) -> torch.Tensor:
    return torch.floor(x + 0.5)


def fake_quant(x: torch.Tensor, scale: float | torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """Quantise to integers in [lo, hi] at `scale` and back; straight-through gradient."""
    q = torch.clamp(round_half_up(x / scale), lo, hi) * scale
    return x + (q - x).detach()


def weight_scales(w: torch.Tensor) -> torch.Tensor:
    """Symmetric per-output-channel (per-row) int8 scales: max |w| maps to 127."""
    return torch.clamp(w.detach().abs().amax(dim=1), min=1e-8) / 127.0


def fake_quant_weight(w: torch.Tensor) -> torch.Tensor:
    s = weight_scales(w)[:, None]
    return fake_quant(w, s, -127, 127)


def int_softmax_probs(scores: torch.Tensor, steps: int) -> torch.Tensor:
    """The integer softmax (exp table at 1/steps nat, Q15 probabilities), simulated in float.

    scores: (..., T) already scaled to nats, -inf where masked. Returns probabilities in Q15/32768.
    """
    mx = scores.amax(dim=-1, keepdim=True)
    z = torch.clamp(round_half_up((mx - scores) * steps), 0, 255)
    z = torch.where(torch.isfinite(scores), z, torch.full_like(z, 255))
    e = round_half_up(32768.0 * torch.exp(-z / steps))  # EXP table, uint16
    e = torch.where(torch.isfinite(scores), e, torch.zeros_like(e))
    inv = torch.floor((2.0**30) / e.sum(dim=-1, keepdim=True))
    return torch.floor((e * inv + 2.0**14) / 2.0**15) / 32768.0


# ---------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------

def _heads_kv(t: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """(B, T, kv_heads*hd) keys or values -> (B, n_heads, T, hd), kv head h // (n_heads // kv_heads)
    repeated for each query head of its group (none repeated for multi-head attention)."""
    B, T, _ = t.shape
    g = cfg.kv_heads
    t = t.view(B, T, g, cfg.head_dim).transpose(1, 2)  # (B, g, T, hd)
    return t if g == cfg.n_heads else t.repeat_interleave(cfg.n_heads // g, dim=1)


class RMSNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        # No epsilon: the integer form returns 0 for an all-zero row, as this does up to 1e-12.
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-12)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        a, kv = cfg.n_heads * cfg.head_dim, cfg.kv_dim
        self.cfg = cfg
        self.attn_norm = RMSNorm(cfg.dim)
        self.wq = nn.Linear(cfg.dim, a, bias=False)
        self.wk = nn.Linear(cfg.dim, kv, bias=False)
        self.wv = nn.Linear(cfg.dim, kv, bias=False)
        self.wo = nn.Linear(a, cfg.dim, bias=False)
        self.ffn_norm = RMSNorm(cfg.dim)
        self.w1 = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.w2 = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.pos_emb = nn.Embedding(cfg.ctx, cfg.dim)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        # The final norm has no gain: the head shares the embedding's int8 table and per-row scales,
        # so a per-column gain could not be folded into it.
        self.final_norm = RMSNorm(cfg.dim)
        self.final_norm.weight.requires_grad_(False)
        self.qat: QatScales | None = None
        # Training-only regularisation on the embedding and on each residual branch; a training
        # argument, not part of the config (the exported model has no dropout). Off in QAT mode.
        self.dropout = 0.0
        self.apply(self._init)
        for b in self.blocks:  # scaled init of the residual projections (GPT-2)
            nn.init.normal_(b.wo.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))
            nn.init.normal_(b.w2.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    # -- helpers that are plain float ops, or their QAT twins --------------------------------------

    def _linear(self, x: torch.Tensor, lin: nn.Linear, gain: torch.Tensor | None) -> torch.Tensor:
        """x @ W.T with the preceding RMSNorm gain folded into W's input columns (as exported)."""
        w = lin.weight if gain is None else lin.weight * gain[None, :]
        if self.qat is not None:
            w = fake_quant_weight(w)
        return x @ w.t()

    def _q8(self, x: torch.Tensor, scale: float) -> torch.Tensor:
        return fake_quant(x, scale, -128, 127) if self.qat is not None else x

    def _resid(self, x: torch.Tensor) -> torch.Tensor:
        return fake_quant(x, self.qat.resid, -32768, 32767) if self.qat is not None else x

    def _norm(self, x: torch.Tensor, norm: RMSNorm, i: int) -> torch.Tensor:
        y = norm.normalize(x)
        return self._q8(y, self.qat.norm[i]) if self.qat is not None else y

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.dropout > 0 and self.qat is None:
            return F.dropout(x, self.dropout, training=True)
        return x

    def _embed(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        pos = torch.arange(T, device=idx.device)
        if self.qat is None:
            return self.tok_emb(idx) + self.pos_emb(pos)[None]
        # Each embedding term is requantised to the residual scale on its own, then added.
        tok = self._resid(F.embedding(idx, fake_quant_weight(self.tok_emb.weight)))
        p = self._resid(fake_quant_weight(self.pos_emb.weight)[pos])[None]
        return self._resid(tok + p)

    def forward(self, idx: torch.Tensor, return_hidden: bool = False):
        """idx: (B, T) token ids. Returns logits (B, T, V) [and the list of residual states]."""
        cfg, qat = self.cfg, self.qat
        B, T = idx.shape
        x = self._drop(self._embed(idx))  # (B, T, d)
        hidden = [x]
        mask = torch.ones(T, T, dtype=torch.bool, device=idx.device).tril()
        for li, blk in enumerate(self.blocks):
            # ---- attention
            xn = self._norm(x, blk.attn_norm, 2 * li)
            g = blk.attn_norm.weight
            q = self._linear(xn, blk.wq, g)
            k = self._linear(xn, blk.wk, g)
            v = self._linear(xn, blk.wv, g)
            if qat is not None:
                q, k, v = self._q8(q, qat.q[li]), self._q8(k, qat.k[li]), self._q8(v, qat.v[li])
            nh, hd = cfg.n_heads, cfg.head_dim
            q = q.view(B, T, nh, hd).transpose(1, 2)  # (B, nh, T, hd)
            k, v = _heads_kv(k, cfg), _heads_kv(v, cfg)  # (B, nh, T, hd): each query head's kv head
            att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)  # (B, nh, T, T), in nats
            att = att.masked_fill(~mask, float("-inf"))
            p = F.softmax(att, dim=-1)
            if qat is not None:
                p = p + (int_softmax_probs(att.detach(), qat.sm_steps) - p).detach()
            o = (p @ v).transpose(1, 2).reshape(B, T, nh * hd)  # (B, T, a)
            if qat is not None:
                o = self._q8(o, qat.attn[li])
            x = self._resid(x + self._drop(self._resid(self._linear(o, blk.wo, None))))
            # ---- feed-forward
            xn = self._norm(x, blk.ffn_norm, 2 * li + 1)
            h = self._linear(xn, blk.w1, blk.ffn_norm.weight)
            if qat is not None:
                h = self._q8(h, qat.ffn_h[li])
            a = F.gelu(h)
            if qat is not None:
                a = self._q8(a, qat.ffn_g[li])
            x = self._resid(x + self._drop(self._resid(self._linear(a, blk.w2, None))))
            hidden.append(x)
        xn = self._norm(x, self.final_norm, 2 * cfg.n_layers)
        logits = self._linear(xn, self.tok_emb, None)
        if qat is not None:
            logits = fake_quant(logits, qat.logits, -(2**31), 2**31 - 1)
        return (logits, hidden) if return_hidden else logits

    @torch.no_grad()
    def observe(self, idx: torch.Tensor) -> dict[str, list[float]]:
        """Float forward that records max |value| at every quantisation point (for calibration)."""
        assert self.qat is None, "calibrate in float mode"
        cfg = self.cfg
        rec: dict[str, list[float]] = {k: [] for k in
                                       ("resid", "norm", "q", "k", "v", "attn", "ffn_h", "ffn_g", "logits")}
        amax = lambda t: float(t.abs().max())  # noqa: E731
        B, T = idx.shape
        x = self._embed(idx)
        rec["resid"].append(amax(x))
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        for blk in self.blocks:
            xn = blk.attn_norm.normalize(x)
            rec["norm"].append(amax(xn))
            g = blk.attn_norm.weight
            q, k, v = (self._linear(xn, w, g) for w in (blk.wq, blk.wk, blk.wv))
            for name, t in (("q", q), ("k", k), ("v", v)):
                rec[name].append(amax(t))
            nh, hd = cfg.n_heads, cfg.head_dim
            qh = q.view(B, T, nh, hd).transpose(1, 2)
            kh, vh = _heads_kv(k, cfg), _heads_kv(v, cfg)
            att = ((qh @ kh.transpose(-2, -1)) / math.sqrt(hd)).masked_fill(~mask, float("-inf"))
            o = (F.softmax(att, -1) @ vh).transpose(1, 2).reshape(B, T, nh * hd)
            rec["attn"].append(amax(o))
            y = self._linear(o, blk.wo, None)
            rec["resid"].append(amax(y))
            x = x + y
            rec["resid"].append(amax(x))
            xn = blk.ffn_norm.normalize(x)
            rec["norm"].append(amax(xn))
            h = self._linear(xn, blk.w1, blk.ffn_norm.weight)
            rec["ffn_h"].append(amax(h))
            a = F.gelu(h)
            rec["ffn_g"].append(amax(a))
            y = self._linear(a, blk.w2, None)
            rec["resid"].append(amax(y))
            x = x + y
            rec["resid"].append(amax(x))
        xn = self.final_norm.normalize(x)
        rec["norm"].append(amax(xn))
        rec["logits"].append(amax(self._linear(xn, self.tok_emb, None)))
        return rec
