"""The decoder-only transformer, in float and in quantisation-aware (QAT) form.

One architecture serves teacher and student; only ModelConfig differs. It is chosen so that every op
has a simple integer form (docs/integer-contract.md): RMSNorm without bias, learned absolute positions
(no RoPE tables), GELU (an int8 lookup table on the device), no biases, output head tied to the token
embedding (per-row scales serve both the lookup and the logits).

Every quantisation point of the integer model is one call of the model's `Quant` hook, `quant(kind,
x, i)`, in the one forward pass: plain float, it returns x; in QAT mode (`model.qat = QatScales(...)`)
it rounds half up and saturates exactly as the integer reference does, with the straight-through
estimator carrying gradients past the rounding; in calibration (`observe`) it records max |x|.
"""
from __future__ import annotations

import math

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


def int_softmax_probs(scores: torch.Tensor, steps: int, keep: torch.Tensor | None = None) -> torch.Tensor:
    """The integer softmax (exp table at 1/steps nat, Q15 probabilities), simulated in float.

    scores: (..., T) already scaled to nats, -inf where masked; `keep`, if given, is where they are
    finite (the causal mask, broadcast), which saves finding it. Every row has a finite score. Returns
    probabilities in Q15/32768.
    """
    mx = scores.amax(dim=-1, keepdim=True)
    z = torch.clamp(round_half_up((mx - scores) * steps), 0, 255)  # masked: inf, so 255
    e = round_half_up(32768.0 * torch.exp(-z / steps))  # EXP table, uint16
    e = torch.where(torch.isfinite(scores) if keep is None else keep, e, 0.0)
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


class Quant:
    """The hook at every quantisation point, shared by the model and its blocks.

    `scales` set: QAT (fake quantisation at the frozen scales). `record` set: calibration (max |x| per
    kind, in the order of the forward pass, which is the order of QatScales' per-point lists)."""
    KINDS = ("resid", "norm", "q", "k", "v", "attn", "ffn_h", "ffn_g", "logits")

    def __init__(self) -> None:
        self.scales: QatScales | None = None
        self.record: dict[str, list[float]] | None = None

    def __call__(self, kind: str, x: torch.Tensor, i: int = 0, recorded: bool = True) -> torch.Tensor:
        """x at point `kind` (the i-th of its kind: a layer, or a norm); `recorded` False for the two
        embedding terms, which are requantised before their sum but calibrated as the sum only."""
        if self.record is not None and recorded:
            self.record[kind].append(float(x.detach().abs().max()))
        s = self.scales
        if s is None:
            return x
        if kind == "resid":
            return fake_quant(x, s.resid, -32768, 32767)
        if kind == "logits":
            return fake_quant(x, s.logits, -(2**31), 2**31 - 1)
        return fake_quant(x, getattr(s, kind)[i], -128, 127)

    def weight(self, w: torch.Tensor) -> torch.Tensor:
        return fake_quant_weight(w) if self.scales is not None else w


def _linear(x: torch.Tensor, lin: nn.Linear, quant: Quant, gain: torch.Tensor | None = None) -> torch.Tensor:
    """x @ W.T with the preceding RMSNorm gain folded into W's input columns (as exported)."""
    w = lin.weight if gain is None else lin.weight * gain[None, :]
    return x @ quant.weight(w).t()


class RMSNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        # No epsilon: the integer form returns 0 for an all-zero row, as this does up to 1e-12.
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-12)


