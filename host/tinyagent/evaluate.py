"""Quality on the held-out phrasings, for every stage of a run: a table, and eval.json in the run.

- tool-call accuracy: the turn's calls, decoded greedily under the grammar, equal the expected calls
  exactly (a no-tool request must make no call);
- argument accuracy: of the expected calls whose tool was chosen at the right place, the fraction
  whose arguments are exactly right;
- perplexity of the reply tokens (calls and answer; not the request, not the tool results).
The int8 row runs the integer reference; the float rows run torch.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from .agent import TokenClasses, TorchEngine, run_turn
from .checkpoint import load_model
from .corpus import generate_corpus
from .data import TokenData, encode_examples
from .errors import bad_input
from .fileio import write_json
from .grammar import grammar_from_spec
from .intmodel import load_int_model
from .reference import Reference, forward_seq
from .run import SPEC_FILE, TOKENIZER_FILE, open_run
from .spec import load_spec
from .tokenizer import load_tokenizer

FLOAT_STAGES = ("teacher", "scratch", "student", "pruned")
EVAL_FILE = "eval.json"
LABELS = {"teacher": "teacher", "scratch": "student (scratch)", "student": "student (distilled)",
          "pruned": "pruned", "int8": "int8 (integer reference)"}


def heldout_examples(run, n: int | None):
    c = run.info["corpus"]
    spec = load_spec(run.path / SPEC_FILE)
    corpus = generate_corpus(spec, seed=run.info["seed"], n_train=c["n_train"], n_val=c["n_val"],
                             n_heldout=c["n_heldout"])
    return spec, corpus.heldout[:n] if n else corpus.heldout


def call_scores(engine, tc, grammar, examples, ctx: int) -> dict:
    exact = arg_ok = arg_total = 0
    for ex in examples:
        results = iter([r for _, r in ex.calls])
        hal = lambda tool, args: next(results, "ok")  # noqa: E731  replay the example's own results
        got = [c for c, _ in run_turn(engine, tc, grammar, hal, ex.request, ctx, calls_only=True).calls]
        want = [grammar.normalize(c) for c, _ in ex.calls]
        exact += got == want
        for i, w in enumerate(want):
            if i < len(got) and got[i].split(" ")[0] == w.split(" ")[0]:
                arg_total += 1
                arg_ok += got[i] == w
    n = max(len(examples), 1)
    return {"tool_call_accuracy": exact / n, "argument_accuracy": arg_ok / max(arg_total, 1), "n": len(examples)}


def _nll(logits: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> tuple[float, int]:
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(logp, targets[:, None], axis=-1)[:, 0]
    return float(-(picked * mask).sum()), int(mask.sum())


def perplexity_float(model, data: TokenData) -> float:
    nll = count = 0.0
    with torch.no_grad():
        for i in range(0, len(data), 64):
            x, y, role = data.batch(torch.arange(i, min(i + 64, len(data))))
            m = (role > 0).double()
            logits = model(x).double().numpy()
            for b in range(x.shape[0]):
                a, c = _nll(logits[b], y[b].numpy(), m[b].numpy())
                nll, count = nll + a, count + c
    return math.exp(nll / max(count, 1))


def perplexity_int(im, data: TokenData) -> float:
    nll = count = 0.0
    for i in range(len(data)):
        L = int(data.lengths[i])
        toks = data.tokens[i, :L].numpy()
        logits = forward_seq(im, toks[:-1]).astype(np.float64) * im.logit_scale  # dequantised for scoring only
        a, c = _nll(logits, toks[1:], (data.role[i, 1:L] > 0).numpy().astype(np.float64))
        nll, count = nll + a, count + c
    return math.exp(nll / max(count, 1))


def top1_agreement(model, im, data: TokenData, n: int = 200) -> float:
    """How often the int8 model's argmax equals the float model's, over reply positions."""
    same = total = 0
    with torch.no_grad():
        for i in range(min(n, len(data))):
            L = int(data.lengths[i])
            toks = data.tokens[i, :L]
            f = model(toks[None, :-1])[0].numpy().argmax(-1)
            q = forward_seq(im, toks[:-1].numpy()).argmax(-1)
            m = (data.role[i, 1:L] > 0).numpy()
            same += int(((f == q) & m).sum())
            total += int(m.sum())
    return same / max(total, 1)


def evaluate(run_path: str | Path, n: int | None = None, stages: tuple[str, ...] | None = None,
             save: bool = True) -> dict:
    # Decoding is one token at a time, too small to share between threads; with a second process
    # busy (a training run), torch's default threads made eval 2x slower, and 5 threads on 2 cores
    # over 100x slower. One thread, restored after.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _evaluate(run_path, n, stages, save)
    finally:
        torch.set_num_threads(threads)


def _evaluate(run_path: str | Path, n: int | None, stages: tuple[str, ...] | None, save: bool) -> dict:
    run = open_run(run_path, writer=False)
    spec, examples = heldout_examples(run, n)
    bpe = load_tokenizer(run.path / TOKENIZER_FILE)
    tc, grammar = TokenClasses(bpe), grammar_from_spec(spec)
    rows: dict[str, dict] = {}
    floats = {}
    wanted = stages or FLOAT_STAGES + ("int8",)
    for stage in wanted:
        folder = run.dir(stage)
        t0 = time.time()
        if stage == "int8":
            if not (folder / "model.int.json").is_file():
                continue
            im = load_int_model(folder)
            data = encode_examples(examples, run.tokenizer(), im.cfg.ctx)
            row = call_scores(Reference(im), tc, grammar, examples, im.cfg.ctx)
            row["perplexity"] = perplexity_int(im, data)
            row["params"] = im.cfg.n_params()
            row["weight_bytes"] = im.weight_bytes()
            ref_float = floats.get("pruned") or floats.get("student")
            if ref_float is not None:
                row["top1_agreement_with_float"] = top1_agreement(ref_float, im, data)
        else:
            if not (folder / "model.safetensors").is_file():
                continue
            model = load_model(folder)
            model.eval()
            floats[stage] = model
            data = encode_examples(examples, run.tokenizer(), model.cfg.ctx)
            row = call_scores(TorchEngine(model), tc, grammar, examples, model.cfg.ctx)
            row["perplexity"] = perplexity_float(model, data)
            row["params"] = model.cfg.n_params()
        row["seconds"] = round(time.time() - t0, 1)
        rows[stage] = row
    if not rows:
        raise bad_input(f"{run.path}: no trained stage to evaluate (run `tinyagent train` first)")
    report = {"run": str(run.path), "heldout_examples": len(examples), "stages": rows}
    if save:
        write_json(run.path / EVAL_FILE, report)
    return report


def print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"held-out phrasings ({report['heldout_examples']} examples): {report['run']}")
    for col in ("stage", "params", "tool-call acc", "arg acc", "perplexity", "top-1 vs float"):
        t.add_column(col, justify="right" if col != "stage" else "left")
    for stage, r in report["stages"].items():
        agree = r.get("top1_agreement_with_float")
        t.add_row(LABELS.get(stage, stage), f"{r['params']:,}", f"{100 * r['tool_call_accuracy']:.1f}%",
                  f"{100 * r['argument_accuracy']:.1f}%", f"{r['perplexity']:.3f}",
                  f"{100 * agree:.1f}%" if agree is not None else "")
    Console().print(t)
