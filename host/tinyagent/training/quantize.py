"""Quantisation-aware fine-tuning, then export of the integer model.

1. Load `pruned/` (or `student/` when the run was not pruned) in float.
2. Calibrate the static activation scales on unpadded training transcripts (intexport.calibrate) and
   freeze them: `model.qat = scales`. From here the forward pass rounds and saturates exactly as the
   integer reference does.
3. Fine-tune in QAT mode, distilling from the float model it started as.
4. Save the QAT checkpoint (float weights + the scales in config.json) and the integer model
   (intexport.export_int_model(...).save) into `int8/`.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from ..integer import intmodel
from . import intexport
from .checkpoint import load_model, read_config
from .distill import DistillNet, check_alpha_temperature, distill_objective
from .model import GPT
from .run import Run, open_run
from .train import CKPT_EVERY, check_positive, fit, init_dist, stage_args

CALIB_EXAMPLES = 256  # training transcripts the activation ranges are measured on


def calibration_batches(run: Run, ctx: int, n: int = CALIB_EXAMPLES) -> list[torch.Tensor]:
    """The first n training transcripts, each (1, L - 1) without padding: the device never sees pads."""
    data = run.data(ctx).train
    return [data.tokens[i:i + 1, :int(data.lengths[i]) - 1] for i in range(min(n, len(data)))]


def load_qat_model(folder: str | Path) -> GPT:
    """The QAT checkpoint in `folder` (int8/) with its frozen scales set."""
    model = load_model(folder)
    model.qat = intmodel.qat_scales_from(read_config(folder)["qat"])
    return model


def quantize(run: str | Path | Run, *, qat_steps: int | None = None, alpha: float | None = None,
             temperature: float | None = None, batch: int | None = None, lr: float | None = None,
             call_weight: float | None = None, ckpt_every: int | None = None, device: str = "cpu", seed: int | None = None, resume: bool = False,
             progress: bool = True) -> Path:
    """QAT-fine-tune the last float stage into `int8/` and export the integer model there.
    Defaults (None) come from defaults.DEFAULTS["int8"].
    """
    check_positive(qat_steps=qat_steps, batch=batch, lr=lr, ckpt_every=ckpt_every, call_weight=call_weight)
    check_alpha_temperature(alpha, temperature)
    dist = init_dist(device)
    run = run if isinstance(run, Run) else open_run(run, writer=dist.main)
    if resume and run.done("int8"):
        return run.dir("int8")
    src = "pruned" if run.done("pruned") else "student"
    src_dir = run.require(src, "quantisation starts from the pruned or distilled student")
    a = stage_args(run, "int8", {"steps": qat_steps, "batch": batch, "lr": lr, "seed": seed, "alpha": alpha,
                                 "temperature": temperature, "call_weight": call_weight}, resume)
    float_model = load_model(src_dir, dist.device)
    model = load_model(src_dir)
    entry = run.stage("int8")
    if resume and entry["status"] == "running" and "qat" in entry:
        scales = intmodel.qat_scales_from(entry["qat"])  # the scales the interrupted session froze
    else:
        scales = intexport.calibrate(model, calibration_batches(run, model.cfg.ctx))
    model.qat = scales
    model.train()
    qat = asdict(scales)
    net = DistillNet(model, float_model.cfg, hidden=False)
    fit(run, "int8", net, distill_objective(float_model, a["alpha"], a["temperature"], 0.0),
        steps=a["steps"], batch=a["batch"], lr=a["lr"], seed=a["seed"], resume=resume, progress=progress,
        dist=dist, ckpt_every=ckpt_every or CKPT_EVERY, args=a, publish=lambda n: n.student,
        extra={"qat": qat, "source": src}, info={"qat": qat, "source": src}, call_weight=a["call_weight"])
    if dist.main:
        digest = intexport.export_int_model(model.cpu()).save(run.dir("int8"))
        run.update("int8", int_model_sha256=digest)
    dist.barrier()
    return run.dir("int8")
