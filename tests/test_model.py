"""The float/QAT model's config and attention shapes: grouped-query attention (n_kv_heads) and the
multi-head default it must leave exactly as it was."""
import pytest
import torch

from tinyagent.errors import TinyAgentError
from tinyagent.integer.config import ModelConfig
from tinyagent.training import intexport
from tinyagent.training.model import GPT

MHA = ModelConfig()  # 128 tokens, multi-head attention: the shipped student before conversations

MHA = ModelConfig(vocab_size=64, ctx=16, dim=16, n_layers=2, n_heads=4, head_dim=4, ffn_dim=12)
GQA = ModelConfig(**{**MHA.to_dict(), "n_kv_heads": 2})
TOKS = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0))


def seeded(cfg: ModelConfig, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(cfg).eval()


def test_configs_without_the_key_load_and_store_as_before():
    old = MHA.to_dict()
    assert "n_kv_heads" not in old  # a multi-head config stores exactly its old fields
    cfg = ModelConfig.from_dict(old)
    assert cfg.n_kv_heads is None and cfg.kv_heads == cfg.n_heads and cfg == MHA
    assert ModelConfig.from_dict(GQA.to_dict()) == GQA and GQA.to_dict()["n_kv_heads"] == 2


@pytest.mark.parametrize("g", [0, 3, 5, 8, -1, 2.0, True, "2"])
def test_bad_n_kv_heads_is_one_line(g):
    with pytest.raises(TinyAgentError) as e:
        ModelConfig(**{**MHA.to_dict(), "n_kv_heads": g})
    msg = str(e.value)
    assert "\n" not in msg and f"n_kv_heads is {g!r}" in msg and "1, 2, 4" in msg


def test_n_kv_heads_equal_to_n_heads_is_bit_identical():
    full = ModelConfig(**{**MHA.to_dict(), "n_kv_heads": 4})
    a, b = seeded(MHA), seeded(full)
    with torch.no_grad():
        assert torch.equal(a(TOKS), b(TOKS))
        batches = [TOKS]
        a.qat, b.qat = intexport.calibrate(a, batches), intexport.calibrate(b, batches)
        assert torch.equal(a(TOKS), b(TOKS))
    assert full.n_params() == MHA.n_params() and full.macs_per_token() == MHA.macs_per_token()


@pytest.mark.parametrize("g", [1, 2])
def test_gqa_is_multi_head_attention_with_shared_kv_rows(g):
    """A GQA model equals the multi-head model whose kv heads are copied to every query head of their
    group (kv head h // (n_heads // g)), in float and in QAT (per-row weight scales copy along)."""
    cfg = ModelConfig(**{**MHA.to_dict(), "n_kv_heads": g})
    gqa, mha = seeded(cfg, 1), seeded(MHA, 2)
    rep = MHA.n_heads // g
    sd = gqa.state_dict()
    for k, v in sd.items():
        if k.endswith(("wk.weight", "wv.weight")):
            assert v.shape == (g * cfg.head_dim, cfg.dim)
            sd[k] = v.view(g, cfg.head_dim, cfg.dim).repeat_interleave(rep, 0).reshape(-1, cfg.dim)
    mha.load_state_dict(sd)
    with torch.no_grad():
        assert torch.allclose(gqa(TOKS), mha(TOKS), atol=1e-6)
        gqa.qat = mha.qat = intexport.calibrate(gqa, [TOKS])
        assert torch.allclose(gqa(TOKS), mha(TOKS), atol=1e-5)


def test_gqa_counts_and_trains():
    for cfg in (MHA, GQA, ModelConfig(**{**MHA.to_dict(), "n_kv_heads": 1})):
        m = seeded(cfg)
        assert cfg.n_params() == sum(p.numel() for p in m.parameters())
        assert cfg.kv_bytes_per_token() == 2 * cfg.n_layers * cfg.kv_heads * cfg.head_dim
    assert MHA.kv_bytes_per_token() == 2 * GQA.kv_bytes_per_token()
    a = MHA.n_heads * MHA.head_dim
    assert MHA.macs_per_token(5) - GQA.macs_per_token(5) == MHA.n_layers * 2 * MHA.dim * (a - GQA.kv_dim)
    m = seeded(GQA).train()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        logits = m(TOKS[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 64), TOKS[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


def test_gqa_checkpoint_round_trip(tmp_path):
    import json

    from tinyagent.training.checkpoint import load_model, save_model

    cfg = ModelConfig(**{**GQA.to_dict(), "vocab_size": 256})  # a stored config holds the 256 byte tokens
    m = seeded(cfg)
    save_model(tmp_path, m, stage="student", step=1)
    assert json.loads((tmp_path / "config.json").read_text())["model"]["n_kv_heads"] == 2
    back = load_model(tmp_path).eval()
    assert back.cfg == cfg and torch.equal(back(TOKS), m(TOKS))
    save_model(tmp_path / "mha", seeded(ModelConfig(**{**MHA.to_dict(), "vocab_size": 256})), stage="student", step=1)
    assert "n_kv_heads" not in json.loads((tmp_path / "mha" / "config.json").read_text())["model"]


def test_calibration_records_through_the_one_forward_pass():
    """The quantisation hook: `observe` is the float forward pass recording max |x| at each point, one
    entry per QatScales entry (norm 2L+1, the per-layer kinds L each), with no dropout whatever the mode,
    and it leaves the model as it found it."""
    m = seeded(GQA)
    m.train()
    m.dropout = 0.5
    a, b = m.observe(TOKS), m.observe(TOKS)
    L = GQA.n_layers
    assert a == b and m.training and m.quant.record is None
    assert {k: len(v) for k, v in a.items()} == {"resid": 1 + 4 * L, "norm": 2 * L + 1, "q": L, "k": L, "v": L,
                                                 "attn": L, "ffn_h": L, "ffn_g": L, "logits": 1}
    m.eval()
    with torch.no_grad():
        assert a["logits"] == [float(m(TOKS).abs().max())]
    m.qat = intexport.calibrate(m, [TOKS])
    assert all(blk.quant.scales is m.qat for blk in m.blocks)  # one hook, shared by the blocks
    with pytest.raises(AssertionError):
        m.observe(TOKS)  # calibration is in float


def test_fused_float_attention_is_the_written_out_one():
    """Float training takes torch's fused causal attention; calibration and QAT write it out (the
    integer softmax needs the scores). Both are softmax(q k^T / sqrt(hd)) v under the causal mask."""
    for cfg in (MHA, GQA):
        m = seeded(cfg)
        with torch.no_grad():
            fused = m(TOKS)
            m.quant.record = {k: [] for k in m.quant.KINDS}  # calibration: the written-out path
            written = m(TOKS)
            m.quant.record = None
        assert torch.allclose(fused, written, atol=1e-5)


def test_logits_at_the_loss_positions_are_rows_of_the_full_logits():
    """`at` runs the head only where the loss looks: the same numbers as those rows of the full
    logits, in float and in QAT."""
    m = seeded(GQA)
    at = torch.rand(TOKS.shape, generator=torch.Generator().manual_seed(1)) > 0.5
    with torch.no_grad():
        assert torch.equal(m(TOKS, at=at), m(TOKS)[at])
        m.qat = intexport.calibrate(m, [TOKS])
        assert torch.equal(m(TOKS, at=at), m(TOKS)[at])
        logits, hidden = m(TOKS, return_hidden=True, at=at)
        assert logits.shape == (int(at.sum()), GQA.vocab_size) and len(hidden) == GQA.n_layers + 1


@pytest.mark.parametrize("steps", [8, 16, 40])
def test_the_integer_softmax_given_its_mask_is_the_one_that_finds_it(steps):
    """QAT passes the causal mask instead of finding the finite scores: the same probabilities, to the
    bit, with the masked ones 0 even where exp_table[255] is not (steps 40)."""
    from tinyagent.training.model import int_softmax_probs

    torch.manual_seed(steps)
    T = 23
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    att = (torch.randn(2, 3, T, T) * 4).masked_fill(~mask, float("-inf"))
    att[0, 0, 5] = torch.where(mask[5], 1e6, float("-inf"))  # a row with a far maximum
    a, b = int_softmax_probs(att, steps), int_softmax_probs(att, steps, mask)
    assert torch.equal(a, b) and torch.all(b[..., ~mask] == 0)
