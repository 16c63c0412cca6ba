"""Train the shipped model's recipe (v10's, which v13 kept; docs/training.md): a scratch student, no
teacher, pruned to three quarters of its FFN with recovery distilled from itself, QAT, the gate
chosen on val.

    python scripts/train_shipped.py runs/v13            # 60 to 95 minutes on one core of a 2-core machine
    python scripts/train_shipped.py runs/v13            # again: resumes where it stopped
    python scripts/ship_model.py runs/v13 models/default
    STEPS=18000 python scripts/train_shipped.py runs/plant agents/plant.toml   # another agent

THREADS (default 1) sets torch's threads, STEPS (default 15000, v10's) the scratch student's steps
(v11 and the plant waterer took 18000, v15 and v16 30000), CALL_WEIGHT (default 1) the loss weight of
the tokens that decide an action in every stage (data.loss_weights; v16 took 3); the run folder holds
every stage and resumes after a kill.
"""
import os
import sys
from pathlib import Path

import torch

from tinyagent.integer.config import STUDENT, TEACHER
from tinyagent.training.defaults import DEFAULTS
from tinyagent.training.gate import choose_gate
from tinyagent.training.prune import prune
from tinyagent.training.quantize import quantize
from tinyagent.training.run import create_run
from tinyagent.training.train import train_stage

AGENT = Path(__file__).resolve().parents[1] / "agents" / "default.toml"
SCRATCH_STEPS, FFN_KEEP, RECOVER_STEPS, QAT_STEPS = int(os.environ.get("STEPS", "15000")), 0.75, 2000, 1000
CALL_WEIGHT = float(os.environ.get("CALL_WEIGHT", "1"))


def main(out: str, agent: Path = AGENT) -> None:
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    run = Path(out)
    if not (run / "run.json").exists():
        c = DEFAULTS["corpus"]
        args = {"student_cfg": STUDENT.to_dict(), "teacher_cfg": TEACHER.to_dict(), "distill_steps": SCRATCH_STEPS,
                "ffn_keep": FFN_KEEP, "recover_steps": RECOVER_STEPS, "qat_steps": QAT_STEPS, "seed": 0,
                "call_weight": CALL_WEIGHT, **c}
        create_run(agent, run, seed=0, n_train=c["n_train"], n_val=c["n_val"], n_heldout=c["n_heldout"],
                   vocab_size=STUDENT.vocab_size, ctx=STUDENT.ctx, args=args)
    w = CALL_WEIGHT
    train_stage(run, "scratch", cfg=STUDENT, steps=SCRATCH_STEPS, seed=0, call_weight=w, resume=True)
    prune(run, ffn_keep=FFN_KEEP, heads_keep=1.0, recover_steps=RECOVER_STEPS, source="scratch", call_weight=w,
          resume=True)
    quantize(run, qat_steps=QAT_STEPS, call_weight=w, resume=True)
    print(choose_gate(run))


if __name__ == "__main__":
    main(sys.argv[1], *(Path(a) for a in sys.argv[2:3]))
