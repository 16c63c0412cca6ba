"""Data preparation, the training chain on a tiny config, resume after a real kill, and input errors."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch

from tinyagent.agent.corpus import as_read, generate_corpus
from tinyagent.agent.spec import load_spec
from tinyagent.agent.tokenizer import train_tokenizer
from tinyagent.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, TinyAgentError
from tinyagent.fileio import sha256_file
from tinyagent.integer.config import TINY
from tinyagent.training import checkpoint
from tinyagent.training.chain import train
from tinyagent.training.data import ANSWER, CALL, Batches, encode_examples, loss_weights
from tinyagent.training.distill import distill, layer_pairs
from tinyagent.training.quantize import load_qat_model
from tinyagent.training.run import create_run, open_run
from tinyagent.training.train import token_metrics, weighted_ce

SPEC = Path(__file__).resolve().parents[1] / "agents" / "default.toml"
SMALL = dict(n_train=500, n_val=100, n_heldout=100, teacher_cfg=TINY, student_cfg=TINY, batch=16)


@pytest.fixture(scope="module")
def corpus():
    """Single turns (a 127-token context holds each): the conversation kinds are off."""
    import dataclasses
    spec = load_spec(SPEC)
    style = dataclasses.replace(spec.style, followup_fraction=0.0, conditional_fraction=0.0, noise_fraction=0.0,
                                out_of_range_fraction=0.0, history_rate=0.0)
    return generate_corpus(dataclasses.replace(spec, style=style), seed=0, n_train=300, n_val=20, n_heldout=20)


@pytest.fixture(scope="module")
def tok(corpus):
    return train_tokenizer([as_read(ex) for ex in corpus.train], vocab_size=400)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """The whole default chain, on TINY models and a small corpus."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    train(SPEC, out, steps=200, lr=6e-3, distill_steps=150, recover_steps=30, qat_steps=30, ckpt_every=100,
          progress=False, **SMALL)
    return out


# ---- data -------------------------------------------------------------------------------------------

def test_tokens_match_whole_transcript_encoding(corpus, tok):
    data = encode_examples(corpus.train, tok, ctx=127, render=as_read)
    assert data.n_dropped == 0 and len(data) == len(corpus.train)
    for i, ex in enumerate(corpus.train[:100]):
        n = int(data.lengths[i])
        assert data.tokens[i, :n].tolist() == tok.encode(as_read(ex)).ids
        assert data.tokens[i, n:].eq(tok.token_to_id("Ċ")).all()  # padded with '\n'


def test_loss_mask_covers_exactly_the_reply(corpus, tok):
    data = encode_examples(corpus.train, tok, ctx=127)
    for i, ex in enumerate(corpus.train[:100]):
        x, y, role = data.batch(torch.tensor([i]))
        assert torch.equal(x[0, 1:], y[0, :-1])
        decode = lambda m: tok.decode(y[0][m[0]].tolist(), skip_special_tokens=False)  # noqa: E731
        assert decode(role > 0) == "".join(f"[{c}]" for c, _ in ex.calls) + ex.answer + "\n"
        assert decode(role == CALL) == "".join(f"[{c}]" for c, _ in ex.calls)
        assert decode(role == ANSWER) == ex.answer + "\n"  # the final '\n' ends the turn and is learned
        assert role.shape[1] == int(data.lengths[i]) - 1  # trimmed: no position is pure padding


def test_call_weight_weighs_the_tokens_that_decide_an_action(corpus, tok):
    data = encode_examples(corpus.train, tok, ctx=127)
    seen_call = seen_chat = False
    for i, ex in enumerate(corpus.train[:100]):
        x, y, role = data.batch(torch.tensor([i]))
        assert torch.equal(loss_weights(role, 1.0), (role > 0).float())  # weight 1: the plain mask
        w = loss_weights(role, 4.0)[0]
        heavy = tok.decode(y[0][w == 4.0].tolist(), skip_special_tokens=False)
        first = tok.decode(y[0][role[0] == ANSWER][:1].tolist(), skip_special_tokens=False)
        if ex.calls:  # every call's tokens; the answer's first token follows a result, fed: it decides too
            assert heavy == "".join(f"[{c}]" for c, _ in ex.calls) + first
            seen_call = True
        else:  # no call: the answer's first token is where the model chose to answer instead
            assert heavy == first and ex.answer.startswith(first.strip() or first)
            seen_chat = True
        assert torch.equal(w == 0, role[0] == 0) and set(w[(w > 0) & (w != 4.0)].tolist()) <= {1.0}
    assert seen_call and seen_chat


