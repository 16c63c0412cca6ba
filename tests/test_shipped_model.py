"""The shipped default model (models/default): its held-out quality is re-checked with the integer
reference, and the QAT float forward agrees with the reference it was exported to."""
import numpy as np
import pytest
import torch

from tinyagent.agent.spec import REPO_ROOT
from tinyagent.cli import DEFAULT_RUN
from tinyagent.integer.intmodel import load_int_model
from tinyagent.integer.reference import forward_seq
from tinyagent.training.data import encode_examples
from tinyagent.training.evaluate import evaluate, heldout_examples
from tinyagent.training.quantize import load_qat_model
from tinyagent.training.run import open_run

N_HELDOUT = 150  # a fixed slice of the held-out phrasings: the full set is in eval.json and bench
# Measured on the shipped model (v16, docs/training.md): 87.3% on all 1000 held-out examples (eval.json,
# with the safety gate, as the device decodes; v13: 82.6%) and 87.3% on this slice of 150. The held-out split
# holds negations, corrections, durations, off-topic requests, follow-ups, conditionals and earlier turns too.
SHIPPED_ACCURACY_FLOOR = 0.85
HANDWRITTEN = REPO_ROOT / "tests" / "handwritten" / "default.tsv"
HANDWRITTEN_EVERY = 5  # every 5th request of the hand-written set: 77 requests, all ten categories
# measured 60/77 = 77.9% on this slice with v16 (v13: 61/77, v10: 63/77, v9: 59/77, v5: 62/77; on the whole
# set v16 is 84.4% against v13's 81.8%: docs/training.md)
HANDWRITTEN_FLOOR = 0.76


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
    same = total = gen_same = gen_total = 0
    ties = []  # where the two pick different tokens: the reference's gap between them, / its max |logit|
    for i in range(len(data)):
        n = int(data.lengths[i]) - 1
        toks = data.tokens[i, :n]
        gen = (data.role[i, 1:n + 1] > 0).numpy()  # the positions whose token the device chooses
        with torch.no_grad():
            f = model(toks[None])[0].numpy()
        q = forward_seq(im, toks.numpy())
        fa, qa = f.argmax(-1), q.argmax(-1)
        same += int((fa == qa).sum())
        total += len(toks)
        gen_same += int(((fa == qa) & gen).sum())
        gen_total += int(gen.sum())
        for t in np.flatnonzero(fa != qa):
            ties.append((q[t, qa[t]] - q[t, fa[t]]) / np.abs(q[t]).max())
        # logits in the same units: the QAT model rounds as the reference does, so they sit close
        # (measured on the shipped model: a median gap of at most 0.37% of the largest logit; earlier
        # models: 0.15% and 0.51%)
        assert np.median(np.abs(f / model.qat.logits - q)) <= 0.01 * np.abs(q).max()
    # where they do not agree, the reference's two candidates are close: the QAT forward's float
    # softmax, GELU and norm against the reference's integer tables and iterations. Measured: v16
    # agrees on 99.3% of the positions whose token the device chooses (1,600 of 1,612) and 96.8% of
    # all (3,500 of 3,614: the others predict the request and the results, which the device is fed),
    # at most 17.7% of the logit scale apart, median 2.5% (v13: 98.0% of all positions, median
    # under 1%; v16's loss weighs the deciding tokens 3, and no model is trained on fed positions)
    assert gen_same / gen_total >= 0.99, (gen_same, gen_total)
    assert same / total >= 0.96, same / total
    assert max(ties, default=0) <= 0.20, sorted(ties)
    assert np.median(ties) <= 0.03 if ties else True


def test_shipped_eval_json_meets_the_target():
    """eval.json is what `tinyagent eval` measured on all 1000 held-out examples when the model was
    shipped; the live check above re-runs a slice of it."""
    from tinyagent.fileio import read_json
    rows = read_json(DEFAULT_RUN / "eval.json", "eval file")["stages"]
    assert rows["int8"]["n"] == 1000 and rows["int8"]["tool_call_accuracy"] >= SHIPPED_ACCURACY_FLOOR, rows["int8"]
    # int8 within 1 point of the float model it was quantised from, decoded alike (the float rows have no
    # confidence gate: their logits are not the device's integers)
    bare = rows["int8"]["without_confidence_gate"]["tool_call_accuracy"]
    assert bare >= rows["pruned"]["tool_call_accuracy"] - 0.01, rows


def test_the_code_generates_the_shipped_models_corpus():
    """The corpus is not stored: every stage, eval and the gate regenerate it from spec.toml and the
    seed. If the generator changed since the model was trained, its held-out split is no longer held
    out; this catches that (run.json keeps the corpus statistics of the training run)."""
    from tinyagent.agent.corpus import corpus_stats, generate_corpus
    from tinyagent.agent.spec import load_spec
    run = open_run(DEFAULT_RUN, writer=False)
    c = run.info["corpus"]
    corpus = generate_corpus(load_spec(DEFAULT_RUN / "spec.toml"), seed=run.info["seed"], n_train=c["n_train"],
                             n_val=c["n_val"], n_heldout=c["n_heldout"])
    assert corpus_stats(corpus) == c["text"]


def test_handwritten_slice_floor(tmp_path):
    """The hand-written requests (never trained on, never used to choose a model): a fixed slice, with
    the gate, as the device runs them."""
    from tinyagent.training.evaluate import score_requests
    lines = HANDWRITTEN.read_text(encoding="utf-8").splitlines()
    body = [line for line in lines[1:] if line.strip() and not line.startswith("#")]
    slice_file = tmp_path / "handwritten-slice.tsv"
    slice_file.write_text("\n".join([lines[0]] + body[::HANDWRITTEN_EVERY]) + "\n", encoding="utf-8")
    rep = score_requests(DEFAULT_RUN, slice_file)
    assert len(rep["categories"]) == 10
    assert rep["total"]["right"] / rep["total"]["n"] >= HANDWRITTEN_FLOOR, rep["misses"]


@pytest.mark.parametrize("name", ["default", "plant"])
def test_the_shipped_files_are_the_model_its_run_recorded(name):
    """A swapped model must not pass for the shipped one: the int8 weights file is the one the run
    wrote (run.json's int_model_sha256, model.int.json's sha256), and the run's spec is its spec.toml."""
    import hashlib
    import json

    DEFAULT_RUN = REPO_ROOT / "models" / name  # noqa: N806 -- the shipped run of that name
    info = json.loads((DEFAULT_RUN / "run.json").read_text())
    weights = hashlib.sha256((DEFAULT_RUN / "int8" / "model.int.safetensors").read_bytes()).hexdigest()
    meta = json.loads((DEFAULT_RUN / "int8" / "model.int.json").read_text())
    assert info["stages"]["int8"]["int_model_sha256"] == meta["sha256"] == weights
    assert load_int_model(DEFAULT_RUN / "int8").hash == weights
    assert info["spec_sha256"] == hashlib.sha256((DEFAULT_RUN / "spec.toml").read_bytes()).hexdigest()
