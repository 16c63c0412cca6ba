"""Knowledge distillation: the student learns from the teacher's softened distribution.

Loss on the generated positions (mask from data.py), averaged over them:

    alpha * T^2 * KL(softmax(t / T) || softmax(s / T))    the teacher's dark knowledge
  + (1 - alpha) * CE(s, labels)                            the hard labels
  + hidden_weight * sum_l MSE(P_l h_s[l], h_t[m(l)]) / mean(h_t[m(l)]^2)

The hidden term (off by default) matches residual states: student layer l (1..Ls) is paired with the
teacher layer at the same depth fraction, m(l) = round(l * Lt / Ls), through a learned projection
P_l (student dim -> teacher dim); dividing by the teacher state's mean square makes the term
independent of the teacher's residual scale. The projections are trained with the student and dropped
when it is saved.

The same module serves prune.py (recovery from the teacher) and quantize.py (QAT from the float model).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import bad_input
from ..integer.config import ModelConfig
from .checkpoint import load_model
from .model import GPT
from .run import Run, open_run
from .train import (
    CKPT_EVERY,
    check_dropout,
    check_positive,
    default_model,
    fit,
    init_dist,
    model_cfg,
    stage_args,
    train_stage,
    weighted_ce,
)


def layer_pairs(n_student: int, n_teacher: int) -> list[tuple[int, int]]:
    """(student, teacher) indices into the hidden lists (0 = embeddings, l = after block l)."""
    return [(l, round(l * n_teacher / n_student)) for l in range(1, n_student + 1)]


class DistillNet(nn.Module):
    """The student and, when hidden states are matched, its projections onto the teacher's width."""

    def __init__(self, student: GPT, teacher_cfg: ModelConfig, hidden: bool):
        super().__init__()
        self.student = student
        self.pairs = layer_pairs(student.cfg.n_layers, teacher_cfg.n_layers) if hidden else []
        self.proj = nn.ModuleList(nn.Linear(student.cfg.dim, teacher_cfg.dim, bias=False) for _ in self.pairs)

    def forward(self, x: torch.Tensor, at: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if not self.pairs:
            return self.student(x, at=at), []
        logits, hs = self.student(x, return_hidden=True, at=at)
        return logits, [p(hs[i]) for p, (i, _) in zip(self.proj, self.pairs)]


def kd_loss(s_logits: torch.Tensor, t_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(teacher || student) at temperature T, averaged over the rows: the generated positions,
    where both models' logits are taken (`at` the loss mask)."""
    t = F.log_softmax(t_logits / temperature, -1)
    s = F.log_softmax(s_logits / temperature, -1)
    kl = (t.exp() * (t - s)).sum(-1)  # (N,)
    return kl.sum() / max(kl.shape[0], 1) * temperature**2


def distill_objective(teacher: GPT, alpha: float, temperature: float, hidden_weight: float):
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)

    def objective(net, x, y, mask):
        at = mask > 0
        s_logits, s_hidden = net(x, at=at)
        with torch.no_grad():
            if s_hidden:
                t_logits, t_hidden = teacher(x, return_hidden=True, at=at)
            else:
                t_logits, t_hidden = teacher(x, at=at), []
        kd = kd_loss(s_logits, t_logits, temperature)
        ce = weighted_ce(s_logits, y[at], mask[at])
        loss = alpha * kd + (1 - alpha) * ce
        logs = {"kd": kd.item(), "ce": ce.item()}
        if s_hidden:
            pairs = (net.module if hasattr(net, "module") else net).pairs
            m = mask[..., None]
            hid = sum(((h - t_hidden[j]).pow(2) * m).sum() / ((t_hidden[j].pow(2) * m).sum() + 1e-8)
                      for h, (_, j) in zip(s_hidden, pairs))
            loss = loss + hidden_weight * hid
            logs["hidden"] = hid.item()
        logs["loss"] = loss.item()
        return loss, logs

    return objective


def check_alpha_temperature(alpha: float | None, temperature: float | None, hidden_weight: float | None = None) -> None:
    if alpha is not None and not 0.0 <= alpha <= 1.0:
        raise bad_input(f"alpha {alpha!r} is out of range (allowed: 0..1)")
    if temperature is not None and not temperature > 0:
        raise bad_input(f"temperature {temperature!r} must be positive (allowed: > 0)")
    if hidden_weight is not None and not hidden_weight >= 0:
        raise bad_input(f"hidden_weight {hidden_weight!r} must not be negative (allowed: >= 0)")


def distill(run: str | Path | Run, *, steps: int | None = None, alpha: float | None = None,
            temperature: float | None = None, hidden_weight: float | None = None, batch: int | None = None,
            lr: float | None = None, dropout: float | None = None, call_weight: float | None = None,
            student_cfg: ModelConfig | None = None,
            ckpt_every: int | None = None, device: str = "cpu", seed: int | None = None, resume: bool = False,
            progress: bool = True, scratch: bool = True) -> Path:
    """Distil `student/` from `teacher/`. With scratch=True, first train `scratch/`: the same student
    from random init on the hard labels only, same steps, batch and data, for comparison.
    Defaults (None) come from defaults.DEFAULTS["student"]; student_cfg defaults to the run's student
    (train(student_cfg=...), else config.STUDENT).
    """
    check_positive(steps=steps, batch=batch, lr=lr, ckpt_every=ckpt_every, call_weight=call_weight)
    check_alpha_temperature(alpha, temperature, hidden_weight)
    check_dropout(dropout)
    dist = init_dist(device)
    run = run if isinstance(run, Run) else open_run(run, writer=dist.main)
    teacher_dir = run.require("teacher", "distillation needs the teacher")
    common = dict(ckpt_every=ckpt_every, device=device, resume=resume, progress=progress)
    if scratch:
        train_stage(run, "scratch", cfg=student_cfg, steps=steps, batch=batch, lr=lr, dropout=dropout,
                    call_weight=call_weight, seed=seed, **common)
    if resume and run.done("student"):
        return run.dir("student")
    a = stage_args(run, "student", {"steps": steps, "batch": batch, "lr": lr, "dropout": dropout, "seed": seed,
                                    "alpha": alpha, "temperature": temperature, "hidden_weight": hidden_weight,
                                    "call_weight": call_weight,
                                    "model": student_cfg.to_dict() if student_cfg else None}, resume)
    a["model"] = a["model"] or default_model(run, "student")
    teacher = load_model(teacher_dir, dist.device)
    cfg = model_cfg(run, a["model"])
    if (cfg.ctx, cfg.vocab_size) != (teacher.cfg.ctx, teacher.cfg.vocab_size):
        raise bad_input(f"student ctx/vocab {cfg.ctx}/{cfg.vocab_size} differ from the teacher's "
                        f"{teacher.cfg.ctx}/{teacher.cfg.vocab_size} (they must match)")
    torch.manual_seed(a["seed"])
    net = DistillNet(GPT(cfg), teacher.cfg, hidden=a["hidden_weight"] > 0)
    fit(run, "student", net, distill_objective(teacher, a["alpha"], a["temperature"], a["hidden_weight"]),
        steps=a["steps"], batch=a["batch"], lr=a["lr"], seed=a["seed"], resume=resume, progress=progress,
        dist=dist, ckpt_every=ckpt_every or CKPT_EVERY, args=a, publish=lambda n: n.student,
        dropout=a["dropout"], call_weight=a["call_weight"])
    return run.dir("student")
