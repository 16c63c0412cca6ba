"""Training: the shared loop every stage runs (`fit`), the stage arguments, and the teacher and scratch
stages. The whole chain (`chain.train`) and the stages after these (distill.py, prune.py,
quantize.py) build on this module; it imports none of them.

Resume: while a stage runs, `train_state.pt` in its folder holds the weights, optimizer, step and RNG
state (written every `ckpt_every` steps and on Ctrl-C). The data order is a function of (seed, step)
alone (data.Batches), so a resumed stage sees exactly the batches an uninterrupted one would.

Distributed: under torchrun (WORLD_SIZE > 1) the net is wrapped in DistributedDataParallel (gloo on
CPU, nccl on CUDA), each rank takes its slice of every global batch, and only rank 0 writes files.
"""
from __future__ import annotations

import atexit
import math
import os
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import EXIT_INTERRUPTED, TinyAgentError, bad_input
from ..integer.config import STUDENT, TEACHER, ModelConfig
from . import checkpoint
from .data import ANSWER, CALL, Batches, TokenData
from .defaults import DEFAULTS
from .model import GPT
from .run import SEED_MAX, Run, open_run

CKPT_EVERY = 50  # steps between resume checkpoints
WARMUP_FRACTION = 0.05
MIN_LR_FRACTION = 0.1  # cosine decay ends at this fraction of the peak
WEIGHT_DECAY = 0.1  # on matrices only
GRAD_CLIP = 1.0
SMALL_MODEL_PARAMS = 100_000  # below this, train on one thread (see set_threads)


# ---------------------------------------------------------------------------------------------------
# Process group
# ---------------------------------------------------------------------------------------------------

@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def any(self, flag: bool) -> bool:
        """True on every rank if `flag` is true on any (keeps ranks in step when one is interrupted)."""
        if self.world == 1:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())


def init_dist(device: str = "cpu") -> Dist:
    """Join the torchrun process group if there is one (idempotent); pick threads and device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise bad_input(f"device {device!r} is not supported (allowed: cpu, cuda, cuda:N)")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise bad_input(f"device {device!r} requested but torch sees no CUDA device (allowed here: cpu)")
    if world > 1:
        if device.startswith("cuda"):
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
            torch.cuda.set_device(device)
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if device.startswith("cuda") else "gloo")
            # Without this, a gloo process hangs at interpreter exit.
            atexit.register(torch.distributed.destroy_process_group)
    return Dist(rank, world, device)


def set_threads(cfg: ModelConfig, dist: Dist) -> None:
    """One thread for tiny models (their ops are too small to split, and a busy machine makes OpenMP's
    spinning threads wait on each other); otherwise the cores, shared between local ranks."""
    small = cfg.n_params() < SMALL_MODEL_PARAMS
    torch.set_num_threads(1 if small else max(1, min(8, (os.cpu_count() or 1) // dist.world)))


# ---------------------------------------------------------------------------------------------------
# Losses and metrics
# ---------------------------------------------------------------------------------------------------

def ce_objective(net: nn.Module, x, y, mask) -> tuple[torch.Tensor, dict]:
    """Mean cross-entropy over the positions whose target the model generates (mask > 0), weighted by
    the mask (data.loss_weights), the head run at those positions only."""
    at = mask > 0
    loss = weighted_ce(net(x, at=at), y[at], mask[at])
    return loss, {"loss": loss.item()}


def weighted_ce(logits: torch.Tensor, targets: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each row, averaged with weights `w` (the plain mean when every weight is 1)."""
    if bool((w == 1).all()):
        return F.cross_entropy(logits, targets, reduction="sum") / max(targets.shape[0], 1)
    return (F.cross_entropy(logits, targets, reduction="none") * w).sum() / w.sum()


