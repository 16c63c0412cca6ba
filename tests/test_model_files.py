"""The files that make a model (int8/model.int.json beside its weights, tokenizer.json) are checked
field by field on load, with one line naming the field, the bad value and what is allowed; and the
model hash covers every one of them, the call grammar too."""
from __future__ import annotations

import copy
import json
import shutil

import pytest

from tinyagent.agent.grammar import CallForm, Field, Grammar, grammar_from_spec
from tinyagent.agent.spec import DEFAULT_SPEC_PATH, load_spec
from tinyagent.agent.tokenizer import from_hf, load_tokenizer, train_tokenizer
from tinyagent.codegen.generate import model_hash
from tinyagent.errors import EXIT_BAD_INPUT, TinyAgentError
from tinyagent.integer import intmodel

from conftest import sample_texts


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_int):
    folder = tmp_path_factory.mktemp("int8")
    tiny_int[1].save(folder)
    return folder


def one_line(fn, *args) -> str:
    with pytest.raises(TinyAgentError) as e:
        fn(*args)
    assert e.value.code == EXIT_BAD_INPUT
    msg = str(e.value)
    assert msg and "\n" not in msg
    return msg


def edited(tmp_path, saved, change) -> str:
    folder = tmp_path / "int8"
    shutil.copytree(saved, folder)
    path = folder / intmodel.CONFIG_FILE
    meta = json.loads(path.read_text())
    meta = change(meta)
    path.write_text(json.dumps(meta))
    return folder


def cfg(**kw):
    def change(meta):
        meta["config"].update(kw)
        return meta
    return change


def drop(*keys):
    def change(meta):
        d = meta
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]
        return meta
    return change


def scale(key, value):
    def change(meta):
        meta["scales"][key] = value
        return meta
    return change


def layers(n):
    """n_layers = n, with scales to match: only the tensors disagree."""
    def change(meta):
        meta["config"]["n_layers"] = n
        for k, v in meta["scales"].items():
            if isinstance(v, list):
                want = 2 * n + 1 if k == "norm" else n
                meta["scales"][k] = (v * 3)[:want]
        return meta
    return change


# (change to model.int.json, words the one line must contain)
BAD_CONFIGS = [
    (cfg(ctx=-5), ["config.ctx", "-5", "an integer 1..32768"]),  # built, then the firmware crashed
    (cfg(n_heads=0), ["config.n_heads", " 0 ", "1..256"]),  # built, then made random calls
    (cfg(ctx=2**31), ["config.ctx", "2147483648", "1..32768"]),  # hung the build
    (cfg(ctx=48.5), ["config.ctx", "48.5", "an integer"]),  # reached the C compiler
    (cfg(dim="32"), ["config.dim", '"32"', "an integer"]),
    (cfg(ffn_dim=None), ["config.ffn_dim", "null", "an integer"]),
    (cfg(n_layers=True), ["config.n_layers", "true", "an integer"]),
    (cfg(bogus=1), ["config.bogus", "not a model field", "vocab_size"]),
    (drop("config", "head_dim"), ["config.head_dim", "missing"]),
    (lambda m: [m], ["not an object", "a list"]),
    (lambda m: {**m, "config": [1, 2]}, ["config", "a list", "an object with vocab_size"]),
    (lambda m: {**m, "format": True}, ["format true", "format 1"]),
    (lambda m: {**m, "sha256": None}, ["sha256", "null", "64 lowercase hex"]),
    (lambda m: {**m, "extra": 1}, ["'extra'", "not an integer-model field"]),
    (drop("scales"), ["scales", "null", "an object with resid"]),
    (drop("scales", "logits"), ["scales.logits", "missing"]),
    (scale("q", [0.1]), ["scales.q", "[0.1]", "a list of 2 positive numbers", "2 layers"]),
    (scale("resid", "big"), ["scales.resid", '"big"', "a positive finite number"]),
    (scale("k", [0.1, None]), ["scales.k", "null", "positive finite"]),
    (scale("logits", -1.0), ["scales.logits", "-1.0", "positive"]),
    (scale("sm_steps", 0), ["scales.sm_steps", " 0 ", "an integer 1..1024"]),
    (scale("sm_steps", 8), ["exp_table", "sm_steps 8"]),  # consistent on its own, not with the table
    (cfg(n_heads=1), ["tensor layers.0.wq", "int8 (32, 32)", "(16, 32)"]),  # the tensors' shapes
    (cfg(n_layers=1), ["scales.norm", "a list of 3 positive numbers", "for 1 layers"]),
    (layers(1), ["tensor layers.1.", "not part of a model with this config"]),
    (layers(3), ["tensor layers.2.", "missing", "3 layers"]),
    (cfg(ctx=40), ["tensor pos_emb", "(48, 32)", "(40, 32)"]),
]


