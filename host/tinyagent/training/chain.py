"""The whole chain: `train(agent, out)` makes a run folder and runs teacher -> scratch -> student
(distill.py) -> pruned (prune.py) -> int8 (quantize.py) -> the confidence gate (gate.py); and its plan:
each stage's steps and the time they take here, fitted to a budget. Each stage can also be called on
its own on an existing run.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..errors import bad_input
from ..fileio import check_writable
from ..integer.config import STUDENT, TEACHER, ModelConfig
from . import intexport
from .defaults import DEFAULTS
from .distill import check_alpha_temperature, distill
from .gate import choose_gate
from .model import GPT
from .prune import check_keep, prune
from .quantize import quantize
from .run import RUN_FILE, STAGES, create_run, open_run
from .train import (
    GRAD_CLIP,
    Dist,
    ce_objective,
    check_dropout,
    check_positive,
    check_seed,
    init_dist,
    make_optimizer,
    model_cfg,
    resolve,
    set_threads,
    train_stage,
)


def train(agent: str | Path | None, out: str | Path, *, steps: int | None = None, batch: int | None = None,
          lr: float | None = None, device: str = "cpu", seed: int | None = None, resume: bool = False,
          teacher_cfg: ModelConfig | None = None, student_cfg: ModelConfig | None = None,
          until: str = "int8", progress: bool = True,
          distill_steps: int | None = None, alpha: float | None = None, temperature: float | None = None,
          hidden_weight: float | None = None, ffn_keep: float | None = None, heads_keep: float | None = None,
          recover_steps: int | None = None, qat_steps: int | None = None, dropout: float | None = None,
          n_train: int | None = None, n_val: int | None = None, n_heldout: int | None = None,
          ckpt_every: int | None = None, call_weight: float | None = None) -> Path:
    """Make the run folder `out` from the agent spec and run the chain up to and including `until`.

    Defaults (None) come from DEFAULTS; teacher_cfg defaults to config.TEACHER, student_cfg to
    config.STUDENT. `steps` is the teacher's, `distill_steps` the student's and scratch's, `batch` and
    `lr` apply to teacher, scratch and student, `dropout` to every float stage, `call_weight` (the
    loss weight of the tokens that decide an action, data.loss_weights) to every stage. With resume=True, `out`
    must be a run folder: finished stages are kept, the running one continues from its checkpoint, and
    the arguments are the stored ones (an explicit argument that differs is rejected); `agent` may then
    be None, and if given must be the spec the run started on (as must the run's spec.toml).
    """
    if until not in STAGES:
        raise bad_input(f"until={until!r} is not a stage (allowed: {', '.join(STAGES)})")
    for name, v in (("ffn_keep", ffn_keep), ("heads_keep", heads_keep)):
        if v is not None:
            check_keep(name, v)
    check_alpha_temperature(alpha, temperature, hidden_weight)
    check_dropout(dropout)
    check_positive(steps=steps, batch=batch, lr=lr, distill_steps=distill_steps, recover_steps=recover_steps,
                   qat_steps=qat_steps, n_train=n_train, n_val=n_val, n_heldout=n_heldout, ckpt_every=ckpt_every,
                   call_weight=call_weight)
    check_seed(seed)
    given = {"steps": steps, "batch": batch, "lr": lr, "seed": seed, "distill_steps": distill_steps,
             "alpha": alpha, "temperature": temperature, "hidden_weight": hidden_weight, "ffn_keep": ffn_keep,
             "heads_keep": heads_keep, "recover_steps": recover_steps, "qat_steps": qat_steps,
             "dropout": dropout, "call_weight": call_weight, "n_train": n_train, "n_val": n_val, "n_heldout": n_heldout,
             "teacher_cfg": teacher_cfg.to_dict() if teacher_cfg else None,
             "student_cfg": student_cfg.to_dict() if student_cfg else None}
    defaults = chain_defaults()
    dist = init_dist(device)
    out = Path(out)
    # A run killed while it was being created has no run.json yet: resuming it starts it over.
    if resume and not out.is_dir():
        raise bad_input(f"{out}: no run to resume (not a folder); drop --resume to start a new run there")
    if resume and (out / RUN_FILE).exists():
        run = open_run(out, writer=dist.main)
        if agent is not None:  # an --agent given on resume must be the spec the run started on
            run.check_same_spec(Path(agent))
        run.check_same_spec(out / "spec.toml")
        a = resolve(given, defaults, run.info["args"], f"run {out}")
    else:
        if not resume and out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise bad_input(f"{out} already exists and is not empty (--resume continues a run there, "
                            "or choose a new folder)")
        a = resolve(given, defaults, None, "train")
        check_writable(out)  # a read-only --out: one line before the corpus is made, not after
        tc, sc = ModelConfig.from_dict(a["teacher_cfg"]), ModelConfig.from_dict(a["student_cfg"])
        if (tc.ctx, tc.vocab_size) != (sc.ctx, sc.vocab_size):
            raise bad_input(f"teacher and student must share ctx and vocab_size (teacher {tc.ctx}/{tc.vocab_size}, "
                            f"student {sc.ctx}/{sc.vocab_size})")
        run = None
        if dist.main:
            run = create_run(agent, out, seed=a["seed"], n_train=a["n_train"], n_val=a["n_val"],
                             n_heldout=a["n_heldout"], vocab_size=tc.vocab_size, ctx=tc.ctx, args=a)
        dist.barrier()
        if run is None:
            run = open_run(out, writer=False)
    common = {"device": device, "resume": resume, "progress": progress, "ckpt_every": ckpt_every}
    last = STAGES.index(until)
    drop, w = a["dropout"], a["call_weight"]
    train_stage(run, "teacher", cfg=ModelConfig.from_dict(a["teacher_cfg"]), steps=a["steps"], batch=a["batch"],
                lr=a["lr"], dropout=drop, call_weight=w, seed=a["seed"], **common)
    if last >= STAGES.index("scratch"):
        train_stage(run, "scratch", cfg=ModelConfig.from_dict(a["student_cfg"]), steps=a["distill_steps"],
                    batch=a["batch"], lr=a["lr"], dropout=drop, call_weight=w, seed=a["seed"], **common)
    if last >= STAGES.index("student"):
        distill(run, steps=a["distill_steps"], alpha=a["alpha"], temperature=a["temperature"],
                hidden_weight=a["hidden_weight"], batch=a["batch"], lr=a["lr"], dropout=drop, call_weight=w,
                student_cfg=ModelConfig.from_dict(a["student_cfg"]), seed=a["seed"], scratch=False, **common)
    if last >= STAGES.index("pruned"):
        prune(run, ffn_keep=a["ffn_keep"], heads_keep=a["heads_keep"], recover_steps=a["recover_steps"],
              alpha=a["alpha"], temperature=a["temperature"], batch=a["batch"], dropout=drop, call_weight=w,
              seed=a["seed"], **common)
    if last >= STAGES.index("int8"):
        quantize(run, qat_steps=a["qat_steps"], alpha=a["alpha"], temperature=a["temperature"],
                 batch=a["batch"], call_weight=w, seed=a["seed"], **common)
        if dist.main:
            choose_gate(run.path)  # the confidence gate's threshold, on val, beside the integer model
    return out


# ---------------------------------------------------------------------------------------------------
# The plan: each stage's steps and the time they take on this machine; fitting them to a budget
# ---------------------------------------------------------------------------------------------------

# train()'s step arguments and the stages each one sets (distill_steps: the scratch and the distilled
# student, trained alike for the comparison)
STEP_ARGS: dict[str, tuple[str, ...]] = {"steps": ("teacher",), "distill_steps": ("scratch", "student"),
                                         "recover_steps": ("pruned",), "qat_steps": ("int8",)}
MIN_STEPS = {"steps": 300, "distill_steps": 300, "recover_steps": 100, "qat_steps": 100}  # a budget's floor
STEP_ROUND = 10  # scaled steps are a multiple of this
TIMED_STEPS = 3  # warm-up: steps timed per model, after one untimed
PLAN_SAMPLE = 200  # examples generated and tokenised to measure the corpus and its transcript length


def chain_defaults() -> dict:
    """train()'s arguments when none are given, from DEFAULTS (one table for the CLI and the API)."""
    t, s = DEFAULTS["teacher"], DEFAULTS["student"]
    return {**t, **DEFAULTS["corpus"], "seed": 0, "distill_steps": s["steps"], "alpha": s["alpha"],
            "temperature": s["temperature"], "hidden_weight": s["hidden_weight"], "dropout": s["dropout"],
            "ffn_keep": DEFAULTS["pruned"]["ffn_keep"], "heads_keep": DEFAULTS["pruned"]["heads_keep"],
            "recover_steps": DEFAULTS["pruned"]["steps"], "qat_steps": DEFAULTS["int8"]["steps"],
            "teacher_cfg": TEACHER.to_dict(), "student_cfg": STUDENT.to_dict()}


@dataclass
class StagePlan:
    stage: str
    arg: str  # the train() argument that sets its steps
    steps: int
    done: int  # steps already run (a resumed run; all of them for a finished stage)
    params: int  # parameters of the model it trains
    step_s: float  # seconds per step, measured
    eval_s: float  # the scoring on val and held-out after it

    @property
    def seconds(self) -> float:
        return 0.0 if self.done >= self.steps else (self.steps - self.done) * self.step_s + self.eval_s


@dataclass
class Plan:
    out: Path
    device: str
    threads: int
    stages: list[StagePlan]
    setup_s: float  # the corpus, its encoding and (a new run) the tokenizer
    n_examples: int
    resume: bool
    budget_s: float | None = None
    scaled_from: dict[str, int] | None = None  # the step arguments before a budget scaled them

    @property
    def seconds(self) -> float:
        return self.setup_s + sum(s.seconds for s in self.stages)

    @property
    def step_args(self) -> dict[str, int]:
        """train()'s step arguments of this plan."""
        return {s.arg: s.steps for s in self.stages}

    def fit(self, budget_s: float, keep: frozenset[str] = frozenset()) -> None:
        """Scale the steps (but those in `keep`) to fit budget_s, from this plan's own timings."""
        steps = self.step_args
        per_step = {arg: sum(s.step_s for s in self.stages if s.arg == arg) for arg in steps}
        fixed = self.setup_s + sum(s.eval_s for s in self.stages if s.seconds)
        scaled = fit_budget(steps, per_step, fixed, budget_s, keep)
        self.budget_s = budget_s
        if scaled != steps:
            self.scaled_from = steps
            for s in self.stages:
                s.steps = scaled[s.arg]

    def table(self) -> str:
        where = f"{self.device}, {self.threads} thread{'s' if self.threads > 1 else ''}"
        lines = [f"plan for {self.out} ({'resumed' if self.resume else 'a new run'}; timed here on {where}):",
                 f"  {'stage':8} {'params':>8} {'steps':>9} {'s/step':>8} {'time':>11}"]
        made = "regenerated from the spec" if self.resume else "and the tokenizer"
        lines.append(f"  {'corpus':8} {'':>8} {'':>9} {'':>8} {duration_text(self.setup_s):>11}   "
                     f"({self.n_examples:,} examples, {made})")
        for s in self.stages:
            steps = f"{s.steps:,}" if not s.done else f"{max(s.steps - s.done, 0):,} left"
            lines.append(f"  {s.stage:8} {s.params / 1e6:>7.2f}M {steps:>9} {s.step_s:>8.3f} "
                         f"{duration_text(s.seconds) if s.seconds else 'done':>11}")
        lines.append(f"  {'total':8} {'':>8} {'':>9} {'':>8} {duration_text(self.seconds):>11}   (an estimate "
                     f"from {TIMED_STEPS} timed steps of each model; evaluation included)")
        if self.budget_s is not None:
            if self.scaled_from is None:
                lines.append(f"budget {minutes_text(self.budget_s)}: the plan fits; steps unchanged")
            else:
                changed = ", ".join(f"{a} {self.scaled_from[a]:,} -> {n:,}" for a, n in self.step_args.items()
                                    if n != self.scaled_from[a])
                lines.append(f"budget {minutes_text(self.budget_s)}: steps scaled to fit ({changed})")
        return "\n".join(lines)


def minutes_text(seconds: float) -> str:
    return f"{seconds / 60:.3g} min"


def duration_text(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes // 60} h {minutes % 60:02d} min"


def fit_budget(steps: dict[str, int], step_s: dict[str, float], fixed_s: float, budget_s: float,
               keep: frozenset[str] = frozenset(), minimum: dict[str, int] = MIN_STEPS) -> dict[str, int]:
    """The step arguments scaled by one factor so that fixed_s + sum(steps * step_s) fits budget_s.

    `step_s` is what one step of each argument costs (all the stages it sets). Arguments in `keep`
    (given explicitly) stay as they are; the others never grow, and never drop below `minimum` (or
    their own count, if smaller): one held at its floor leaves the rest of the budget to the others.
    A budget too short even for the floors is a one-line error."""
    def cost(s: dict[str, int]) -> float:
        return fixed_s + sum(s[a] * step_s[a] for a in s)

    if cost(steps) <= budget_s:
        return dict(steps)
    free = {a for a in steps if a not in keep and step_s[a] > 0}
    out, floor = dict(steps), {a: min(minimum.get(a, 1), steps[a]) for a in free}
    avail = budget_s - cost({a: n for a, n in steps.items() if a not in free})
    while free:
        f = max(avail, 0.0) / sum(steps[a] * step_s[a] for a in free)  # < 1, and falls as floors are taken
        low = {a for a in free if steps[a] * f < floor[a]}
        if not low:
            for a in free:
                out[a] = max(floor[a], int(steps[a] * f) // STEP_ROUND * STEP_ROUND)
            break
        for a in low:
            out[a] = floor[a]
            avail -= floor[a] * step_s[a]
        free -= low
    if cost(out) > budget_s:
        raise bad_input(f"budget {minutes_text(budget_s)} is too short: even with "
                        + ", ".join(f"{a} {out[a]:,}" for a in out) + f" the run takes about "
                        f"{duration_text(cost(out))} here (allowed: a budget of {math.ceil(cost(out) / 60)} "
                        f"minutes or more, or fewer stages with --until)")
    return out


def _timed(fn: Callable[[], object], device: str) -> float:
    """Seconds per call of fn: one untimed call (allocation, first use of kernels), then the mean of
    TIMED_STEPS."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(TIMED_STEPS):
        fn()
    sync()
    return (time.perf_counter() - t0) / TIMED_STEPS


def _model(cfg: ModelConfig, x: torch.Tensor, qat: bool, dropout: float, dist: Dist) -> GPT:
    torch.manual_seed(0)
    model = GPT(cfg)
    if qat:
        model.qat = intexport.calibrate(model, [x[:1]])
    model.dropout = dropout
    return model.to(dist.device)


def train_step_seconds(cfg: ModelConfig, batch: int, length: int, dist: Dist, *, qat: bool = False,
                       dropout: float = 0.0) -> float:
    """One optimizer step of a fresh `cfg` model on (batch, length) tokens, timed here."""
    set_threads(cfg, dist)
    x = torch.randint(0, cfg.vocab_size, (batch, length))
    model = _model(cfg, x, qat, dropout, dist)
    model.train()
    opt = make_optimizer(model, 1e-4)
    x = x.to(dist.device)
    mask = torch.ones(x.shape, device=dist.device)

    def step() -> None:
        loss, _ = ce_objective(model, x, x, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()

    return _timed(step, dist.device)


@torch.no_grad()
def forward_seconds(cfg: ModelConfig, batch: int, length: int, dist: Dist, *, qat: bool = False) -> float:
    """One forward pass of a fresh `cfg` model on (batch, length) tokens (a teacher's part of a
    distillation step), timed here."""
    set_threads(cfg, dist)
    x = torch.randint(0, cfg.vocab_size, (batch, length))
    model = _model(cfg, x, qat, 0.0, dist).eval()
    x = x.to(dist.device)
    return _timed(lambda: model(x), dist.device)


def _corpus_seconds(spec, seed: int, n: dict, vocab_size: int, ctx: int, tokenizer: bool) -> tuple[float, float]:
    """(seconds to make the corpus of n["n_train"] + n["n_val"] + n["n_heldout"] examples, and to train
    the tokenizer if `tokenizer`; the mean transcript length in tokens), from a PLAN_SAMPLE sample."""
    from ..agent.corpus import as_read, generate_corpus
    from ..agent.tokenizer import train_tokenizer
    from .data import encode_examples

    t0 = time.perf_counter()
    sample = generate_corpus(spec, seed=seed, n_train=PLAN_SAMPLE, n_val=10, n_heldout=10).train
    t1 = time.perf_counter()
    tok = train_tokenizer([as_read(ex) for ex in sample], vocab_size=vocab_size)
    t2 = time.perf_counter()
    data = encode_examples(sample, tok, ctx, as_read)
    t3 = time.perf_counter()
    total = n["n_train"] + n["n_val"] + n["n_heldout"]
    seconds = ((t1 - t0) / (PLAN_SAMPLE + 20) + (t3 - t2) / PLAN_SAMPLE) * total
    if tokenizer:
        seconds += (t2 - t1) * n["n_train"] / PLAN_SAMPLE
    return seconds, float(data.lengths.float().mean()) if len(data) else float(ctx)


def plan(agent: str | Path | None, out: str | Path, *, budget_minutes: float | None = None, device: str = "cpu",
         resume: bool = False, until: str = "int8", **given) -> Plan:
    """What `train(agent, out, until=until, resume=resume, **given)` will run, and how long it takes
    here: the arguments resolved as train() resolves them (DEFAULTS, or on resume the stored ones),
    each stage's model timed for a few steps at the corpus's transcript length, then extrapolated.

    With `budget_minutes` (a new run only), the step arguments not given in `given` are scaled by one
    factor so the estimate fits (fit_budget); the returned Plan's step_args are what to pass to train().
    """
    from ..agent.spec import load_spec
    from .distill import check_alpha_temperature
    from .prune import check_keep, pruned_config

    if until not in STAGES:
        raise bad_input(f"until={until!r} is not a stage (allowed: {', '.join(STAGES)})")
    if budget_minutes is not None and not budget_minutes > 0:
        raise bad_input(f"budget {budget_minutes!r} minutes must be positive (allowed: > 0)")
    if budget_minutes is not None and resume:
        raise bad_input("--budget plans a new run; a resumed run continues with the steps it was started with "
                        "(drop --budget, or start a new run)")
    defaults = chain_defaults()
    if set(given) - set(defaults):
        raise TypeError(f"plan() got unknown arguments {sorted(set(given) - set(defaults))}")
    # train()'s checks, so that a bad argument is one line before the warm-up
    for name in ("ffn_keep", "heads_keep"):
        if given.get(name) is not None:
            check_keep(name, given[name])
    check_alpha_temperature(given.get("alpha"), given.get("temperature"), given.get("hidden_weight"))
    check_dropout(given.get("dropout"))
    check_positive(**{k: given.get(k) for k in (*STEP_ARGS, "batch", "lr", "n_train", "n_val", "n_heldout")})
    check_seed(given.get("seed"))
    given = {k: v.to_dict() if isinstance(v, ModelConfig) else v for k, v in given.items()}
    full = {k: given.get(k) for k in defaults}
    out = Path(out)
    run = None
    if resume:
        if not out.is_dir():
            raise bad_input(f"{out}: no run to resume (not a folder); drop --resume to start a new run there")
        if (out / RUN_FILE).exists():
            run = open_run(out, writer=False)
            if agent is not None:  # as train() checks it
                run.check_same_spec(Path(agent))
            run.check_same_spec(out / "spec.toml")
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise bad_input(f"{out} already exists and is not empty (--resume continues a run there, "
                        "or choose a new folder)")
    a = resolve(full, defaults, run.info["args"] if run else None, f"run {out}" if run else "train")
    dist = init_dist(device)
    tc, sc = ModelConfig.from_dict(a["teacher_cfg"]), ModelConfig.from_dict(a["student_cfg"])
    if run is not None:
        tc, sc = model_cfg(run, tc), model_cfg(run, sc)
    pc = pruned_config(sc, a["ffn_keep"], a["heads_keep"])
    if run is None and agent is None:
        raise bad_input(f"{out}: no run.json, so the run starts over: give its agent spec (--agent)")
    if run is None:
        from ..fileio import check_input_file

        check_input_file(agent, "agent spec")  # as create_run: /dev/zero or a huge file, refused unread
    spec = load_spec(out / "spec.toml" if run else agent)
    setup_s, mean_len = _corpus_seconds(spec, a["seed"], a, tc.vocab_size, tc.ctx, tokenizer=run is None)
    if run is not None:
        mean_len = float(run.info["corpus"]["train"].get("mean_tokens") or mean_len)
    length, batch, drop = max(2, min(tc.ctx, round(mean_len)) - 1), a["batch"], a["dropout"]

    timings: dict[tuple, float] = {}

    def t(kind: str, cfg: ModelConfig, qat: bool = False) -> float:
        key = (kind, tuple(cfg.to_dict().items()), qat)
        if key not in timings:
            timings[key] = (train_step_seconds(cfg, batch, length, dist, qat=qat, dropout=drop * (not qat))
                            if kind == "train" else forward_seconds(cfg, batch, length, dist, qat=qat))
        return timings[key]

    step_cost = {"teacher": lambda: t("train", tc), "scratch": lambda: t("train", sc),
                 "student": lambda: t("train", sc) + t("fwd", tc), "pruned": lambda: t("train", pc) + t("fwd", tc),
                 "int8": lambda: t("train", pc, True) + t("fwd", pc)}
    scored = {"teacher": (tc, False), "scratch": (sc, False), "student": (sc, False), "pruned": (pc, False),
              "int8": (pc, True)}
    arg_of = {stage: arg for arg, stages in STEP_ARGS.items() for stage in stages}
    stages, threads = [], 1
    for stage in STAGES[:STAGES.index(until) + 1]:
        entry = run.stage(stage) if run else {"status": "pending"}
        steps = a[arg_of[stage]]
        done = steps if entry["status"] == "done" else int(entry.get("step", 0)) if entry["status"] == "running" else 0
        cfg, qat = scored[stage]
        if done >= steps:
            stages.append(StagePlan(stage, arg_of[stage], steps, done, cfg.n_params(), 0.0, 0.0))
            continue
        step_s = step_cost[stage]()
        eval_s = (a["n_val"] + a["n_heldout"]) / batch * t("fwd", cfg, qat)
        threads = max(threads, torch.get_num_threads())
        stages.append(StagePlan(stage, arg_of[stage], steps, done, cfg.n_params(), step_s, eval_s))
    p = Plan(out, dist.device, threads, stages, setup_s, a["n_train"] + a["n_val"] + a["n_heldout"], run is not None)
    if budget_minutes is not None:
        p.fit(budget_minutes * 60, keep=frozenset(k for k in STEP_ARGS if given.get(k) is not None))
    return p
