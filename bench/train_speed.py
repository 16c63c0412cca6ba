"""Training throughput per stage: samples (transcripts) per second of each stage's step, on one thread
(or --threads N: `tinyagent train` uses every core for a model of the student's size, train.set_threads).

    python bench/train_speed.py RUN [--steps 40] [--threads 1] [--out bench/results/train-speed.json]

RUN is a run folder whose corpus is encoded (any run, e.g. one `scripts/train_shipped.py` made). Each
stage's own objective and model shape, on the run's training batches in the order a run sees them
(batch 32, steps 0..N), timed after 5 untimed warm-up steps: the teacher and the scratch student (cross-
entropy), distillation (the student against a teacher-shaped model; random weights: the time does not
depend on them), pruning's recovery (the student with three quarters of its FFN against the full one)
and QAT (fake quantisation against the float model).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from tinyagent.compare.bench import machine
from tinyagent.integer.config import STUDENT, TEACHER, ModelConfig
from tinyagent.training.data import Batches
from tinyagent.training.distill import DistillNet, distill_objective
from tinyagent.training.model import GPT
from tinyagent.training.run import open_run
from tinyagent.training.train import GRAD_CLIP, ce_objective, make_optimizer

WARMUP = 5


def stages(data) -> dict:
    """name -> (net, objective)."""
    from tinyagent.training import intexport

    torch.manual_seed(0)
    teacher, student = GPT(TEACHER), GPT(STUDENT)
    pruned_cfg = ModelConfig(**{**STUDENT.to_dict(), "ffn_dim": STUDENT.ffn_dim * 3 // 4})
    qat = GPT(pruned_cfg)
    qat.qat = intexport.calibrate(qat, [data.tokens[i:i + 1, :int(data.lengths[i]) - 1] for i in range(64)])
    return {
        "teacher": (GPT(TEACHER), ce_objective),
        "scratch": (GPT(STUDENT), ce_objective),
        "student (distilled)": (DistillNet(GPT(STUDENT), TEACHER, hidden=False),
                                distill_objective(teacher, 0.2, 2.0, 0.0)),
        "pruned (recovery)": (DistillNet(GPT(pruned_cfg), STUDENT, hidden=False),
                              distill_objective(student, 0.2, 2.0, 0.0)),
        "int8 (QAT)": (DistillNet(qat, pruned_cfg, hidden=False), distill_objective(GPT(pruned_cfg), 0.2, 2.0, 0.0)),
    }


def time_stage(net, objective, batches: Batches, steps: int) -> float:
    opt = make_optimizer(net, 1e-3)
    net.train()
    t0 = 0.0
    for step in range(WARMUP + steps):
        if step == WARMUP:
            t0 = time.perf_counter()
        x, y, mask = batches.get(step)
        loss, _ = objective(net, x, y, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), GRAD_CLIP)
        opt.step()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--out", default=None)
    ap.add_argument("--label", default="")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run = open_run(args.run, writer=False)
    train = run.data(STUDENT.ctx).train
    batches = Batches(train, args.batch, seed=0)
    rows = {}
    for name, (net, objective) in stages(train).items():
        s = time_stage(net, objective, batches, args.steps)
        rows[name] = {"steps": args.steps, "batch": args.batch, "seconds": round(s, 2),
                      "steps_per_s": round(args.steps / s, 2), "samples_per_s": round(args.steps * args.batch / s, 1)}
        print(f"{name:22s} {rows[name]['samples_per_s']:8.1f} samples/s  ({rows[name]['steps_per_s']} steps/s)",
              flush=True)
    if args.out:
        path = Path(args.out)
        res = json.loads(path.read_text()) if path.exists() else {}
        res[args.label or "now"] = {"machine": machine(), "threads": args.threads, "stages": rows}
        path.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
