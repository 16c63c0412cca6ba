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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .agent import RequestTooLong, TokenClasses, TorchEngine, load_min_margin, run_turn
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


def call_scores(engine, tc, grammar, examples, ctx: int, min_margin: int = 0) -> dict:
    """Tool-call and argument accuracy under the safety gate, as the device decodes; every miss."""
    exact = arg_ok = arg_total = 0
    misses = []
    for ex in examples:
        results = iter([r for _, r in ex.calls])
        hal = lambda tool, args: next(results, "ok")  # noqa: E731  replay the example's own results
        turn = run_turn(engine, tc, grammar, hal, ex.request, ctx, calls_only=True, min_margin=min_margin)
        got = [c for c, _ in turn.calls]
        want = [grammar.normalize(c) for c, _ in ex.calls]
        exact += got == want
        if got != want:
            misses.append({"intent": ex.intent, "request": ex.request, "want": want,
                           "got": got + ([f"({turn.refused})"] if turn.refused else [])})
        for i, w in enumerate(want):
            if i < len(got) and got[i].split(" ")[0] == w.split(" ")[0]:
                arg_total += 1
                arg_ok += got[i] == w
    n = max(len(examples), 1)
    return {"tool_call_accuracy": exact / n, "argument_accuracy": arg_ok / max(arg_total, 1), "n": len(examples),
            "misses": misses}


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
            row = call_scores(Reference(im), tc, grammar, examples, im.cfg.ctx, load_min_margin(folder))
            # the same without the confidence gate (the overrule still on), as the float rows are decoded:
            # what quantisation alone changed
            bare = call_scores(Reference(im), tc, grammar, examples, im.cfg.ctx, 0)
            row["without_confidence_gate"] = {k: bare[k] for k in ("tool_call_accuracy", "argument_accuracy")}
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
    con = Console()
    con.print(t)
    last = list(report["stages"])[-1] if report["stages"] else None
    misses = report["stages"][last].get("misses", []) if last else []
    if misses:  # the last stage's (the device's model), grouped by intent
        con.print(f"{len(misses)} misses of {LABELS.get(last, last)}, by intent (request | wanted | got):",
                  markup=False)
        by_intent: dict[str, list] = {}
        for m in misses:
            by_intent.setdefault(m["intent"], []).append(m)
        for intent, ms in sorted(by_intent.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            con.print(f"  {intent} ({len(ms)})", markup=False)
            for m in ms:
                print(f"    {m['request']} | {' ; '.join(m['want']) or '-'} | {' ; '.join(m['got']) or '-'}")


# ---- requests written by hand: `tinyagent eval --requests FILE.tsv` ------------------------------

@dataclass(frozen=True)
class Request:
    category: str
    text: str
    want: tuple[str, ...]  # calls as the device prints them ("timer 5400"); () for none
    line: int


def load_requests(path: str | Path, grammar=None) -> list[Request]:
    """A request file: UTF-8, tab-separated `category, request, expected`, a header line first, `#`
    lines are comments. `expected` is the calls in order separated by ` ; ` (as the device prints
    them, durations in seconds), or `-` for no call. Each bad line is one error naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise bad_input(f"{path}: request file not found (expected a .tsv with columns category, request, "
                        f"expected)")
    except (OSError, UnicodeDecodeError) as e:
        raise bad_input(f"{path}: cannot read the request file ({e})")
    out: list[Request] = []
    header_seen = False
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if not header_seen:
            header_seen = True
            if [c.strip().lower() for c in cols] == ["category", "request", "expected"]:
                continue
        if len(cols) != 3 or not all(c.strip() for c in cols):
            raise bad_input(f"{path}:{n}: expected 3 tab-separated fields (category, request, expected), "
                            f"got {len(cols)}: {line[:60]!r}")
        cat, req, exp = (c.strip() for c in cols)
        want = () if exp == "-" else tuple(c.strip() for c in exp.split(";"))
        if grammar is not None:
            for c in want:
                name = c.split(" ")[0]
                form = grammar.form(name)
                if form is None or not _valid_printed_call(form, c):
                    raise bad_input(f"{path}:{n}: expected call {c!r} is not a valid call of this agent "
                                    f"(allowed: {', '.join(f.name for f in grammar.forms)}, with their arguments; "
                                    f"durations in seconds)")
        out.append(Request(cat, req, want, n))
    if not out:
        raise bad_input(f"{path}: no requests (allowed: one tab-separated line per request after the header)")
    return out


def _valid_printed_call(form, call: str) -> bool:
    """A call as the device prints it: a duration as its seconds."""
    from .grammar import CallForm, Field, Grammar

    fields = tuple(Field("int", (), f.lo, f.hi) if f.kind == "dur" else f for f in form.fields)
    return Grammar([CallForm(form.name, fields)]).complete(call)


def score_requests(run_path: str | Path, requests_path: str | Path, stage: str = "int8") -> dict:
    """Each request through the agent loop as the device runs it (the safety gate on, the simulated
    board's results); per category: right, misses (request, wanted, got), unasked actions (a write call
    that was not asked for) and clarifying questions."""
    from .simulate import SpecHal

    run = open_run(run_path, writer=False)
    spec = load_spec(run.path / SPEC_FILE)
    grammar = grammar_from_spec(spec)
    requests = load_requests(requests_path, grammar)
    tc = TokenClasses(load_tokenizer(run.path / TOKENIZER_FILE))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if stage == "int8":
            im = load_int_model(run.dir("int8"))
            engine, ctx, gate = Reference(im), im.cfg.ctx, load_min_margin(run.dir("int8"))
        else:
            folder = run.dir(stage)
            if not (folder / "model.safetensors").is_file():
                raise bad_input(f"{run.path}: stage {stage!r} has no trained model (allowed: a stage with "
                                f"model.safetensors, or int8)")
            model = load_model(folder)
            engine, ctx, gate = TorchEngine(model), model.cfg.ctx, 0  # float logits: only the overrule gate
        acting = {f.name for f in grammar.forms if f.acts}
        rows, misses = {}, []
        for r in requests:
            hal = SpecHal(spec)
            try:
                turn = run_turn(engine, tc, grammar, hal, r.text, ctx, min_margin=gate)
                got = tuple(c for c, _ in turn.calls)
                refused = turn.refused
            except RequestTooLong:
                got, refused = (), "too long"
            row = rows.setdefault(r.category, {"n": 0, "right": 0, "unasked": 0, "clarified": 0})
            row["n"] += 1
            ok = got == r.want and not refused
            if not r.want and refused:  # nothing was asked, and nothing ran: a clarifying question is no action
                ok = True
            row["right"] += ok
            unasked = [c for c in got if c.split(" ")[0] in acting and c not in r.want]
            row["unasked"] += bool(unasked)
            row["clarified"] += bool(refused)
            if not ok:
                misses.append({"category": r.category, "request": r.text, "want": list(r.want),
                               "got": list(got) + ([f"({refused})"] if refused else []),
                               "unasked": bool(unasked), "line": r.line})
    finally:
        torch.set_num_threads(threads)
    n = len(requests)
    total = {"n": n, "right": sum(x["right"] for x in rows.values()),
             "unasked": sum(x["unasked"] for x in rows.values()),
             "clarified": sum(x["clarified"] for x in rows.values())}
    return {"run": str(run.path), "requests": str(requests_path), "stage": stage, "min_margin": gate,
            "categories": dict(sorted(rows.items())), "total": total, "misses": misses}


def print_requests(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(title=f"{report['requests']} on {report['run']} ({report['stage']}, gate {report['min_margin']})")
    for col in ("category", "requests", "right", "unasked actions", "clarifying"):
        t.add_column(col, justify="left" if col == "category" else "right")
    for cat, r in list(report["categories"].items()) + [("all", report["total"])]:
        t.add_row(cat, str(r["n"]), f"{r['right']} ({100 * r['right'] / max(r['n'], 1):.1f}%)",
                  f"{r['unasked']} ({100 * r['unasked'] / max(r['n'], 1):.1f}%)", str(r["clarified"]))
    con.print(t)
    if report["misses"]:
        con.print(f"{len(report['misses'])} misses (request | wanted | got):", markup=False)
    for m in report["misses"]:
        mark = " UNASKED" if m["unasked"] else ""
        print(f"  [{m['category']}] {m['request']} | {' ; '.join(m['want']) or '-'} | "
              f"{' ; '.join(m['got']) or '-'}{mark}")
