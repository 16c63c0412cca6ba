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
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..agent import conversation
from ..agent.conversation import RequestTooLong, TokenClasses, TorchEngine, load_min_margin, run_turn
from ..agent.corpus import generate_corpus, read_turn
from ..agent.grammar import grammar_from_spec
from ..agent.spec import load_spec
from ..agent.tokenizer import load_tokenizer
from ..errors import bad_input
from ..fileio import write_json
from ..integer.intmodel import load_int_model
from ..integer.reference import Reference, forward_seq
from .checkpoint import load_model
from .data import TokenData, encode_examples
from .run import SPEC_FILE, TOKENIZER_FILE, open_run

FLOAT_STAGES = ("teacher", "scratch", "student", "pruned")
EVAL_FILE = "eval.json"
LABELS = {"teacher": "teacher", "scratch": "student (scratch)", "student": "student (distilled)",
          "pruned": "pruned", "int8": "int8 (integer reference)"}


SPLITS = ("heldout", "val", "train")


def heldout_examples(run, n: int | None, split: str = "heldout"):
    """The run's spec and the first `n` examples (all if None) of one split of its corpus, regenerated
    from spec.toml and the seed: "heldout" (phrasings never trained on), "val" (the training phrasings,
    new combinations) or "train" (what the model was trained on)."""
    if split not in SPLITS:
        raise bad_input(f"split {split!r} is not a corpus split (allowed: {', '.join(SPLITS)})")
    c = run.info["corpus"]
    spec = load_spec(run.path / SPEC_FILE)
    corpus = generate_corpus(spec, seed=run.info["seed"], n_train=c["n_train"], n_val=c["n_val"],
                             n_heldout=c["n_heldout"])
    examples = getattr(corpus, split)
    return spec, examples[:n] if n else examples


def run_example(engine, tc, grammar, hal, ex, ctx: int, calls_only: bool = False, min_margin: int = 0):
    """The example's own turn, after the earlier turns of its conversation (`ex.before`, as the corpus
    wrote them) are put in the context, as the device would hold them."""
    conv = conversation.Conversation(engine, tc, grammar, ctx, min_margin)
    if getattr(ex, "before", ()):
        conv.load([tc.bpe.encode(read_turn(b)) for b in ex.before])
    return conv.turn(hal, ex.request, calls_only=calls_only)


def expected_calls(grammar, ex) -> list[str]:
    """The calls the device should run for `ex`, as it prints them: a call past a tool's range (the
    corpus's "set pin 40 high") is refused by the grammar, so nothing runs for it."""
    return [grammar.normalize(c) for c, _ in ex.calls if grammar.complete(c)]


def call_scores(engine, tc, grammar, examples, ctx: int, min_margin: int = 0) -> dict:
    """Tool-call and argument accuracy under the safety gate, as the device decodes; every miss."""
    exact = arg_ok = arg_total = 0
    misses = []
    for ex in examples:
        results = iter([r for _, r in ex.calls])
        hal = lambda tool, args: next(results, "ok")  # noqa: E731  replay the example's own results
        turn = run_example(engine, tc, grammar, hal, ex, ctx, calls_only=True, min_margin=min_margin)
        got = [c for c, _ in turn.calls]
        want = expected_calls(grammar, ex)
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
             save: bool = True, split: str = "heldout") -> dict:
    """Every stage (or `stages`) on the first `n` examples of a corpus split. The held-out split is
    what eval.json records (saved unless `save` is False); "train" and "val" are never saved: beside
    held-out they tell underfitting (the model misses its own training examples too: train longer)
    from phrasings it cannot carry over (train right, held-out wrong: add phrasings)."""
    # Decoding is one token at a time, too small to share between threads; with a second process
    # busy (a training run), torch's default threads made eval 2x slower, and 5 threads on 2 cores
    # over 100x slower. One thread, restored after.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _evaluate(run_path, n, stages, save and split == "heldout", split)
    finally:
        torch.set_num_threads(threads)


def _evaluate(run_path: str | Path, n: int | None, stages: tuple[str, ...] | None, save: bool,
              split: str = "heldout") -> dict:
    run = open_run(run_path, writer=False)
    spec, examples = heldout_examples(run, n, split)
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
    size = {"heldout_examples": len(examples)} if split == "heldout" else {"split": split, "examples": len(examples)}
    report = {"run": str(run.path), **size, "stages": rows}
    if save:
        write_json(run.path / EVAL_FILE, report)
    return report