@pytest.mark.parametrize("change, words", BAD_CONFIGS, ids=[" ".join(w[:2]) for _, w in BAD_CONFIGS])
def test_model_json_is_checked_field_by_field(tmp_path, saved, change, words):
    msg = one_line(intmodel.load_int_model, edited(tmp_path, saved, change))
    assert str(tmp_path) in msg
    missing = [w for w in words if w not in msg]
    assert not missing, f"{missing} not in: {msg}"


def test_a_good_model_loads_unchanged(saved, tiny_int):
    m = intmodel.load_int_model(saved)
    assert m.cfg == tiny_int[1].cfg and m.scales == tiny_int[1].scales


def test_tensor_values_outside_the_integer_contract_are_refused(tmp_path, tiny_int):
    for name, value, words in (("layers.0.wq.sh", 63, ["layers.0.wq.sh", "1..62"]),
                               ("tok_emb.m", -1, ["tok_emb.m", "-1", "0..2^31-1"]),
                               ("final_norm.k", -3, ["final_norm.k", "-3", ">= 0"])):
        im = copy.deepcopy(tiny_int[1])
        im.tensors[name] = im.tensors[name].copy()
        im.tensors[name].flat[0] = value
        folder = tmp_path / name
        im.save(folder)  # a consistent sha256: only the value is wrong
        msg = one_line(intmodel.load_int_model, folder)
        assert all(w in msg for w in words), msg


# ---- tokenizer.json ----------------------------------------------------------------------------------

def _tok_variant(tmp_path, bpe, change):
    js = json.loads(bpe.json_text)
    change(js)
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(js))
    return path


def _permute_ids(js):
    vocab = js["model"]["vocab"]
    names = sorted(vocab, key=vocab.get)
    ids = [vocab[n] for n in names]
    vocab.update(zip(names, ids[1:] + ids[:1]))  # every id moved one place


def _swap_two_bytes(js):
    v = js["model"]["vocab"]
    v["a"], v["b"] = v["b"], v["a"]


def _swap_merged_tokens(js):
    v = js["model"]["vocab"]
    x, y = (next(k for k, i in v.items() if i == n) for n in (260, 261))
    v[x], v[y] = 261, 260


@pytest.mark.parametrize("change, words", [
    (lambda js: js["model"].update(merges=[]), ["320 tokens but 0 merges", "one merge per token"]),
    (_permute_ids, ["byte 0x00 is token", "byte-alphabet order", "permuted"]),
    (_swap_two_bytes, ["byte 0x61", "permuted"]),
    (_swap_merged_tokens, ["merge 4", "does not make token 260", "merges and vocab disagree"]),
    (lambda js: js["model"]["merges"].reverse(), ["merge 0", "from tokens made before it"]),
    (lambda js: js.update(normalizer={"type": "Lowercase"}), ["normalizer", "allowed: none"]),
    (lambda js: js["model"].update(dropout=0.1), ["dropout=0.1", "allowed: None"]),
])
def test_a_tokenizer_the_device_cannot_mirror_is_refused(tmp_path, bpe, change, words):
    msg = one_line(load_tokenizer, _tok_variant(tmp_path, bpe, change))
    assert "not a valid tokenizer.json" in msg and all(w in msg for w in words), msg


def test_the_trained_tokenizer_loads(tmp_path, bpe):
    assert load_tokenizer(_tok_variant(tmp_path, bpe, lambda js: None)).merges == bpe.merges


# ---- the model hash ------------------------------------------------------------------------------------

def test_the_model_hash_covers_config_scales_tokenizer_and_grammar(tmp_path, saved, tiny_int, bpe):
    spec = load_spec(DEFAULT_SPEC_PATH)
    im = intmodel.load_int_model(saved)
    base = model_hash(im, bpe, spec)
    assert base == model_hash(tiny_int[1], bpe, spec)  # saved and loaded, or straight from export
    assert base == model_hash(im, bpe, grammar_from_spec(spec))  # a spec or its grammar
    assert base != im.hash  # more than the weights file
    # the scales of model.int.json: the weights file and its sha256 unchanged
    rescaled = intmodel.load_int_model(edited(tmp_path, saved, scale("logits", im.scales["logits"] * 2)))
    assert rescaled.hash == im.hash and model_hash(rescaled, bpe, spec) != base
    # another tokenizer of the same size
    other = from_hf(train_tokenizer(sample_texts(seed=1), vocab_size=320))
    assert other.merges != bpe.merges and model_hash(im, other, spec) != base
    # another call grammar
    forms = list(grammar_from_spec(spec).forms)
    forms[0] = CallForm(forms[0].name, forms[0].fields + (Field("lit", ("now",)),))
    assert model_hash(im, bpe, Grammar(forms)) != base
