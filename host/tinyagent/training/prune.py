"""Structured pruning: drop whole FFN neurons and attention heads, then recover by distillation.

Importance (the rule; ties keep the lower index):
  FFN neuron j of a layer:  sum |w1[j, :] * g_ffn| + sum |w2[:, j]|
  head h of a layer:        sum over wq, wk, wv of |rows of head h * g_attn| + sum |wo[:, columns of head h]|
i.e. the L1 norm of everything the unit reads and writes, with the preceding RMSNorm gain g folded
into the input weights as the exported integer model has it. With grouped-query attention
(n_kv_heads < n_heads) the unit is a group: one kv head (its wk, wv rows) and the query heads that
read it (their wq rows and wo columns); whole groups are kept or dropped, so every kept query head
keeps its kv head and heads_keep applies to the n_kv_heads groups. Every layer keeps the same number of
units, the top round(keep * n) by importance in original order, so the ModelConfig stays uniform and
the pruned model is an ordinary, smaller GPT. Head size stays fixed.

Source: pruning starts from a trained student. `source="best"` (the default) takes whichever of the
distilled student and the scratch student has the lower loss on the validation split (training
phrasings, examples never trained on); the held-out phrasings are never used to choose. With a
teacher stronger than the student that is the distilled one; when distillation hurt, the scratch one.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ..errors import bad_input
from ..integer.config import ModelConfig
from .checkpoint import load_model
from .distill import DistillNet, check_alpha_temperature, distill_objective
from .model import GPT, Block
from .run import Run, open_run
from .train import CKPT_EVERY, check_dropout, check_positive, fit, init_dist, stage_args


def ffn_importance(blk: Block) -> torch.Tensor:
    """(ffn_dim,) L1 importance of each FFN neuron."""
    w1 = blk.w1.weight * blk.ffn_norm.weight[None, :]  # (ffn_dim, dim)
    return (w1.abs().sum(1) + blk.w2.weight.abs().sum(0)).detach()


def head_importance(blk: Block) -> torch.Tensor:
    """(kv_heads,) L1 importance of each attention head, or with grouped-query attention of each group
    (a kv head and the n_heads // n_kv_heads query heads that read it)."""
    cfg = blk.cfg
    g = blk.attn_norm.weight[None, :]
    if cfg.kv_heads != cfg.n_heads:
        nk, hd, d = cfg.kv_heads, cfg.head_dim, cfg.dim
        q = (blk.wq.weight * g).abs().view(cfg.n_heads, hd, d).sum((1, 2))
        q = q + blk.wo.weight.abs().view(d, cfg.n_heads, hd).sum((0, 2))  # (n_heads,)
        kv = sum((lin.weight * g).abs().view(nk, hd, d).sum((1, 2)) for lin in (blk.wk, blk.wv))  # (nk,)
        return (q.view(nk, -1).sum(1) + kv).detach()
    imp = sum((lin.weight * g).abs().view(cfg.n_heads, cfg.head_dim, cfg.dim).sum((1, 2))
              for lin in (blk.wq, blk.wk, blk.wv))  # rows of each head
    imp = imp + blk.wo.weight.abs().view(cfg.dim, cfg.n_heads, cfg.head_dim).sum((0, 2))  # its columns of wo
    return imp.detach()


def keep_count(n: int, keep: float) -> int:
    return max(1, min(n, round(n * keep)))


def pruned_config(cfg: ModelConfig, ffn_keep: float, heads_keep: float) -> ModelConfig:
    """The config `shrink` makes: keep_count of the FFN neurons, and of the heads (with grouped-query
    attention, of the kv groups, each with all its query heads)."""
    groups = keep_count(cfg.kv_heads, heads_keep)
    return replace(cfg, ffn_dim=keep_count(cfg.ffn_dim, ffn_keep), n_heads=groups * (cfg.n_heads // cfg.kv_heads),
                   n_kv_heads=None if cfg.n_kv_heads is None else groups)


def top_units(importance: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k most important units, in ascending index order (ties: lower index first)."""
    order = torch.argsort(-importance, stable=True)[:k]
    return torch.sort(order).values


def check_keep(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
        raise bad_input(f"{name} {value!r} is out of range (allowed: 0 < {name} <= 1)")


@torch.no_grad()
def shrink(model: GPT, ffn_keep: float, heads_keep: float) -> tuple[GPT, dict]:
    """A smaller GPT holding the kept units of `model`, and the kept indices per layer."""
    check_keep("ffn_keep", ffn_keep)
    check_keep("heads_keep", heads_keep)
    cfg = model.cfg
    pc = pruned_config(cfg, ffn_keep, heads_keep)
    nf, nk, hd, per = pc.ffn_dim, pc.kv_heads, cfg.head_dim, cfg.n_heads // cfg.kv_heads
    small = GPT(pc)
    small.tok_emb.weight.copy_(model.tok_emb.weight)
    small.pos_emb.weight.copy_(model.pos_emb.weight)
    small.final_norm.weight.copy_(model.final_norm.weight)
    kept: dict[str, list[list[int]]] = {"ffn": [], "heads": []}
    for src, dst in zip(model.blocks, small.blocks):
        f = top_units(ffn_importance(src), nf)
        k = top_units(head_importance(src), nk)  # kept kv heads (= kept heads for multi-head attention)
        h = (k[:, None] * per + torch.arange(per)[None, :]).flatten()  # their query heads
        cols = (h[:, None] * hd + torch.arange(hd)[None, :]).flatten()  # the kept query heads' channels
        kv_cols = (k[:, None] * hd + torch.arange(hd)[None, :]).flatten()  # and their kv heads'
        dst.attn_norm.weight.copy_(src.attn_norm.weight)
        dst.ffn_norm.weight.copy_(src.ffn_norm.weight)
        dst.wq.weight.copy_(src.wq.weight[cols])
        for name in ("wk", "wv"):
            getattr(dst, name).weight.copy_(getattr(src, name).weight[kv_cols])
        dst.wo.weight.copy_(src.wo.weight[:, cols])
        dst.w1.weight.copy_(src.w1.weight[f])
        dst.w2.weight.copy_(src.w2.weight[:, f])
        kept["ffn"].append(f.tolist())
        kept["heads"].append(h.tolist())
        if cfg.n_kv_heads is not None:
            kept.setdefault("kv_heads", []).append(k.tolist())
    return small, kept


SOURCES = ("best", "student", "scratch")


def pick_source(run: Run, source: str) -> tuple[str, dict]:
    """The stage to prune, and the validation losses it was chosen on."""
    if source != "best":  # a named student: only it must exist (a run may have trained scratch alone)
        run.require(source, "pruning starts from it")
        return source, {}
    run.require("student", "pruning starts from the distilled student")
    losses = {s: run.stage(s)["metrics"]["val"]["loss"] for s in ("student", "scratch")
              if run.done(s) and "metrics" in run.stage(s)}
    return (min(losses, key=lambda s: (losses[s], s != "student")) if losses else "student"), losses


def prune(run: str | Path | Run, *, ffn_keep: float | None = None, heads_keep: float | None = None,
          recover_steps: int | None = None, alpha: float | None = None, temperature: float | None = None,
          batch: int | None = None, lr: float | None = None, dropout: float | None = None,
          call_weight: float | None = None, ckpt_every: int | None = None, device: str = "cpu", seed: int | None = None, source: str | None = None,
          resume: bool = False, progress: bool = True) -> Path:
    """Prune the source student (see the module notes) into `pruned/`, then recover it for
    `recover_steps` by distillation from the teacher (from the unpruned source in a run that has no
    teacher). Defaults (None) come from defaults.DEFAULTS["pruned"].
    """
    if source is not None and source not in SOURCES:
        raise bad_input(f"prune source {source!r} is not a student stage (allowed: {', '.join(SOURCES)})")
    for name, v in (("ffn_keep", ffn_keep), ("heads_keep", heads_keep)):
        if v is not None:
            check_keep(name, v)
    check_positive(recover_steps=recover_steps, batch=batch, lr=lr, ckpt_every=ckpt_every, call_weight=call_weight)
    check_alpha_temperature(alpha, temperature)
    check_dropout(dropout)
    dist = init_dist(device)
    run = run if isinstance(run, Run) else open_run(run, writer=dist.main)
    if resume and run.done("pruned"):
        return run.dir("pruned")
    a = stage_args(run, "pruned", {"ffn_keep": ffn_keep, "heads_keep": heads_keep, "steps": recover_steps,
                                   "batch": batch, "lr": lr, "dropout": dropout, "seed": seed, "alpha": alpha,
                                   "temperature": temperature, "source": source, "call_weight": call_weight}, resume)
    src, losses = pick_source(run, a["source"])
    student = load_model(run.dir(src))
    # recovery distils from the teacher; a run trained without one (scratch only) from the unpruned source
    guide = "teacher" if run.done("teacher") else src
    teacher = load_model(run.dir(guide), dist.device)
    small, kept = shrink(student, a["ffn_keep"], a["heads_keep"])
    net = DistillNet(small, teacher.cfg, hidden=False)
    fit(run, "pruned", net, distill_objective(teacher, a["alpha"], a["temperature"], 0.0),
        steps=a["steps"], batch=a["batch"], lr=a["lr"], seed=a["seed"], resume=resume, progress=progress,
        dist=dist, ckpt_every=ckpt_every or CKPT_EVERY, args=a, publish=lambda n: n.student,
        extra={"pruned_from": src, "kept": kept}, dropout=a["dropout"], call_weight=a["call_weight"],
        info={"source": src, "source_val_loss": losses, "recovered_from": guide})
    return run.dir("pruned")
