"""ta_engine_feed (prefill in blocks, matrix-matrix kernels) against the integer reference and against
ta_engine_step: the same logits (every int32) and the same KV-cache bytes, on the host build (portable
kernels) and on mps2-an386 under QEMU (the Cortex-M4 kernels), through firmware/test/prefill_main.c.

The feeds of SEGMENTS, one after another, cover with the default block of 8: blocks of 1, 2, B and
B+1, every tail of the M4's quads of inputs (1, 2 or 3 past a multiple of 4), feeds that start at a
position > 0 after earlier ones and feeds that cross block boundaries."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from tinyagent.agent.spec import load_spec
from tinyagent.agent.tokenizer import load_tokenizer
from tinyagent.codegen import arena
from tinyagent.compare.bench import PrefillProbe, build_prefill_probe
from tinyagent.integer import intmath
from tinyagent.integer.config import ModelConfig
from tinyagent.integer.intmodel import load_int_model
from tinyagent.integer.reference import Reference

from conftest import make_int_model

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "default"
SEGMENTS = [3, 1, 2, 8, 9, 7, 5, 6]  # 41 tokens
# Dims that take both forms of the M4's block (n % 4 == 0: quads; otherwise one matvec per input), and
# a column count with a tail after its multiple of 16: wq/wk/wv/w1 read d, wo a, w2 f.
MIXED = ModelConfig(vocab_size=320, ctx=48, dim=36, n_layers=2, n_heads=3, head_dim=10, ffn_dim=52)
MIXED_GQA = ModelConfig(vocab_size=320, ctx=48, dim=32, n_layers=2, n_heads=4, head_dim=6, ffn_dim=50, n_kv_heads=2)


def fnv_bytes(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def kv_line(ref: Reference, n: int) -> str:
    """The probe's `k n`: K rows 0..n-1 as (layer, pos, kv), V as the engine's (layer, kv, pos)."""
    k = ref.k_cache[:, :n, :].tobytes()
    v = np.ascontiguousarray(ref.v_cache[:, :n, :].transpose(0, 2, 1)).tobytes()
    return f"kv {fnv_bytes(k):08x} {fnv_bytes(v):08x}"


def logits_line(lg: np.ndarray) -> str:
    return f"logits {int(np.argmax(lg))} {intmath.fnv1a32_i32(lg):08x}"


def check_feeds(probe: PrefillProbe, im, segments: list[int], seed: int = 0) -> None:
    """Each segment fed after the ones before, then the whole prompt step by step from a clean arena:
    every answer as the reference's."""
    ids = [random.Random(seed).randrange(im.cfg.vocab_size) for _ in range(sum(segments))]
    ref, pos = Reference(im), 0
    assert probe.ask("r") == "ok"
    for n in segments:
        seg = ids[pos:pos + n]
        lg = ref.feed(seg)
        assert probe.run("f", pos, seg) == logits_line(lg), (pos, n)
        assert probe.ask("l") == "full " + " ".join(map(str, lg.tolist())), (pos, n)
        pos += n
        assert probe.ask(f"k {pos}") == kv_line(ref, pos), (pos, n)
    assert probe.ask("r") == "ok"
    assert probe.run("s", 0, ids) == logits_line(lg)
    assert probe.ask(f"k {pos}") == kv_line(ref, pos)
    # refused: past the context, or a token out of range; either leaves the cache as it was
    ctx, vocab = im.cfg.ctx, im.cfg.vocab_size
    assert probe.run("f", ctx - 1, [1, 2]) == "null"
    assert probe.run("f", 0, [1, vocab, 2]) == "null"
    assert probe.ask(f"k {pos}") == kv_line(ref, pos)


@pytest.fixture(scope="module")
def shipped():
    return load_int_model(SHIPPED / "int8"), load_tokenizer(SHIPPED / "tokenizer.json"), load_spec(SHIPPED / "spec.toml")


