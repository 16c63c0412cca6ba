"""The confidence gate's threshold, chosen on the validation split and stored with the integer model.

A write call (a tool whose spec effect is "write") runs only if its confidence, the smallest lead of
the chosen token over the runner-up from '[' to ']' in integer logit units, reaches `min_margin`
(conversation.run_turn, firmware/ta_agent.c). Below it the device asks instead of acting.

The threshold is chosen on val (requests of the training phrasings with fresh values, never trained
on; the held-out phrasings and any hand-written set never take part): every write call the integer
reference makes there is marked right or wrong, and the threshold is the one with the lowest cost, a
wrong write call costing `WRONG_COST` times a clarifying question (a pin nobody asked for against one
retyped request), with at most `MAX_RIGHT_STOPPED` of the right calls stopped. Both numbers are a
product decision, fixed before any model was measured with them, not tuned on any evaluation.
"""
from __future__ import annotations

from pathlib import Path

from ..agent.conversation import GATE_FILE, RequestTooLong, TokenClasses
from ..agent.corpus import generate_corpus
from ..agent.grammar import grammar_from_spec
from ..agent.spec import load_spec
from ..agent.tokenizer import load_tokenizer
from ..fileio import write_json
from ..integer.intmodel import load_int_model
from ..integer.reference import Reference
from .evaluate import expected_calls, run_example
from .run import SPEC_FILE, TOKENIZER_FILE, open_run

MAX_RIGHT_STOPPED = 0.05  # of the right write calls on val, the most the gate may turn into questions
WRONG_COST = 3  # a wrong write call costs this many clarifying questions


def write_call_margins(run_path: str | Path) -> list[tuple[int, bool]]:
    """(confidence, right) for every write call the int8 model makes on the val split, gate off."""
    run = open_run(run_path, writer=False)
    spec = load_spec(run.path / SPEC_FILE)
    c = run.info["corpus"]
    val = generate_corpus(spec, seed=run.info["seed"], n_train=c["n_train"], n_val=c["n_val"],
                          n_heldout=c["n_heldout"]).val
    grammar = grammar_from_spec(spec)
    acting = {f.name for f in grammar.forms if f.acts}
    im = load_int_model(run.dir("int8"))
    ref, tc = Reference(im), TokenClasses(load_tokenizer(run.path / TOKENIZER_FILE))
    out = []
    for ex in val:
        results = iter([r for _, r in ex.calls])
        try:
            turn = run_example(ref, tc, grammar, lambda tool, args: next(results, "ok"), ex, im.cfg.ctx,
                               calls_only=True, min_margin=-1)
        except RequestTooLong:  # a model with a short context (tests) cannot take every val request
            continue
        want = expected_calls(grammar, ex)
        for k, ((call, _), margin) in enumerate(zip(turn.calls, turn.margins)):
            if call.split(" ")[0] in acting:
                out.append((margin, k < len(want) and want[k] == call and len(turn.calls) <= len(want)))
    return out


def pick_threshold(margins: list[tuple[int, bool]], max_right_stopped: float = MAX_RIGHT_STOPPED,
                   wrong_cost: float = WRONG_COST) -> int:
    """The threshold that saves the most: `wrong_cost` for each wrong write call stopped, less one for
    each right one stopped, stopping at most `max_right_stopped` of the right ones; the smallest such
    threshold (0 if none helps)."""
    n_right = sum(ok for _, ok in margins)
    best, best_gain = 0, 0
    for t in sorted({m for m, _ in margins} | {m + 1 for m, _ in margins}):
        right_below = sum(ok and m < t for m, ok in margins)
        wrong_below = sum(not ok and m < t for m, ok in margins)
        if right_below > max_right_stopped * n_right:
            break  # thresholds only grow from here
        gain = wrong_cost * wrong_below - right_below
        if gain > best_gain:
            best, best_gain = t, gain
    return best


def choose_gate(run_path: str | Path) -> dict:
    """Choose the threshold on val and write it beside the integer model (int8/gate.json)."""
    run = open_run(run_path, writer=False)
    margins = write_call_margins(run.path)
    t = pick_threshold(margins)
    right = [m for m, ok in margins if ok]
    wrong = [m for m, ok in margins if not ok]
    info = {"min_margin": t, "chosen_on": "val",
            "rule": f"lowest cost, a wrong write call costing {WRONG_COST} clarifying questions, at most "
                    f"{MAX_RIGHT_STOPPED:.0%} of right write calls stopped",
            "write_calls": len(margins), "right": len(right), "wrong": len(wrong),
            "right_stopped": sum(m < t for m in right), "wrong_stopped": sum(m < t for m in wrong)}
    write_json(run.dir("int8") / GATE_FILE, info)
    return info