class Block(nn.Module):
    """Pre-norm attention and feed-forward, each a residual branch. Layer `li` of the model."""

    def __init__(self, cfg: ModelConfig, li: int, quant: Quant):
        super().__init__()
        a, kv = cfg.n_heads * cfg.head_dim, cfg.kv_dim
        self.cfg, self.li, self.quant = cfg, li, quant
        self.attn_norm = RMSNorm(cfg.dim)
        self.wq = nn.Linear(cfg.dim, a, bias=False)
        self.wk = nn.Linear(cfg.dim, kv, bias=False)
        self.wv = nn.Linear(cfg.dim, kv, bias=False)
        self.wo = nn.Linear(a, cfg.dim, bias=False)
        self.ffn_norm = RMSNorm(cfg.dim)
        self.w1 = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.w2 = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)
        self.dropout = 0.0  # set by the model

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.dropout > 0 and self.quant.scales is None:
            return F.dropout(x, self.dropout, training=True)
        return x

    def attention(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        cfg, Q, li = self.cfg, self.quant, self.li
        B, T, _ = x.shape
        xn = Q("norm", self.attn_norm.normalize(x), 2 * li)
        g = self.attn_norm.weight
        q = Q("q", _linear(xn, self.wq, Q, g), li)
        k = Q("k", _linear(xn, self.wk, Q, g), li)
        v = Q("v", _linear(xn, self.wv, Q, g), li)
        nh, hd = cfg.n_heads, cfg.head_dim
        q = q.view(B, T, nh, hd).transpose(1, 2)  # (B, nh, T, hd)
        k, v = _heads_kv(k, cfg), _heads_kv(v, cfg)  # (B, nh, T, hd): each query head's kv head
        if Q.scales is None and Q.record is None:
            # float: torch's fused causal attention (the same softmax(q k^T / sqrt(hd)) v, without
            # the (B, nh, T, T) scores in memory; about a third faster to train on a CPU)
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return Q("resid", _linear(Q("attn", o.transpose(1, 2).reshape(B, T, nh * hd), li), self.wo, Q))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)  # (B, nh, T, T), in nats
        att = att.masked_fill(~mask, float("-inf"))
        p = F.softmax(att, dim=-1)
        if Q.scales is not None:  # the integer softmax's probabilities, straight through
            p = p + (int_softmax_probs(att.detach(), Q.scales.sm_steps, mask) - p).detach()
        o = Q("attn", (p @ v).transpose(1, 2).reshape(B, T, nh * hd), li)  # (B, T, a)
        return Q("resid", _linear(o, self.wo, Q))

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        Q, li = self.quant, self.li
        xn = Q("norm", self.ffn_norm.normalize(x), 2 * li + 1)
        h = Q("ffn_h", _linear(xn, self.w1, Q, self.ffn_norm.weight), li)
        a = Q("ffn_g", F.gelu(h), li)
        return Q("resid", _linear(a, self.w2, Q))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.quant("resid", x + self._drop(self.attention(x, mask)))
        return self.quant("resid", x + self._drop(self.feed_forward(x)))


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.quant = Quant()
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.pos_emb = nn.Embedding(cfg.ctx, cfg.dim)
        self.blocks = nn.ModuleList([Block(cfg, li, self.quant) for li in range(cfg.n_layers)])
        # The final norm has no gain: the head shares the embedding's int8 table and per-row scales,
        # so a per-column gain could not be folded into it.
        self.final_norm = RMSNorm(cfg.dim)
        self.final_norm.weight.requires_grad_(False)
        self.dropout = 0.0
        self.apply(self._init)
        for b in self.blocks:  # scaled init of the residual projections (GPT-2)
            nn.init.normal_(b.wo.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))
            nn.init.normal_(b.w2.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    @property
    def qat(self) -> QatScales | None:
        """The frozen activation scales: set, the forward pass is the QAT one."""
        return self.quant.scales

    @qat.setter
    def qat(self, scales: QatScales | None) -> None:
        self.quant.scales = scales

    @property
    def dropout(self) -> float:
        """Training-only regularisation on the embedding and on each residual branch; a training
        argument, not part of the config (the exported model has no dropout). Off in QAT mode."""
        return self._dropout

    @dropout.setter
    def dropout(self, p: float) -> None:
        self._dropout = p
        for b in self.blocks:
            b.dropout = p

    def _embed(self, idx: torch.Tensor) -> torch.Tensor:
        """Each embedding term is requantised to the residual scale on its own, then their sum."""
        Q = self.quant
        pos = torch.arange(idx.shape[1], device=idx.device)
        tok = Q("resid", F.embedding(idx, Q.weight(self.tok_emb.weight)), recorded=False)
        p = Q("resid", Q.weight(self.pos_emb.weight)[pos], recorded=False)[None]
        x = Q("resid", tok + p)
        if self.training and self._dropout > 0 and Q.scales is None:
            x = F.dropout(x, self._dropout, training=True)
        return x

    def forward(self, idx: torch.Tensor, return_hidden: bool = False, at: torch.Tensor | None = None):
        """idx: (B, T) token ids. Returns logits (B, T, V) [and the list of residual states]; with `at`
        ((B, T) bool), the logits of those positions only, (N, V) in row order: training's losses need
        no others, and the head is a fifth of the work."""
        T = idx.shape[1]
        x = self._embed(idx)  # (B, T, d)
        hidden = [x]
        mask = torch.ones(T, T, dtype=torch.bool, device=idx.device).tril()
        for blk in self.blocks:
            x = blk(x, mask)
            hidden.append(x)
        if at is not None:
            x = x[at]
        xn = self.quant("norm", self.final_norm.normalize(x), 2 * self.cfg.n_layers)
        logits = self.quant("logits", _linear(xn, self.tok_emb, self.quant))
        return (logits, hidden) if return_hidden else logits

    @torch.no_grad()
    def observe(self, idx: torch.Tensor) -> dict[str, list[float]]:
        """Calibration: the float forward pass, recording max |value| at every quantisation point."""
        assert self.qat is None, "calibrate in float mode"
        was_training = self.training
        self.eval()  # no dropout
        self.quant.record = {k: [] for k in Quant.KINDS}
        try:
            self(idx)
            return self.quant.record
        finally:
            self.quant.record = None
            self.train(was_training)