@torch.no_grad()
def token_metrics(model: GPT, data: TokenData, batch: int = 64) -> dict:
    """Teacher-forced scores on the generated positions. Since each call's result is fed back as in
    the corpus, greedy decoding reproduces an example's transcript up to a point exactly when every
    generated token up to there is the argmax, so:
      tool_calls  share of examples whose calls come out right under greedy decoding: every call
                  token (brackets included) is the argmax, and the answer does not start with '['
      answers     share whose answer comes out word for word (templates are sampled, so < 1 even
                  for a perfect model)
      exact       share whose whole reply comes out word for word
    plus loss and token_acc over all generated tokens.
    """
    model.eval()
    device = next(model.parameters()).device
    order = torch.argsort(data.lengths)
    tot = {"loss": 0.0, "tokens": 0.0, "hit": 0.0, "tool_calls": 0.0, "answers": 0.0, "exact": 0.0}
    for i in range(0, len(data), batch):
        x, y, role = (t.to(device) for t in data.batch(order[i:i + batch]))
        logits = model(x)
        pred = logits.argmax(-1)
        gen, call, ans = role > 0, role == CALL, role == ANSWER
        miss = pred != y
        ans_start = ans & ~torch.cat([torch.zeros_like(ans[:, :1]), ans[:, :-1]], 1)
        ce = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view_as(y)
        tot["loss"] += float(ce[gen].sum())
        tot["tokens"] += float(gen.sum())
        tot["hit"] += float((~miss & gen).sum())
        calls_ok = ~(miss & call).any(1) & ~(ans_start & (pred == data.open_id)).any(1)
        tot["tool_calls"] += float(calls_ok.sum())
        tot["answers"] += float((~(miss & ans).any(1)).sum())
        tot["exact"] += float((~(miss & gen).any(1)).sum())
    model.train()
    n, t = max(len(data), 1), max(tot["tokens"], 1)
    return {"loss": round(tot["loss"] / t, 4), "token_acc": round(tot["hit"] / t, 4),
            **{k: round(tot[k] / n, 4) for k in ("tool_calls", "answers", "exact")}}


# ---------------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------------

def lr_at(step: int, steps: int, peak: float) -> float:
    warm = max(1, int(steps * WARMUP_FRACTION))
    if step < warm:
        return peak * (step + 1) / warm
    t = (step - warm) / max(1, steps - warm)
    return peak * (MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * t)))


def make_optimizer(net: nn.Module, lr: float) -> torch.optim.Optimizer:
    params = [p for p in net.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))


class StepProgress:
    """A rich progress bar over training steps: steps done, running loss, it/s, time left."""

    def __init__(self, name: str, total: int, start: int = 0, enabled: bool = True):
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]} it/s"),
                                 TimeElapsedColumn(), TimeRemainingColumn())
        self.task = self.progress.add_task(name, total=total, completed=start, loss="-", rate="-")
        self.ema: float | None = None  # smoothed loss
        self.rate: float | None = None  # smoothed steps per second
        self.t = time.monotonic()

    def __enter__(self):
        if self.enabled:
            self.progress.start()
        return self

    def advance(self, loss: float) -> None:
        if not self.enabled:
            return
        self.ema = loss if self.ema is None else 0.9 * self.ema + 0.1 * loss
        now = time.monotonic()
        rate, self.t = 1.0 / max(now - self.t, 1e-9), now
        self.rate = rate if self.rate is None else 0.9 * self.rate + 0.1 * rate
        self.progress.update(self.task, advance=1, loss=f"{self.ema:.3f}", rate=f"{self.rate:.1f}")

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.stop()


class _Interrupt:
    """Turns the first Ctrl-C into a flag the loop checks between steps; a second one aborts at once."""

    def __init__(self):
        self.hit = False
        self._old = None

    def __enter__(self):
        try:
            self._old = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self._old = None
        return self

    def _handle(self, *_):
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict]]


