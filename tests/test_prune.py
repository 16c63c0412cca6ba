"""Structured pruning: smaller shapes, the stated L1 importance order, exact copies, bad ratios."""
from __future__ import annotations

import json

import pytest
import torch

from tinyagent.errors import EXIT_BAD_INPUT, TinyAgentError
from tinyagent.integer.config import ModelConfig
from tinyagent.training import prune as P
from tinyagent.training.model import GPT

CFG = ModelConfig(vocab_size=64, ctx=16, dim=16, n_layers=2, n_heads=4, head_dim=4, ffn_dim=12)


def model(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    m = GPT(CFG)
    with torch.no_grad():  # non-trivial norm gains, so the folded-gain rule matters
        for b in m.blocks:
            b.attn_norm.weight.uniform_(0.5, 1.5)
            b.ffn_norm.weight.uniform_(0.5, 1.5)
    return m


def test_shapes_are_smaller_and_uniform():
    small, kept = P.shrink(model(), ffn_keep=0.5, heads_keep=0.5)
    assert (small.cfg.ffn_dim, small.cfg.n_heads, small.cfg.head_dim) == (6, 2, 4)
    for b in small.blocks:
        assert b.w1.weight.shape == (6, 16) and b.w2.weight.shape == (16, 6)
        assert b.wq.weight.shape == (8, 16) and b.wo.weight.shape == (16, 8)
    assert [len(k) for k in kept["ffn"]] == [6, 6] and [len(k) for k in kept["heads"]] == [2, 2]
    assert small.cfg.n_params() < CFG.n_params()
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model().parameters())
    small(torch.randint(0, 64, (2, 9)))


def test_importance_rule_and_order():
    m = model()
    blk = m.blocks[0]
    with torch.no_grad():
        # By hand: L1 of the neuron's w1 row (norm gain folded in) plus its w2 column.
        want_ffn = (blk.w1.weight * blk.ffn_norm.weight).abs().sum(1) + blk.w2.weight.abs().sum(0)
        g = blk.attn_norm.weight
        want_heads = torch.stack([
            sum((w.weight[h * 4:(h + 1) * 4] * g).abs().sum() for w in (blk.wq, blk.wk, blk.wv))
            + blk.wo.weight[:, h * 4:(h + 1) * 4].abs().sum() for h in range(4)])
    assert torch.allclose(P.ffn_importance(blk), want_ffn)
    assert torch.allclose(P.head_importance(blk), want_heads)
    _, kept = P.shrink(m, ffn_keep=0.5, heads_keep=0.5)
    assert kept["ffn"][0] == sorted(torch.argsort(want_ffn, descending=True)[:6].tolist())
    assert kept["heads"][0] == sorted(torch.argsort(want_heads, descending=True)[:2].tolist())
    # Every kept unit is at least as important as every dropped one.
    dropped = [i for i in range(12) if i not in kept["ffn"][0]]
    assert want_ffn[kept["ffn"][0]].min() >= want_ffn[dropped].max()


def test_dead_units_prune_without_changing_the_output():
    """Units whose output weights are zero contribute nothing: pruning exactly them is lossless."""
    m = model()
    with torch.no_grad():
        for b in m.blocks:
            b.w1.weight[[1, 4, 5, 7, 9, 11]] *= 1e-3  # the importance rule must rank these last
            b.w2.weight[:, [1, 4, 5, 7, 9, 11]] = 0
            b.wo.weight[:, 4:12] = 0  # heads 1 and 2 write nothing
            b.wq.weight[4:12] *= 1e-3
    small, kept = P.shrink(m, ffn_keep=0.5, heads_keep=0.5)
    assert kept["ffn"] == [[0, 2, 3, 6, 8, 10]] * 2 and kept["heads"] == [[0, 3]] * 2
    x = torch.randint(0, 64, (3, 12))
    assert torch.allclose(m(x), small(x), atol=1e-5)


def test_keep_all_is_identity():
    m = model()
    small, _ = P.shrink(m, 1.0, 1.0)
    x = torch.randint(0, 64, (2, 8))
    assert torch.equal(m(x), small(x))


# ---- grouped-query attention: whole groups (a kv head and the query heads that read it) ----

GQA = ModelConfig(**{**CFG.to_dict(), "n_kv_heads": 2})  # query heads 0, 1 -> kv head 0; 2, 3 -> 1