def test_weighted_ce_is_the_plain_mean_with_unit_weights():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(7, 11, generator=g), torch.randint(0, 11, (7,), generator=g)
    ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    plain = torch.nn.functional.cross_entropy(logits, y, reduction="sum") / 7  # the loss before call_weight
    assert torch.equal(weighted_ce(logits, y, torch.ones(7)), plain)
    w = torch.tensor([3.0, 1, 1, 3, 1, 1, 1])
    assert torch.allclose(weighted_ce(logits, y, w), (ce * w).sum() / w.sum())


def test_too_long_examples_are_dropped_and_counted(corpus, tok):
    data = encode_examples(corpus.train, tok, ctx=20)
    assert data.n_dropped > 0 and len(data) + data.n_dropped == len(corpus.train)
    assert data.lengths.max() <= 21


def test_batches_are_deterministic_and_cover_each_epoch(corpus, tok):
    data = encode_examples(corpus.train, tok, ctx=127)
    a, b = Batches(data, 16, seed=3), Batches(data, 16, seed=3)
    steps = [40, 3, 17, 0, 40]  # any order, as a resumed run asks
    assert all(torch.equal(a.indices(s), b.indices(s)) for s in steps)
    epoch = torch.cat([a.indices(s) for s in range(a.per_epoch)])
    assert len(set(epoch.tolist())) == a.per_epoch * 16
    r0, r1 = Batches(data, 16, seed=3, rank=0, world=2), Batches(data, 16, seed=3, rank=1, world=2)
    assert torch.equal(torch.cat([r0.indices(5), r1.indices(5)]), a.indices(5))
    assert not torch.equal(Batches(data, 16, seed=4).indices(0), a.indices(0))


class FakeOracle(torch.nn.Module):
    """FAKE model for testing token_metrics(): it looks each input row up in `data` and predicts, at every
    position, the token `answers` holds for that row (data.tokens itself: a perfect model)."""

    def __init__(self, data, answers: torch.Tensor):
        super().__init__()
        self.data, self.answers = data, answers
        self.unused = torch.nn.Parameter(torch.zeros(1))  # token_metrics() reads the device from a parameter

    def forward(self, x):
        T = x.shape[1]
        rows = [int((self.data.tokens[:, :T] == r).all(1).nonzero()[0, 0]) for r in x]
        return torch.nn.functional.one_hot(self.answers[rows, 1:T + 1], 512).float() * 20


def test_token_metrics_score_tool_calls_answers_and_exact(corpus, tok):
    data = encode_examples(corpus.val, tok, ctx=127)
    n, with_calls = len(data), sum(1 for ex in corpus.val if ex.calls)
    assert 0 < with_calls < n
    perfect = token_metrics(FakeOracle(data, data.tokens), data, batch=7)
    assert perfect["token_acc"] == perfect["tool_calls"] == perfect["answers"] == perfect["exact"] == 1.0

    wrong_call = data.tokens.clone()  # one wrong token inside the first call of each example with calls
    wrong_answer_start = data.tokens.clone()  # a call ('[') where the answer should start
    for i, ex in enumerate(corpus.val):
        role = data.role[i]
        if ex.calls:
            wrong_call[i, int((role == CALL).nonzero()[1, 0])] = 0
        wrong_answer_start[i, int((role == ANSWER).nonzero()[0, 0])] = data.open_id
    s = token_metrics(FakeOracle(data, wrong_call), data)
    assert s["tool_calls"] == round((n - with_calls) / n, 4) and s["answers"] == 1.0
    assert s["exact"] == s["tool_calls"]
    s = token_metrics(FakeOracle(data, wrong_answer_start), data)
    assert s["tool_calls"] == 0.0 and s["answers"] == 0.0 and s["exact"] == 0.0


def test_layer_pairs_match_depth_fractions():
    assert layer_pairs(3, 4) == [(1, 1), (2, 3), (3, 4)]
    assert layer_pairs(2, 2) == [(1, 1), (2, 2)]


# ---- the chain ----------------------------------------------------------------------------------------