def fit(run: Run, stage: str, net: nn.Module, objective: Objective, *, steps: int, batch: int, lr: float,
        seed: int, resume: bool, progress: bool, dist: Dist, ckpt_every: int, args: dict,
        publish: Callable[[nn.Module], GPT] = lambda n: n, extra: dict | None = None,
        info: dict | None = None, dropout: float = 0.0, call_weight: float = 1.0) -> GPT:
    """Train `net` for `steps` steps on the run's training split and publish the result as `stage`.

    `net` holds every trainable parameter (the model, plus e.g. distillation projections); `publish`
    picks the GPT to save out of it. `extra` goes into the checkpoint's config.json, `info` into the
    stage's entry in run.json. `dropout` applies while training only; `call_weight` weighs the hard
    labels' loss on the tokens that decide an action (data.loss_weights). Returns the GPT, trained.
    """
    folder = run.dir(stage)
    state = checkpoint.load_state(folder) if resume and run.stage(stage)["status"] == "running" else None
    if state is None and dist.main:
        checkpoint.clear_state(folder)
    dist.barrier()
    run.begin(stage, args, fresh=state is None, **(info or {}))
    model = publish(net)
    model.dropout = dropout
    set_threads(model.cfg, dist)
    net.to(dist.device)
    opt = make_optimizer(net, lr)
    step, curve = 0, []
    if state is not None:
        try:
            net.load_state_dict(state["net"])
            opt.load_state_dict(state["optim"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise bad_input(f"{folder / checkpoint.STATE}: does not fit this stage's model "
                            f"({checkpoint.first_line(e)}); delete it to restart the stage") from None
        step, curve = int(state["step"]), list(state.get("curve", []))
        torch.set_rng_state(state["rng"])
        run.update(stage, resumed_from=step)
    batches = Batches(run.data(model.cfg.ctx).train, batch, seed, dist.rank, dist.world, call_weight=call_weight)
    ddp = net if dist.world == 1 else torch.nn.parallel.DistributedDataParallel(net)

    def save_state() -> None:
        if dist.main:
            checkpoint.save_state(folder, {"step": step, "net": net.state_dict(), "optim": opt.state_dict(),
                                           "rng": torch.get_rng_state(), "curve": curve,
                                           "data": {"seed": seed, "batch": batch}})
        run.update(stage, step=step)

    t0, window = time.monotonic(), []
    every = max(10, steps // 500)  # at most about 500 points on the stored loss curve
    bar = StepProgress(f"{stage:8s}", steps, start=step, enabled=progress and dist.main)
    with bar, _Interrupt() as intr:
        net.train()
        while step < steps:
            if dist.any(intr.hit):
                save_state()
                raise TinyAgentError(f"interrupted at step {step}/{steps} of stage '{stage}'; "
                                     f"a checkpoint is saved, resume to continue", EXIT_INTERRUPTED)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, steps, lr)
            x, y, mask = (t.to(dist.device) for t in batches.get(step))
            loss, logs = objective(ddp, x, y, mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), GRAD_CLIP)
            opt.step()
            step += 1
            window.append(logs["loss"])
            if step % every == 0 or step == steps:
                curve.append([step, round(sum(window) / len(window), 4)])
                window = []
            bar.advance(logs["loss"])
            if step % ckpt_every == 0 and step < steps:
                save_state()
    seconds = round(time.monotonic() - t0, 1)
    model.dropout = 0.0
    if dist.main:
        splits = run.data(model.cfg.ctx)
        metrics = {"val": token_metrics(model, splits.val), "heldout": token_metrics(model, splits.heldout)}
        checkpoint.save_model(folder, model.cpu(), stage=stage, step=step, extra=extra)
        model.to(dist.device)
        checkpoint.clear_state(folder)
        # Seconds of the last session only; a resumed stage reports the part it ran.
        run.update(stage, status="done", step=step, steps=steps, seconds=seconds, params=model.cfg.n_params(),
                   curve=curve, metrics=metrics)
    dist.barrier()
    return model


# ---------------------------------------------------------------------------------------------------
# Argument resolution (None = default, or on resume the value the stage was started with)
# ---------------------------------------------------------------------------------------------------

def resolve(given: dict, defaults: dict, stored: dict | None, where: str) -> dict:
    out = {}
    for k, v in given.items():
        base = stored[k] if stored and k in stored else defaults.get(k)
        if v is not None and stored and k in stored and v != stored[k]:
            raise bad_input(f"{where} was started with {k}={stored[k]!r}; resume continues with the same "
                            f"arguments (got {k}={v!r})")
        out[k] = base if v is None else v
    return out


def stage_args(run: Run, stage: str, given: dict, resume: bool) -> dict:
    entry = run.stage(stage)
    stored = entry.get("args") if resume and entry["status"] in ("running", "done") else None
    return resolve(given, {"seed": 0, **DEFAULTS[stage]}, stored, f"stage '{stage}' of {run.path}")


def check_dropout(dropout: float | None) -> None:
    if dropout is not None and not 0 <= dropout < 1:
        raise bad_input(f"dropout {dropout!r} is out of range (allowed: 0 <= dropout < 1)")


def check_positive(**values) -> None:
    for k, v in values.items():
        if v is not None and not v > 0:
            raise bad_input(f"{k} {v!r} must be positive (allowed: > 0)")


def check_seed(seed: int | None) -> None:
    if seed is not None and not (type(seed) is int and 0 <= seed <= SEED_MAX):
        raise bad_input(f"seed {seed!r} is out of range (allowed: an integer 0..{SEED_MAX})")


def default_model(run: Run, role: str) -> dict:
    """The teacher or student config the run was started with (config.TEACHER / STUDENT if none)."""
    stored = run.info.get("args", {}).get(f"{role}_cfg")
    return stored or (TEACHER if role == "teacher" else STUDENT).to_dict()


def model_cfg(run: Run, cfg: ModelConfig | dict) -> ModelConfig:
    """The config with the vocabulary the run's tokenizer actually has."""
    cfg = ModelConfig.from_dict(cfg) if isinstance(cfg, dict) else cfg
    return replace(cfg, vocab_size=run.info["vocab_size"])


# ---------------------------------------------------------------------------------------------------
# Stages: teacher/ and scratch/ (plain next-token training on the generated positions)
# ---------------------------------------------------------------------------------------------------

def train_stage(run: str | Path | Run, stage: str = "teacher", *, cfg: ModelConfig | None = None,
                steps: int | None = None, batch: int | None = None, lr: float | None = None,
                dropout: float | None = None, call_weight: float | None = None, ckpt_every: int | None = None,
                device: str = "cpu", seed: int | None = None, resume: bool = False, progress: bool = True) -> Path:
    """Train a model from random init on the hard labels: the teacher, or the scratch student."""
    if stage not in ("teacher", "scratch"):
        raise bad_input(f"stage {stage!r} is not trained from scratch (allowed: teacher, scratch)")
    dist = init_dist(device)
    run = run if isinstance(run, Run) else open_run(run, writer=dist.main)
    if resume and run.done(stage):
        return run.dir(stage)
    check_positive(steps=steps, batch=batch, lr=lr, ckpt_every=ckpt_every, call_weight=call_weight)
    check_dropout(dropout)
    check_seed(seed)
    a = stage_args(run, stage, {"steps": steps, "batch": batch, "lr": lr, "dropout": dropout, "seed": seed,
                                "call_weight": call_weight,
                                "model": cfg.to_dict() if cfg else None},
                   resume)
    a["model"] = a["model"] or default_model(run, "teacher" if stage == "teacher" else "student")
    torch.manual_seed(a["seed"])
    model = GPT(model_cfg(run, a["model"]))
    fit(run, stage, model, ce_objective, steps=a["steps"], batch=a["batch"], lr=a["lr"], seed=a["seed"],
        resume=resume, progress=progress, dist=dist, ckpt_every=ckpt_every or CKPT_EVERY, args=a,
        dropout=a["dropout"], call_weight=a["call_weight"])
    return run.dir(stage)