def gqa_model(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    m = GPT(GQA)
    with torch.no_grad():
        for b in m.blocks:
            b.attn_norm.weight.uniform_(0.5, 1.5)
            b.ffn_norm.weight.uniform_(0.5, 1.5)
    return m


def test_gqa_prunes_whole_groups_by_their_importance():
    m = gqa_model()
    blk = m.blocks[0]
    with torch.no_grad():
        g = blk.attn_norm.weight
        want = torch.stack([
            sum((blk.wq.weight[q * 4:(q + 1) * 4] * g).abs().sum() + blk.wo.weight[:, q * 4:(q + 1) * 4].abs().sum()
                for q in (2 * k, 2 * k + 1))
            + sum((w.weight[k * 4:(k + 1) * 4] * g).abs().sum() for w in (blk.wk, blk.wv)) for k in range(2)])
    assert torch.allclose(P.head_importance(blk), want)
    small, kept = P.shrink(m, ffn_keep=0.5, heads_keep=0.5)
    assert (small.cfg.n_heads, small.cfg.n_kv_heads, small.cfg.ffn_dim) == (2, 1, 6)
    assert small.cfg == P.pruned_config(GQA, 0.5, 0.5)
    k = int(torch.argmax(want))
    assert kept["kv_heads"][0] == [k] and kept["heads"][0] == [2 * k, 2 * k + 1]
    for b in small.blocks:
        assert b.wq.weight.shape == (8, 16) and b.wk.weight.shape == b.wv.weight.shape == (4, 16)
    assert small.cfg.n_params() == sum(p.numel() for p in small.parameters())


def test_gqa_dead_group_prunes_without_changing_the_output():
    m = gqa_model()
    with torch.no_grad():
        for b in m.blocks:
            b.wo.weight[:, 0:8] = 0  # query heads 0 and 1 (kv head 0's group) write nothing
            b.wq.weight[0:8] *= 1e-3
            b.wk.weight[0:4] *= 1e-3
            b.wv.weight[0:4] *= 1e-3
    small, kept = P.shrink(m, ffn_keep=1.0, heads_keep=0.5)
    assert kept["kv_heads"] == [[1]] * 2 and kept["heads"] == [[2, 3]] * 2
    x = torch.randint(0, 64, (3, 12))
    assert torch.allclose(m(x), small(x), atol=1e-5)


def test_gqa_ffn_pruning_and_keep_all():
    m = gqa_model()
    same, _ = P.shrink(m, 1.0, 1.0)
    x = torch.randint(0, 64, (2, 8))
    assert same.cfg == GQA and torch.equal(m(x), same(x))
    small, kept = P.shrink(m, ffn_keep=0.5, heads_keep=1.0)
    assert (small.cfg.ffn_dim, small.cfg.n_heads, small.cfg.n_kv_heads) == (6, 4, 2)
    assert kept["kv_heads"] == [[0, 1]] * 2 and kept["heads"] == [[0, 1, 2, 3]] * 2
    small(x)
    assert P.pruned_config(CFG, 0.5, 0.5) == P.shrink(model(), 0.5, 0.5)[0].cfg  # multi-head: as always


@pytest.mark.parametrize("ratio", [0.0, -0.5, 1.5, float("nan")])
def test_bad_ratio_rejected_and_nothing_written(tmp_path, ratio):
    (tmp_path / "run.json").write_text(json.dumps({"format": 1, "stages": {}}))
    before = sorted(p.name for p in tmp_path.iterdir())
    for kw in ({"ffn_keep": ratio}, {"heads_keep": ratio}):
        with pytest.raises(TinyAgentError) as e:
            P.prune(tmp_path, **kw, progress=False)
        msg = str(e.value)
        assert e.value.code == EXIT_BAD_INPUT and "\n" not in msg
        assert repr(ratio) in msg and "0 <" in msg and "<= 1" in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert json.loads((tmp_path / "run.json").read_text()) == {"format": 1, "stages": {}}


class _Run:
    """Just what pick_source reads: which stages are done, and their validation losses."""

    def __init__(self, losses: dict):
        self.losses = losses

    def done(self, stage):
        return stage in self.losses

    def stage(self, stage):
        return {"metrics": {"val": {"loss": self.losses[stage]}}}

    def require(self, stage, why):
        from tinyagent.errors import bad_input
        if stage not in self.losses:
            raise bad_input(f"stage '{stage}' has not finished ({why}); run it first")
        return stage


def test_pick_source():
    from tinyagent.errors import TinyAgentError
    from tinyagent.training.prune import pick_source

    assert pick_source(_Run({"student": 0.2, "scratch": 0.1}), "best") == ("scratch", {"student": 0.2, "scratch": 0.1})
    assert pick_source(_Run({"student": 0.1, "scratch": 0.1}), "best")[0] == "student"  # a tie keeps distilled
    assert pick_source(_Run({"scratch": 0.1}), "scratch") == ("scratch", {})  # no distilled student needed
    with pytest.raises(TinyAgentError, match="stage 'student' has not finished"):
        pick_source(_Run({"scratch": 0.1}), "best")
