"""The integer reference: integers only, one token at a time equals a whole sequence, and the QAT
float forward computes (nearly) the same numbers."""
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from tinyagent.integer import intmath as im
from tinyagent.integer.intmodel import load_int_model
from tinyagent.integer.reference import Reference, forward_seq


def test_every_tensor_is_integer(tiny_int):
    _, m = tiny_int
    for name, a in m.tensors.items():
        assert np.issubdtype(a.dtype, np.integer), name


def test_step_equals_sequence_and_never_floats(tiny_int, monkeypatch):
    _, m = tiny_int
    seen = []
    real_check = im._check_int
    monkeypatch.setattr(im, "_check_int", lambda a: (seen.append(a.dtype), real_check(a)))
    toks = list(np.random.default_rng(1).integers(0, m.cfg.vocab_size, 30))
    seq = forward_seq(m, toks)
    ref = Reference(m)
    steps = np.stack([ref.step(t) for t in toks])
    assert seq.dtype == np.int32 and np.array_equal(seq, steps)
    assert seen and all(np.issubdtype(d, np.integer) for d in seen)


def test_qat_forward_agrees_with_reference(tiny_int):
    model, m = tiny_int
    toks = torch.randint(0, m.cfg.vocab_size, (1, 40), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        qat = model(toks)[0].numpy() / model.qat.logits
    ref = forward_seq(m, toks[0].tolist()).astype(np.float64)
    agree = (qat.argmax(-1) == ref.argmax(-1)).mean()
    assert agree >= 0.9, agree  # a random, deliberately chaotic model; the shipped model is checked tighter
    assert np.median(np.abs(qat - ref)) < 0.02 * np.abs(ref).max()


def test_save_load_roundtrip_and_corruption(tiny_int, tmp_path):
    _, m = tiny_int
    h = m.save(tmp_path)
    m2 = load_int_model(tmp_path)
    assert m2.hash == h and np.array_equal(forward_seq(m2, [1, 2, 3]), forward_seq(m, [1, 2, 3]))
    w = tmp_path / "model.int.safetensors"
    w.write_bytes(w.read_bytes()[:-100])
    with pytest.raises(Exception, match="corrupt or truncated"):
        load_int_model(tmp_path)


def test_context_full_is_an_error(tiny_int):
    _, m = tiny_int
    ref = Reference(m)
    for _ in range(m.cfg.ctx):
        ref.step(1)
    with pytest.raises(ValueError, match="context full"):
        ref.step(1)


# ---- helpers against their definitions ----

@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**31), 2**31 - 1), st.floats(1e-9, 1e6))
def test_mul_shift_rounds_half_up(x, real):
    """round(x*m / 2^sh) with ties up (towards +inf), in exact rationals: not half-down, half-even or
    half away from zero."""
    m, sh = im.quantize_multiplier(real)
    got = int(im.mul_shift(np.array([x], dtype=np.int64), m, sh)[0])
    assert got == math.floor(Fraction(x * m, 2**sh) + Fraction(1, 2)), (x, m, sh)


@pytest.mark.parametrize("sh", [1, 2, 17, 31, 45, 58])
def test_mul_shift_ties_go_up(sh):
    """x*m exactly half-way between two integers, for negative and positive, odd and even neighbours:
    -2.5 -> -2, -1.5 -> -1, -0.5 -> 0, 0.5 -> 1, 1.5 -> 2, 2.5 -> 3 (half-down, half-even and half away
    from zero each get some of these wrong)."""
    m_bits = min(sh - 1, 30)  # x*m = (2k+1) * 2^(sh-1), with m = 2^m_bits < 2^31 and x in int32
    for k in range(-3, 3):
        x, m = (2 * k + 1) << (sh - 1 - m_bits), 1 << m_bits
        assert int(im.mul_shift(np.array([x], dtype=np.int64), m, sh)[0]) == k + 1, (x, m, sh)
        if sh > 1 and k >= 0:  # the same tie from an odd multiplier
            m_odd = (2 * k + 1) << (min(sh, 29) - 1)
            x_odd = 1 << (sh - min(sh, 29))
            assert int(im.mul_shift(np.array([x_odd], dtype=np.int64), m_odd, sh)[0]) == k + 1, (x_odd, m_odd, sh)


@settings(max_examples=100, deadline=None)
@given(st.floats(1e-12, 2.0**29))
def test_quantize_multiplier_is_accurate(real):
    m, sh = im.quantize_multiplier(real)
    assert 1 <= sh <= 62 and 0 <= m < 2**31
    if sh < 62:
        assert abs(m / 2**sh - real) <= real * 2**-30