def print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    split = report.get("split", "heldout")
    n = report["examples"] if split != "heldout" else report["heldout_examples"]
    what = {"heldout": "held-out phrasings", "val": "validation split (training phrasings)",
            "train": "training split"}[split]
    t = Table(title=f"{what} ({n} examples): {report['run']}")
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


def _read_text(path: Path, what: str, expected: str) -> str:
    """A hand-written file's text, or one line saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise bad_input(f"{path}: {what} file not found (expected {expected})")
    except (OSError, UnicodeDecodeError) as e:
        raise bad_input(f"{path}: cannot read the {what} file ({e})")


def load_requests(path: str | Path, grammar=None) -> list[Request]:
    """A request file: UTF-8, tab-separated `category, request, expected`, a header line first, `#`
    lines are comments. `expected` is the calls in order separated by ` ; ` (as the device prints
    them, durations in seconds), or `-` for no call. Each bad line is one error naming it."""
    path = Path(path)
    text = _read_text(path, "request", "a .tsv with columns category, request, expected")
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
        _check_calls(path, n, want, grammar)
        out.append(Request(cat, req, want, n))
    if not out:
        raise bad_input(f"{path}: no requests (allowed: one tab-separated line per request after the header)")
    return out


def _check_calls(path: Path, n: int, want: tuple[str, ...], grammar) -> None:
    if grammar is None:
        return
    for c in want:
        form = grammar.form(c.split(" ")[0])
        if form is None or not _valid_printed_call(form, c):
            raise bad_input(f"{path}:{n}: expected call {c!r} is not a valid call of this agent "
                            f"(allowed: {', '.join(f.name for f in grammar.forms)}, with their arguments; "
                            f"durations in seconds)")


def _valid_printed_call(form, call: str) -> bool:
    """A call as the device prints it: a duration as its seconds."""
    from ..agent.grammar import CallForm, Field, Grammar

    fields = tuple(Field("int", (), f.lo, f.hi) if f.kind == "dur" else f for f in form.fields)
    return Grammar([CallForm(form.name, fields)]).complete(call)


def _stage_engine(run, stage: str):
    """(engine, ctx, min_margin) of one stage of a run, as `eval --requests` decodes it."""
    if stage == "int8":
        im = load_int_model(run.dir("int8"))
        return Reference(im), im.cfg.ctx, load_min_margin(run.dir("int8"))
    folder = run.dir(stage)
    if not (folder / "model.safetensors").is_file():
        raise bad_input(f"{run.path}: stage {stage!r} has no trained model (allowed: a stage with "
                        f"model.safetensors, or int8)")
    model = load_model(folder)
    return TorchEngine(model), model.cfg.ctx, 0  # float logits: only the overrule gate


def score_requests(run_path: str | Path, requests_path: str | Path, stage: str = "int8") -> dict:
    """Each request through the agent loop as the device runs it (the safety gate on, the simulated
    board's results); per category: right, misses (request, wanted, got), unasked actions (a write call
    that was not asked for) and clarifying questions."""
    from ..agent.simulated_hal import SpecHal

    run = open_run(run_path, writer=False)
    spec = load_spec(run.path / SPEC_FILE)
    grammar = grammar_from_spec(spec)
    requests = load_requests(requests_path, grammar)
    tc = TokenClasses(load_tokenizer(run.path / TOKENIZER_FILE))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        engine, ctx, gate = _stage_engine(run, stage)
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


# ---- conversations written by hand: `tinyagent eval --conversations FILE` -------------------------

TEMP_RANGE = (-200, 600)  # the default agent's temp result, in 0.1 C
UP_MAX = 4294967  # the uptime result's range (seconds)
FIRST = "first"  # the category of a conversation's first turn unless the line names one
CONDITIONAL = "conditional"  # turns reported per branch: action taken (an expected write call) or not
FOLLOWUP = "followup"
_NAME = re.compile(r"[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class ConversationTurn:
    category: str
    text: str
    want: tuple[str, ...]  # calls as the device prints them; () for none
    words: tuple[tuple[str, ...], ...]  # the answer must hold one word of each group
    line: int


@dataclass(frozen=True)
class ScriptedConversation:
    id: str
    category: str
    temps: tuple[int, ...]  # successive temperature readings, 0.1 C; the last repeats
    led: bool  # the LED's state at the start
    up: int  # what uptime and status report, seconds
    turns: tuple[ConversationTurn, ...]
    line: int


class ScriptedSimHal(conversation.SimHal):
    """conversation.SimHal run by a conversation's script: each temp or status call reads the next
    temperature (the last one repeats), the LED starts as the script says, and uptime is fixed (a
    score must not depend on the clock)."""

    def __init__(self, temps: tuple[int, ...] = (conversation.SimHal.TEMP_DECI,), led: bool = False, up: int = 12):
        super().__init__(temps[0])
        self.temps, self.reads, self.led, self.up = temps, 0, led, up

    def __call__(self, tool: str, args: list[str]) -> str:
        if tool in ("temp", "status"):
            self.TEMP_DECI = self.temps[min(self.reads, len(self.temps) - 1)]
            self.reads += 1
        if tool == "uptime":
            return str(self.up)
        if tool == "status":
            return f"led={'on' if self.led else 'off'} temp={self._temp()} up={self.up}"
        return super().__call__(tool, args)


def _conversation_settings(path: Path, n: int, items: list[str]) -> dict:
    out: dict = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or key not in ("temp", "led", "up") or key in out:
            raise bad_input(f"{path}:{n}: board setting {item!r} is not allowed (allowed: temp=T1,T2,..., "
                            f"led=on|off, up=SECONDS, each at most once)")
        if key == "temp":
            temps = []
            for t in value.split(","):
                deci = round(float(t) * 10) if re.fullmatch(r"-?\d+(\.\d)?", t) else None
                if deci is None or not TEMP_RANGE[0] <= deci <= TEMP_RANGE[1]:
                    raise bad_input(f"{path}:{n}: temperature {t!r} is not allowed (allowed: -20.0 to 60.0, "
                                    f"at most one decimal, comma-separated)")
                temps.append(deci)
            out["temps"] = tuple(temps)
        elif key == "led":
            if value not in ("on", "off"):
                raise bad_input(f"{path}:{n}: led={value!r} is not allowed (allowed: on, off)")
            out["led"] = value == "on"
        else:
            if not value.isdigit() or int(value) > UP_MAX:
                raise bad_input(f"{path}:{n}: up={value!r} is not allowed (allowed: seconds 0..{UP_MAX})")
            out["up"] = int(value)
    return out


def _conversation_turn(path: Path, n: int, line: str, first: bool, category: str, grammar) -> ConversationTurn:
    cols = line[1:].split("\t")
    if len(cols) not in (2, 3) or not all(c.strip() for c in cols):
        raise bad_input(f"{path}:{n}: a turn is '> REQUEST<TAB>EXPECTED[<TAB>CATEGORY]', got {len(cols)} "
                        f"tab-separated fields: {line[:60]!r}")
    req, exp = cols[0].strip(), cols[1].strip()
    cat = cols[2].strip() if len(cols) == 3 else FIRST if first else category
    if not _NAME.match(cat):
        raise bad_input(f"{path}:{n}: category {cat!r} is not allowed (allowed: letters, digits, _ . -)")
    calls, bar, said = exp.partition("|")
    calls = calls.strip()
    want = () if calls == "-" else tuple(c.strip() for c in calls.split(";"))
    if not calls or any(not c for c in want):
        raise bad_input(f"{path}:{n}: expected {exp!r} is not allowed (allowed: calls separated by ' ; ', or "
                        f"'-' for none, then optionally ' | ' and answer words)")
    _check_calls(path, n, want, grammar)
    words = tuple(tuple(w for w in group.split("/")) for group in said.split())
    if bar and (not words or any(not w for g in words for w in g)):
        raise bad_input(f"{path}:{n}: answer words {said.strip()!r} are not allowed (allowed: after ' | ', "
                        f"words separated by spaces, alternatives by '/')")
    return ConversationTurn(cat, req, want, words, n)


def load_conversations(path: str | Path, grammar=None) -> list[ScriptedConversation]:
    """A conversation file (format in tests/handwritten/conversations-default.txt): `=== ID CATEGORY
    [temp=..] [led=..] [up=..]` starts a conversation on a fresh simulated board, and each
    `> REQUEST<TAB>EXPECTED[<TAB>CATEGORY]` is one of its turns; `#` lines are comments. Each bad line
    is one error naming it."""
    path = Path(path)
    text = _read_text(path, "conversation", "'=== ID CATEGORY' lines, each followed by '> REQUEST<TAB>EXPECTED' turns")
    out: list[ScriptedConversation] = []
    head: dict | None = None

    def close() -> None:
        if head is not None:
            if not head["turns"]:
                raise bad_input(f"{path}:{head['line']}: conversation {head['id']!r} has no turns (allowed: "
                                f"one or more '> REQUEST<TAB>EXPECTED' lines after its '===' line)")
            out.append(ScriptedConversation(turns=tuple(head.pop("turns")), **head))

    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("==="):
            close()
            parts = line[3:].split()
            if len(parts) < 2 or not _NAME.match(parts[0]) or not _NAME.match(parts[1]):
                raise bad_input(f"{path}:{n}: a conversation starts '=== ID CATEGORY [temp=..] [led=..] [up=..]' "
                                f"(ID and CATEGORY: letters, digits, _ . -), got {line[:60]!r}")
            if any(c.id == parts[0] for c in out):
                raise bad_input(f"{path}:{n}: conversation id {parts[0]!r} is used twice (allowed: unique ids)")
            head = {"id": parts[0], "category": parts[1], "temps": (conversation.SimHal.TEMP_DECI,), "led": False,
                    "up": 12, "line": n, "turns": []}
            head.update(_conversation_settings(path, n, parts[2:]))
        elif line.startswith(">"):
            if head is None:
                raise bad_input(f"{path}:{n}: a turn before any '=== ID CATEGORY' line: {line[:60]!r}")
            head["turns"].append(_conversation_turn(path, n, line, not head["turns"], head["category"], grammar))
        else:
            raise bad_input(f"{path}:{n}: not a line of a conversation file (allowed: '=== ID CATEGORY ...', "
                            f"'> REQUEST<TAB>EXPECTED', '# comment', blank): {line[:60]!r}")
    close()
    if not out:
        raise bad_input(f"{path}: no conversations (allowed: '=== ID CATEGORY' lines, each followed by turns)")
    return out


def answer_has(answer: str, words: tuple[tuple[str, ...], ...]) -> bool:
    """Every group has one of its words in the answer: case-insensitive, whole words ("5" is not in
    "1.5" or "50")."""
    return all(any(re.search(rf"(?<![\w.]){re.escape(w)}(?!\w|\.\d)", answer, re.IGNORECASE) for w in g)
               for g in words)


def score_conversations(run_path: str | Path, path: str | Path, stage: str = "int8") -> dict:
    """Each conversation through conversation.Conversation as the device holds one (the safety gate on, a
    scripted simulated board). A turn is right when its calls are exactly the expected ones, not refused
    (a clarifying question counts as right where no call was expected and no answer words are asked),
    and its answer holds the expected words. Each turn is scored against the script whatever earlier
    turns did. Per category: right, unasked actions (a write call beyond the expected ones), clarifying
    questions; follow-ups also where every earlier turn was right; conditionals per branch; every miss."""
    from ..agent.simulated_hal import SpecHal, default_tools_only

    run = open_run(run_path, writer=False)
    spec = load_spec(run.path / SPEC_FILE)
    grammar = grammar_from_spec(spec)
    cases = load_conversations(path, grammar)
    scripted = default_tools_only(spec)
    if not scripted and any((c.temps, c.led, c.up) != ((conversation.SimHal.TEMP_DECI,), False, 12) for c in cases):
        raise bad_input(f"{path}: board settings (temp=, led=, up=) need the default agent's tools; "
                        f"{run.path} has others (allowed: no settings for this run)")
    tc = TokenClasses(load_tokenizer(run.path / TOKENIZER_FILE))
    acting = {f.name for f in grammar.forms if f.acts}
    rows: dict[str, dict] = {}
    follow = {"n": 0, "right": 0, "after_right_n": 0, "after_right": 0}
    branches = {"taken": {"n": 0, "right": 0}, "not_taken": {"n": 0, "right": 0}}
    misses, dropped = [], 0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        engine, ctx, gate = _stage_engine(run, stage)
        conv = conversation.Conversation(engine, tc, grammar, ctx, min_margin=gate)
        for case in cases:
            conv.new()
            hal = ScriptedSimHal(case.temps, case.led, case.up) if scripted else SpecHal(spec)
            history_right = True
            for i, t in enumerate(case.turns, 1):
                try:
                    turn = conv.turn(hal, t.text)
                    got, refused, answer = tuple(c for c, _ in turn.calls), turn.refused, turn.answer
                    dropped += bool(turn.dropped)
                except RequestTooLong:
                    got, refused, answer = (), "too long", ""
                ok = got == t.want and not refused and answer_has(answer, t.words)
                if not t.want and not t.words and refused:  # nothing asked, nothing ran: a question is no action
                    ok = True
                unasked = [c for c in got if c.split(" ")[0] in acting and got.count(c) > t.want.count(c)]
                row = rows.setdefault(t.category, {"n": 0, "right": 0, "unasked": 0, "clarified": 0})
                row["n"] += 1
                row["right"] += ok
                row["unasked"] += bool(unasked)
                row["clarified"] += bool(refused)
                if t.category == FOLLOWUP:
                    follow["n"] += 1
                    follow["right"] += ok
                    follow["after_right_n"] += history_right
                    follow["after_right"] += ok and history_right
                if t.category == CONDITIONAL:
                    b = branches["taken" if any(c.split(" ")[0] in acting for c in t.want) else "not_taken"]
                    b["n"] += 1
                    b["right"] += ok
                if not ok:
                    misses.append({"id": case.id, "turn": i, "category": t.category, "request": t.text,
                                   "want": list(t.want), "words": ["/".join(g) for g in t.words],
                                   "got": list(got) + ([f"({refused})"] if refused else []), "answer": answer,
                                   "unasked": bool(unasked), "line": t.line})
                history_right = history_right and ok
    finally:
        torch.set_num_threads(threads)
    total = {k: sum(x[k] for x in rows.values()) for k in ("n", "right", "unasked", "clarified")}
    return {"run": str(run.path), "conversations": str(path), "stage": stage, "min_margin": gate,
            "n_conversations": len(cases), "categories": dict(sorted(rows.items())), "total": total,
            "followup": follow, "conditional": branches, "turns_with_dropped_context": dropped,
            "misses": misses}


def _pct(right: int, n: int) -> str:
    return f"{right}/{n} ({100 * right / max(n, 1):.1f}%)"


def print_conversations(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(title=f"{report['conversations']} ({report['n_conversations']} conversations) on {report['run']} "
                    f"({report['stage']}, gate {report['min_margin']})")
    for col in ("category", "turns", "right", "unasked actions", "clarifying"):
        t.add_column(col, justify="left" if col == "category" else "right")
    for cat, r in list(report["categories"].items()) + [("all", report["total"])]:
        t.add_row(cat, str(r["n"]), f"{r['right']} ({100 * r['right'] / max(r['n'], 1):.1f}%)",
                  f"{r['unasked']} ({100 * r['unasked'] / max(r['n'], 1):.1f}%)", str(r["clarified"]))
    con.print(t)
    f, c = report["followup"], report["conditional"]
    print(f"follow-up turns right: {_pct(f['right'], f['n'])}; where every earlier turn was right: "
          f"{_pct(f['after_right'], f['after_right_n'])}")
    print(f"conditional right: action taken {_pct(c['taken']['right'], c['taken']['n'])}, "
          f"not taken {_pct(c['not_taken']['right'], c['not_taken']['n'])}")
    if report["turns_with_dropped_context"]:
        print(f"{report['turns_with_dropped_context']} turns dropped the oldest turns to fit the context")
    if report["misses"]:
        print(f"{len(report['misses'])} misses (id turn: request | wanted | got):")
    for m in report["misses"]:
        want = " ; ".join(m["want"]) or "-"
        if m["words"]:
            want += " | " + " ".join(m["words"])
        got = " ; ".join(m["got"]) or "-"
        if m["words"] or not m["got"]:  # what it said instead
            got += f" | {m['answer']!r}"
        print(f"  [{m['category']}] {m['id']} {m['turn']}: {m['request']} | {want} | {got}"
              f"{' UNASKED' if m['unasked'] else ''}")
