"""The shipped default model (models/default): its held-out quality is re-checked with the integer
reference, and the QAT float forward agrees with the reference it was exported to."""
import numpy as np
import torch

from tinyagent.cli import DEFAULT_RUN
from tinyagent.data import encode_examples
from tinyagent.evaluate import evaluate, heldout_examples
from tinyagent.intmodel import load_int_model
from tinyagent.quantize import load_qat_model
from tinyagent.reference import forward_seq
from tinyagent.run import open_run

N_HELDOUT = 150  # a fixed slice of the held-out phrasings: the full set is in eval.json and bench
# The target (issue 3) is 95% on all 1000 held-out examples; the shipped model measures 96.4% there
# (eval.json) and 96.7% on this slice. The slice must stay at or above the target.
SHIPPED_ACCURACY_FLOOR = 0.95


def test_int8_heldout_tool_call_accuracy():
    rep = evaluate(DEFAULT_RUN, n=N_HELDOUT, stages=("int8",), save=False)["stages"]["int8"]
    assert rep["n"] == N_HELDOUT
    assert rep["tool_call_accuracy"] >= SHIPPED_ACCURACY_FLOOR, rep
    assert rep["argument_accuracy"] >= SHIPPED_ACCURACY_FLOOR, rep


def test_qat_forward_agrees_with_the_reference():
    model = load_qat_model(DEFAULT_RUN / "int8")
    im = load_int_model(DEFAULT_RUN / "int8")
    run = open_run(DEFAULT_RUN, writer=False)
    _, examples = heldout_examples(run, 40)
    data = encode_examples(examples, run.tokenizer(), im.cfg.ctx)
    same = total = 0
    ties = []  # where the two pick different tokens: the reference's gap between them, / its max |logit|
    for i in range(len(data)):
        toks = data.tokens[i, : int(data.lengths[i]) - 1]
        with torch.no_grad():
            f = model(toks[None])[0].numpy()
        q = forward_seq(im, toks.numpy())
        fa, qa = f.argmax(-1), q.argmax(-1)
        same += int((fa == qa).sum())
        total += len(toks)
        for t in np.flatnonzero(fa != qa):
            ties.append((q[t, qa[t]] - q[t, fa[t]]) / np.abs(q[t]).max())
        # logits in the same units: the QAT model rounds as the reference does, so they sit close
        # (measured on the shipped model: a median gap of at most 0.37% of the largest logit; earlier
        # models: 0.15% and 0.51%)
        assert np.median(np.abs(f / model.qat.logits - q)) <= 0.01 * np.abs(q).max()
    # measured: 98.0% agree; where they do not, the reference's two candidates are close (median 0.4%,
    # at most 9.9% of the logit scale apart): the QAT forward's float softmax, GELU and norm against
    # the reference's integer tables and iterations
    assert same / total >= 0.97, same / total
    assert max(ties, default=0) <= 0.15, sorted(ties)


def test_shipped_eval_json_meets_the_target():
    """eval.json is what `tinyagent eval` measured on all 1000 held-out examples when the model was
    shipped; the live check above re-runs a slice of it."""
    from tinyagent.fileio import read_json
    rows = read_json(DEFAULT_RUN / "eval.json", "eval file")["stages"]
    assert rows["int8"]["n"] == 1000 and rows["int8"]["tool_call_accuracy"] >= 0.95, rows["int8"]
    best_float = max(rows[s]["tool_call_accuracy"] for s in ("scratch", "student", "pruned"))
    assert rows["int8"]["tool_call_accuracy"] >= best_float - 0.01, rows  # int8 within 1 point of float