def test_softmax_sums_to_one_q15():
    rng = np.random.default_rng(0)
    table = im.exp_table(16)
    for n in (1, 2, 17, 128):
        s = rng.integers(-20000, 20000, n).astype(np.int32)
        m, sh = im.quantize_multiplier(16 / 1000)
        p = im.softmax_q15(s, m, sh, table)
        assert p.dtype == np.int32 and abs(int(p.sum()) - 32768) <= n
        assert p[s.argmax()] == p.max()


def test_rmsnorm_zero_row_and_scale_invariance():
    k = int(round(np.sqrt(8) / (4 / 127) * 65536))
    assert (im.rmsnorm(np.zeros((1, 8), np.int16), k) == 0).all()
    x = np.array([[100, -200, 300, 50, 0, 7, -9, 1000]], np.int16)
    assert np.abs(im.rmsnorm(x, k).astype(int) - im.rmsnorm(x * 3, k).astype(int)).max() <= 1


# ---- grouped-query attention (n_kv_heads < n_heads) ----

def test_gqa_step_equals_sequence_with_a_smaller_cache(tiny_gqa_int):
    _, m = tiny_gqa_int
    c = m.cfg
    assert m.t("layers.0.wk").shape == m.t("layers.0.wv").shape == (c.n_kv_heads * c.head_dim, c.dim)
    toks = list(np.random.default_rng(4).integers(0, c.vocab_size, c.ctx))
    ref = Reference(m)
    assert ref.k_cache.shape == ref.v_cache.shape == (c.n_layers, c.ctx, c.n_kv_heads * c.head_dim)
    steps = np.stack([ref.step(t) for t in toks[:20]] + [ref.feed(toks[20:])])
    seq = forward_seq(m, toks)
    assert np.array_equal(steps[:20], seq[:20]) and np.array_equal(steps[20], seq[-1])


def test_gqa_equals_multi_head_with_copied_kv_heads(tiny_gqa_int):
    """Query head h reads kv head h // (n_heads // n_kv_heads): exactly the multi-head model whose wk
    and wv rows of each kv head are copied to every query head of its group."""
    from dataclasses import replace

    from tinyagent.training.intexport import export_int_model
    from tinyagent.training.model import GPT

    gqa, m = tiny_gqa_int
    c = m.cfg
    mha = GPT(replace(c, n_kv_heads=None))
    sd = gqa.state_dict()
    for k, v in sd.items():
        if k.endswith(("wk.weight", "wv.weight")):
            sd[k] = v.view(c.n_kv_heads, c.head_dim, c.dim).repeat_interleave(
                c.n_heads // c.n_kv_heads, 0).reshape(-1, c.dim)
    mha.load_state_dict(sd)
    mha.qat = gqa.qat
    full = export_int_model(mha)
    toks = list(np.random.default_rng(5).integers(0, c.vocab_size, c.ctx))
    assert np.array_equal(forward_seq(m, toks), forward_seq(full, toks))


def test_gqa_qat_forward_agrees_with_reference(tiny_gqa_int):
    model, m = tiny_gqa_int
    toks = torch.randint(0, m.cfg.vocab_size, (1, 40), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        qat = model(toks)[0].numpy() / model.qat.logits
    ref = forward_seq(m, toks[0].tolist()).astype(np.float64)
    assert (qat.argmax(-1) == ref.argmax(-1)).mean() >= 0.9


def test_gqa_save_load_and_bad_n_kv_heads(tiny_gqa_int, tmp_path):
    import json

    from tinyagent.errors import TinyAgentError

    _, m = tiny_gqa_int
    m.save(tmp_path)
    cfg_path = tmp_path / "model.int.json"
    meta = json.loads(cfg_path.read_text())
    assert meta["config"]["n_kv_heads"] == 2
    m2 = load_int_model(tmp_path)
    assert m2.cfg == m.cfg and np.array_equal(forward_seq(m2, [1, 2, 3]), forward_seq(m, [1, 2, 3]))
    for bad in (3, 0, 8, "2", None):
        cfg_path.write_text(json.dumps({**meta, "config": {**meta["config"], "n_kv_heads": bad}}))
        with pytest.raises(TinyAgentError) as e:
            load_int_model(tmp_path)
        assert f"config.n_kv_heads is {json.dumps(bad)} (allowed: a divisor of n_heads 4: 1, 2, 4" in str(e.value)
    cfg_path.write_text(json.dumps({**meta, "config": {**meta["config"], "n_kv_heads": 1}}))
    with pytest.raises(TinyAgentError, match=r"tensor layers\.0\.wk is int8 \(16, 32\); the config says int8 \(8, 32\)"):
        load_int_model(tmp_path)


def test_multi_head_exports_store_no_n_kv_heads(tiny_int, tmp_path):
    import json

    _, m = tiny_int
    m.save(tmp_path)
    assert "n_kv_heads" not in json.loads((tmp_path / "model.int.json").read_text())["config"]