def run_probe(tmp_path, im, bpe, spec, board, segments, prefill_block=None, seed=0):
    probe = PrefillProbe(build_prefill_probe(im, bpe, spec, board, tmp_path, prefill_block), board)
    try:
        block = arena.DEFAULT_PREFILL_BLOCK if prefill_block is None else prefill_block
        assert probe.ask("i") == f"block {min(block, im.cfg.ctx)} vocab {im.cfg.vocab_size} ctx {im.cfg.ctx}"
        check_feeds(probe, im, segments, seed)
    finally:
        probe.close()


# ---- host: the portable kernels ---------------------------------------------------------------------

@pytest.mark.parametrize("which", ["mha", "gqa", "mixed"])
def test_host_feed_matches_steps_and_reference(tmp_path, tiny_int, tiny_gqa_int, bpe, spec, which):
    im = {"mha": tiny_int[1], "gqa": tiny_gqa_int[1], "mixed": make_int_model(MIXED, seed=2)[1]}[which]
    run_probe(tmp_path, im, bpe, spec, "host", SEGMENTS)


@pytest.mark.parametrize("block", [1, 3])
def test_host_other_blocks(tmp_path, tiny_gqa_int, bpe, spec, block):
    """A block of 1 (prefill off: the smallest arena) and an odd one; the arena follows the plan."""
    im = tiny_gqa_int[1]
    run_probe(tmp_path, im, bpe, spec, "host", [1, 2, 3, 4, 7], prefill_block=block, seed=block)
    header = (tmp_path / "src" / "ta_model.h").read_text()
    total = arena.arena_bytes(arena.arena_layout(im.cfg, block=block))
    assert f"#define TA_PREFILL_BLOCK {block} " in header and f"#define TA_ARENA_BYTES {total} " in header


def test_host_shipped_model(tmp_path, shipped):
    im, bpe, spec = shipped
    run_probe(tmp_path, im, bpe, spec, "host", [5, 8, 9, 1, 16, 2, 7])


def test_prefill_block_from_the_budget(tiny_int):
    cfg = tiny_int[1].cfg
    sizes = {b: arena.arena_bytes(arena.arena_layout(cfg, block=b)) for b in (1, 2, 4, 8)}
    assert sizes[1] < sizes[2] < sizes[4] < sizes[8]
    assert arena.prefill_block_bytes(cfg, 8) == sizes[8] - sizes[1] and arena.prefill_block_bytes(cfg, 1) == 0
    assert arena.choose_prefill_block(cfg, sizes[8]) == 8
    assert arena.choose_prefill_block(cfg, sizes[8] - 1) == 4
    assert arena.choose_prefill_block(cfg, sizes[2]) == 2
    assert arena.choose_prefill_block(cfg, 0) == 1


# ---- mps2-an386 under QEMU: the Cortex-M4 kernels ---------------------------------------------------

@pytest.mark.parametrize("cfg", [MIXED, MIXED_GQA], ids=["mixed", "mixed-gqa"])
def test_cm4_feed_matches_steps_and_reference(tmp_path, bpe, spec, cfg):
    run_probe(tmp_path, make_int_model(cfg, seed=4)[1], bpe, spec, "mps2-an386", SEGMENTS, seed=1)


def test_cm4_shipped_model(tmp_path, shipped):
    im, bpe, spec = shipped
    run_probe(tmp_path, im, bpe, spec, "mps2-an386", [5, 8, 9, 1, 16, 2, 7], seed=3)


def test_memory_plan_shows_the_prefill_block():
    from tinyagent.integer.config import ModelConfig
    from tinyagent.targets.build import MemoryPlan
    MHA = ModelConfig()  # 128 tokens, multi-head attention

    extra = arena.prefill_block_bytes(MHA, 8)
    p = MemoryPlan("esp32", 4 << 20, 128 << 10, {"weights": 1}, {"KV cache": 1}, prefill_block=8, prefill_bytes=extra)
    assert extra == 12096
    assert "  prefill block: 8 tokens per pass, 12,096 B of the activations above (more than feeding 1 at a time)" \
        in p.table().splitlines()
