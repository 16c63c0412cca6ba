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
# A regression floor just under the shipped model's measured level (96.7% on this slice, 93.1% on all
# 1000 held-out examples), NOT the target: the target is 95%, which the shipped model does not reach
# yet (see docs/training.md). Raise this when a better model is shipped.
SHIPPED_ACCURACY_FLOOR = 0.92


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
        # (measured on the shipped model: a median gap of at most 36 units where logits reach ~7,000,
        # i.e. 0.51%; an earlier, less trained model: 0.15%)
        assert np.median(np.abs(f / model.qat.logits - q)) <= 0.01 * np.abs(q).max()
    # measured: 97.6% agree; where they do not, the reference's two candidates are close (median 1.3%,
    # at most 11.8% of the logit scale apart): the QAT forward's float softmax, GELU and norm against
    # the reference's integer tables and iterations
    assert same / total >= 0.97, same / total
    assert max(ties, default=0) <= 0.15, sorted(ties)