def test_chain_writes_every_stage_and_learns(chain):
    info = json.loads((chain / "run.json").read_text())
    assert all(info["stages"][s]["status"] == "done" for s in ("teacher", "scratch", "student", "pruned", "int8"))
    for f in ("spec.toml", "tokenizer.json"):
        assert (chain / f).is_file()
    corpus = info["corpus"]["train"]
    # TINY's 64-token context drops the longer conversations; each one dropped is counted
    assert corpus["examples"] + corpus["dropped_too_long"] == 500 and corpus["examples"] > 200
    for stage in ("teacher", "scratch"):
        curve = info["stages"][stage]["curve"]
        assert curve[-1][1] < 0.7 * curve[0][1], (stage, curve)  # 150-200 steps on conversations
    for stage in ("teacher", "scratch", "student", "pruned"):
        m = checkpoint.load_model(chain / stage)
        assert not (chain / stage / checkpoint.STATE).exists()
        assert m.cfg.vocab_size == info["vocab_size"]
    assert checkpoint.load_model(chain / "pruned").cfg.ffn_dim == TINY.ffn_dim // 2
    assert info["stages"]["pruned"]["params"] < info["stages"]["student"]["params"]
    q = load_qat_model(chain / "int8")
    assert q.qat is not None and q.cfg.ffn_dim == TINY.ffn_dim // 2
    assert (chain / "int8" / "model.int.safetensors").is_file()
    assert info["stages"]["int8"]["int_model_sha256"]


def test_distill_with_hidden_matching(chain, tmp_path):
    """Distillation with hidden-state matching runs and trains its projections."""
    run = tmp_path / "run"
    shutil.copytree(chain, run)
    distill(run, steps=20, hidden_weight=1.0, scratch=False, progress=False, batch=16)
    info = json.loads((run / "run.json").read_text())
    assert info["stages"]["student"]["args"]["hidden_weight"] == 1.0
    assert info["stages"]["pruned"]["status"] == "pending"  # redoing student makes pruned stale
    assert checkpoint.load_model(run / "student").cfg == checkpoint.load_model(chain / "student").cfg


# ---- resume ---------------------------------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import sys
    from tinyagent.integer.config import TINY
    from tinyagent.training.chain import train
    train(sys.argv[1], sys.argv[2], steps=int(sys.argv[3]), until="teacher", ckpt_every=20, progress=False,
          n_train=500, n_val=100, n_heldout=100, teacher_cfg=TINY, student_cfg=TINY, batch=16)
