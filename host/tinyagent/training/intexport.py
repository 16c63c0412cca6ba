"""From the float QAT model to the integer model, once, on the host (torch).

`calibrate` measures activation ranges in float and fixes the static scales; `export_int_model`
turns a QAT model into an IntModel (intmodel.py), which is all that the reference and the device see.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..integer import intmath as im
from ..integer.config import QatScales
from ..integer.intmodel import IntModel
from .model import GPT, weight_scales

RESID_HEADROOM = 1.5  # the int16 residual keeps 50% above the largest calibrated value
LOGIT_RANGE = 8192  # calibrated max |logit| maps here; leaves int16-sized logits with headroom


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