""")


def _step(run: Path) -> int:
    try:
        return json.loads((run / "run.json").read_text())["stages"]["teacher"].get("step", 0)
    except (FileNotFoundError, KeyError):
        return 0


def test_resume_after_sigkill(tmp_path):
    steps = 300
    out = tmp_path / "killed"
    state = out / "teacher" / checkpoint.STATE
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(SPEC), str(out), str(steps)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (state.exists() and _step(out) > 0):
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint within 60 s"
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    killed_at = json.loads((out / "run.json").read_text())["stages"]["teacher"]
    assert killed_at["status"] == "running" and 0 < killed_at["step"] < steps

    train(SPEC, out, resume=True, until="teacher", progress=False)
    info = json.loads((out / "run.json").read_text())["stages"]["teacher"]
    assert info["status"] == "done" and info["step"] == steps
    assert info["resumed_from"] >= killed_at["step"] and info["resumed_from"] % 20 == 0
    assert info["curve"][0][0] == 10  # the curve from before the kill was kept
    resumed = checkpoint.load_model(out / "teacher")

    # An uninterrupted run ends with the same weights: the resumed one lost nothing.
    fresh = tmp_path / "fresh"
    train(SPEC, fresh, steps=steps, until="teacher", ckpt_every=20, progress=False, **SMALL)
    ref = checkpoint.load_model(fresh / "teacher")
    for (k, a), b in zip(ref.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), k


def test_ctrl_c_saves_a_checkpoint_and_raises(tmp_path):
    out = tmp_path / "run"
    stop = threading.Event()

    def press_ctrl_c_once_training():  # the first checkpoint shows the loop (and its handler) is running
        while not stop.wait(0.005):
            if (out / "teacher" / checkpoint.STATE).exists():
                os.kill(os.getpid(), signal.SIGINT)
                return

    threading.Thread(target=press_ctrl_c_once_training, daemon=True).start()
    try:
        with pytest.raises(TinyAgentError) as e:
            train(SPEC, out, steps=100_000, until="teacher", ckpt_every=50, progress=False, **SMALL)
    finally:
        stop.set()
    assert e.value.code == EXIT_INTERRUPTED and "interrupted at step" in str(e.value)
    state = checkpoint.load_state(out / "teacher")
    entry = json.loads((out / "run.json").read_text())["stages"]["teacher"]
    assert entry["status"] == "running" and state["step"] == entry["step"] > 0


# ---- input errors ------------------------------------------------------------------------------------------

def one_line(e: pytest.ExceptionInfo) -> str:
    assert isinstance(e.value, TinyAgentError) and e.value.code == EXIT_BAD_INPUT
    assert "\n" not in str(e.value)
    return str(e.value)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(TinyAgentError) as e:
        distill(tmp_path, progress=False)
    assert "not a run folder" in one_line(e)
    with pytest.raises(TinyAgentError) as e:
        open_run(tmp_path / "missing")
    assert "not a run folder" in one_line(e)


def test_missing_previous_stage(chain, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(chain, run)
    info = json.loads((run / "run.json").read_text())
    info["stages"]["teacher"] = {"status": "pending"}
    (run / "run.json").write_text(json.dumps(info))
    with pytest.raises(TinyAgentError) as e:
        distill(run, scratch=False, progress=False)
    assert "'teacher' has not finished" in one_line(e)


def test_corrupt_checkpoint_in_a_run(chain, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(chain, run)
    w = run / "teacher" / checkpoint.WEIGHTS
    w.write_bytes(w.read_bytes()[:1000])
    with pytest.raises(TinyAgentError) as e:
        distill(run, scratch=False, progress=False, steps=5)
    assert "corrupt or truncated" in one_line(e)


def test_bad_arguments(chain, tmp_path):
    with pytest.raises(TinyAgentError) as e:
        train(SPEC, tmp_path / "a", until="float", progress=False)
    assert "float" in one_line(e) and "int8" in str(e.value)
    with pytest.raises(TinyAgentError) as e:
        train(SPEC, chain, progress=False)  # exists, no resume
    assert "already exists" in one_line(e)
    with pytest.raises(TinyAgentError) as e:
        train(SPEC, chain, resume=True, steps=999, progress=False)
    assert "steps=200" in one_line(e)
    with pytest.raises(TinyAgentError) as e:
        train(SPEC, tmp_path / "b", steps=0, progress=False)
    assert "steps 0" in one_line(e)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.fixture()
def started(tmp_path):
    """A run folder as `train` makes it, before any stage ran (no training: a small corpus and tokenizer)."""
    run = create_run(SPEC, tmp_path / "run", seed=0, n_train=200, n_val=20, n_heldout=20, vocab_size=300,
                     ctx=TINY.ctx, args={"teacher_cfg": TINY.to_dict(), "student_cfg": TINY.to_dict()})
    return run.path


def test_resume_refuses_an_edited_spec(started, tmp_path):
    run = started
    assert json.loads((run / "run.json").read_text())["spec_sha256"] == sha256_file(run / "spec.toml")
    edited = run / "spec.toml"
    original = edited.read_text()
    edited.write_text(original + "\n# edited mid-run\n")
    with pytest.raises(TinyAgentError) as e:
        train(None, run, resume=True, progress=False)
    assert "not the spec this run started on" in one_line(e) and str(edited) in str(e.value)
    with pytest.raises(TinyAgentError) as e:  # a stage on its own regenerates the corpus: the same check
        open_run(run).data(TINY.ctx)
    assert "not the spec this run started on" in one_line(e)
    edited.write_text(original)
    other = tmp_path / "other.toml"
    other.write_text(original + "\n# another spec\n")
    with pytest.raises(TinyAgentError) as e:  # an --agent given on resume must be the run's spec
        train(other, run, resume=True, progress=False)
    assert str(other) in one_line(e) and "not the spec this run started on" in str(e.value)
    open_run(run).check_same_spec(run / "spec.toml")  # restored: the run goes on
    assert len(open_run(run).data(TINY.ctx).train) > 0


def test_resume_refuses_a_training_state_with_a_flipped_bit(started):
    run = started
    info = json.loads((run / "run.json").read_text())
    info["stages"]["teacher"]["status"] = "running"  # killed mid-stage, with its checkpoint
    (run / "run.json").write_text(json.dumps(info))
    checkpoint.save_state(run / "teacher", {"step": 10, "net": {"w": torch.zeros(256)}, "optim": {},
                                            "rng": torch.get_rng_state()})
    state = run / "teacher" / checkpoint.STATE
    data = bytearray(state.read_bytes())
    data[-200] ^= 0x01
    state.write_bytes(bytes(data))
    with pytest.raises(TinyAgentError) as e:
        train(SPEC, run, resume=True, until="teacher", progress=False)
    assert "fails its checksum" in one_line(e) and str(state) in str(e.value)


def test_resume_deletes_what_a_killed_write_left(started):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = [started / f".run.json.{dead.pid}.k1ll3d00.tmp",
            started / "teacher" / f".{checkpoint.STATE}.{dead.pid}.k1ll3d00.tmp"]
    left[1].parent.mkdir(exist_ok=True)
    for p in left:
        p.write_bytes(b"half a file")
    open_run(started)  # what resume, and every stage, opens first
    assert not any(p.exists() for p in left)


def test_seed_out_of_range(tmp_path):
    for seed in (2**76, -1):
        with pytest.raises(TinyAgentError) as e:
            train(SPEC, tmp_path / "s", seed=seed, progress=False)
        assert str(seed) in one_line(e) and "0..4294967295" in str(e.value)
    assert not (tmp_path / "s").exists()


# ---- dropout ----------------------------------------------------------------------------------------------

def test_dropout_is_recorded_and_applies_while_training_only(chain):
    from tinyagent.training.defaults import DEFAULTS
    info = json.loads((chain / "run.json").read_text())
    for stage in ("teacher", "scratch", "student", "pruned"):
        assert info["stages"][stage]["args"]["dropout"] == DEFAULTS[stage]["dropout"]
    m = checkpoint.load_model(chain / "student")
    assert m.dropout == 0.0  # a training argument: a loaded model has none
    x = torch.randint(0, m.cfg.vocab_size, (2, 16))
    m.eval()
    clean = m(x)
    m.dropout = 0.3
    assert torch.equal(m(x), clean)  # eval mode: off
    m.train()
    assert not torch.allclose(m(x), clean)  # training: on
    q = load_qat_model(chain / "int8")
    q.dropout = 0.3
    q.train()
    a, b = q(x), q(x)
    assert torch.equal(a, b)  # QAT: off (the fake-quant forward must match the reference)


def test_call_weight_is_recorded_and_changes_what_is_learned(started, tmp_path):
    from tinyagent.training.train import train_stage
    weights = {}
    for name, w in (("default", None), ("one", 1.0), ("three", 3.0)):
        run = tmp_path / name
        shutil.copytree(started, run)
        train_stage(run, "scratch", steps=4, batch=8, call_weight=w, progress=False)
        assert json.loads((run / "run.json").read_text())["stages"]["scratch"]["args"]["call_weight"] == (w or 1.0)
        weights[name] = checkpoint.load_model(run / "scratch").state_dict()
    assert all(torch.equal(v, weights["one"][k]) for k, v in weights["default"].items())  # 1 is the default
    assert not all(torch.equal(v, weights["three"][k]) for k, v in weights["one"].items())
    with pytest.raises(TinyAgentError) as e:
        train(SPEC, tmp_path / "w", call_weight=0.0, progress=False)
    assert "call_weight 0.0" in one_line(e) and "> 0" in one_line(e)


def test_dropout_out_of_range(tmp_path):
    for bad in (-0.1, 1.0):
        with pytest.raises(TinyAgentError) as e:
            train(SPEC, tmp_path / "d", dropout=bad, progress=False)
        assert f"dropout {bad}" in one_line(e) and "0 <= dropout < 1" in one_line(e)
    assert not (tmp_path / "d").exists()


# ---- what pruning starts from ------------------------------------------------------------------------------

def test_prune_source_is_the_student_with_lower_validation_loss(chain, tmp_path):
    from tinyagent.training.prune import prune
    info = json.loads((chain / "run.json").read_text())
    entry = info["stages"]["pruned"]
    losses = {s: info["stages"][s]["metrics"]["val"]["loss"] for s in ("student", "scratch")}
    assert entry["source_val_loss"] == losses
    assert entry["source"] == min(losses, key=losses.get)
    assert json.loads((chain / "pruned" / "config.json").read_text())["pruned_from"] == entry["source"]
    run = tmp_path / "run"
    shutil.copytree(chain, run)
    for source in ("scratch", "student"):
        prune(run, source=source, recover_steps=5, batch=16, progress=False)
        got = json.loads((run / "run.json").read_text())["stages"]
        assert got["pruned"]["source"] == source and got["pruned"]["args"]["source"] == source
        assert got["int8"]["status"] == "pending"
    with pytest.raises(TinyAgentError) as e:
        prune(run, source="teacher", progress=False)
    assert "'teacher'" in one_line(e) and "best, student, scratch" in one_line(e)


def test_a_run_without_a_teacher_prunes_and_recovers_from_its_own_student(chain, tmp_path):
    """The shipped recipe: scratch only, no teacher; recovery distils from the unpruned source."""
    from tinyagent.training.prune import prune
    from tinyagent.training.quantize import quantize
    run = tmp_path / "run"
    shutil.copytree(chain, run)
    shutil.rmtree(run / "teacher")
    info = json.loads((run / "run.json").read_text())
    info["stages"]["teacher"] = {"status": "pending"}
    (run / "run.json").write_text(json.dumps(info))
    prune(run, source="scratch", recover_steps=5, batch=16, progress=False)
    entry = json.loads((run / "run.json").read_text())["stages"]["pruned"]
    assert entry["status"] == "done" and entry["recovered_from"] == "scratch"
    quantize(run, qat_steps=5, batch=16, progress=False)
    assert (run / "int8" / "model.int.json").is_file()


def test_prune_cli_resume_takes_the_stages_own_settings(chain, tmp_path):
    """`prune --ffn-keep 0.25`, interrupted, then a plain `prune --resume`: the flags left out are unset
    (not the table's 0.5), so the stage continues with what it was started with."""
    from click.testing import CliRunner

    from tinyagent.cli import main
    run = tmp_path / "run"
    shutil.copytree(chain, run)
    res = CliRunner().invoke(main, ["prune", "--run", str(run), "--ffn-keep", "0.25", "--steps", "5"])
    assert res.exit_code == 0, res.output
    info = json.loads((run / "run.json").read_text())
    info["stages"]["pruned"]["status"] = "running"  # as if it were stopped before it finished
    (run / "run.json").write_text(json.dumps(info))
    res = CliRunner().invoke(main, ["prune", "--run", str(run), "--resume"])
    assert res.exit_code == 0, res.output
    stage = json.loads((run / "run.json").read_text())["stages"]["pruned"]
    assert stage["status"] == "done" and stage["args"]["ffn_keep"] == 0.25 and stage["args"]["steps"] == 5


def test_prune_cli_says_which_student_it_pruned(chain, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from tinyagent.cli import main
    from tinyagent.training.defaults import DEFAULTS
    monkeypatch.setitem(DEFAULTS["pruned"], "steps", 5)
    run = tmp_path / "run"
    shutil.copytree(chain, run)
    res = CliRunner().invoke(main, ["prune", "--run", str(run)])
    assert res.exit_code == 0, res.output
    info = json.loads((run / "run.json").read_text())["stages"]
    losses = {s: info[s]["metrics"]["val"]["loss"] for s in ("student", "scratch")}
    assert res.output.splitlines()[-1] == (f"pruned {min(losses, key=losses.get)}/ (validation loss: "
                                  f"scratch {losses['scratch']:.4f}, student {losses['student']:.4f})")


def test_the_shipped_recipe_script_runs_small(tmp_path):
    """scripts/train_shipped.py (the shipped model's own recipe: scratch, prune from itself, QAT,
    gate), cut to a few steps on a small corpus; run twice, the second run resumes and keeps it."""
    import runpy

    script = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "train_shipped.py"),
                            run_name="recipe")
    g = script["main"].__globals__
    corpus = dict(g["DEFAULTS"]["corpus"])
    try:
        g["DEFAULTS"]["corpus"].update(n_train=300, n_val=30, n_heldout=30)
        g.update(SCRATCH_STEPS=5, RECOVER_STEPS=5, QAT_STEPS=5, CALL_WEIGHT=2.0)
        script["main"](str(tmp_path / "run"))
        before = (tmp_path / "run" / "int8" / "model.int.json").read_bytes()
        script["main"](str(tmp_path / "run"))
    finally:
        g["DEFAULTS"]["corpus"].clear()
        g["DEFAULTS"]["corpus"].update(corpus)
    stages = json.loads((tmp_path / "run" / "run.json").read_text())["stages"]
    assert [stages[s]["status"] for s in ("scratch", "pruned", "int8")] == ["done"] * 3
    assert stages["teacher"]["status"] == "pending" and stages["pruned"]["recovered_from"] == "scratch"
    assert [stages[s]["args"]["call_weight"] for s in ("scratch", "pruned", "int8")] == [2.0] * 3
    assert (tmp_path / "run" / "int8" / "model.int.json").read_bytes() == before
    assert (tmp_path / "run" / "int8" / "gate.json").is_file()
