"""The C engine (the real firmware over stdin/stdout) against the integer reference: the same argmax
and logit checksum at every step, for random tiny models, every width, grouped-query attention, the
default size, and the Cortex-M4 kernels under QEMU."""
from __future__ import annotations

import dataclasses
import random
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tinyagent.agent.tokenizer import from_hf, train_tokenizer
from tinyagent.device import protocol
from tinyagent.integer.config import ModelConfig
from tinyagent.integer.reference import forward_seq

from c_harness import expected_steps, start_firmware
from conftest import make_int_model, sample_texts


def run_lines(device, tokens) -> list[str]:
    return device.ask("!run " + " ".join(map(str, tokens))).decode().splitlines()


# ---- engine: step by step against the reference ----------------------------------------------------

configs = st.builds(
    ModelConfig, vocab_size=st.just(320), ctx=st.integers(2, 40), dim=st.sampled_from([8, 12, 20, 32, 36]),
    n_layers=st.integers(1, 2), n_heads=st.integers(1, 4), head_dim=st.sampled_from([4, 6, 8, 10, 16]),
    ffn_dim=st.sampled_from([8, 20, 48, 64])).flatmap(  # multi-head, or grouped-query attention
    lambda c: st.sampled_from([None] + [g for g in range(1, c.n_heads + 1) if c.n_heads % g == 0]).map(
        lambda g: dataclasses.replace(c, n_kv_heads=g)))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs, st.integers(0, 2**16), st.floats(1.0, 6.0), st.data())
def test_random_tiny_models_match_reference(bpe, spec, cfg, seed, gain, data):
    _, im = make_int_model(cfg, seed=seed, gain=gain)
    tokens = data.draw(st.lists(st.integers(0, cfg.vocab_size - 1), min_size=1, max_size=cfg.ctx))
    with tempfile.TemporaryDirectory() as tmp:
        con = start_firmware(Path(tmp), im, bpe, spec)
        try:
            assert run_lines(con, tokens) == expected_steps(im, tokens)
        finally:
            con.close()


def test_context_longer_than_every_width(tmp_path, bpe, spec):
    """The attention probabilities are the longest matvec input when ctx > d, a and f."""
    cfg = ModelConfig(vocab_size=320, ctx=40, dim=8, n_layers=1, n_heads=2, head_dim=4, ffn_dim=8)
    _, im = make_int_model(cfg, seed=1)
    tokens = [random.Random(2).randrange(cfg.vocab_size) for _ in range(cfg.ctx)]
    con = start_firmware(tmp_path, im, bpe, spec)
    try:
        assert run_lines(con, tokens) == expected_steps(im, tokens)
    finally:
        assert con.close() == 0


def test_gqa_model_matches_reference(tmp_path, tiny_gqa_int, bpe, spec):
    """4 query heads on 2 kv heads: every step of a full context, the last step's full logits, and a
    KV cache in the arena half the multi-head one."""
    im = tiny_gqa_int[1]
    tokens = [random.Random(4).randrange(im.cfg.vocab_size) for _ in range(im.cfg.ctx)]
    con = start_firmware(tmp_path, im, bpe, spec)
    try:
        assert run_lines(con, tokens) == expected_steps(im, tokens)
        last = forward_seq(im, tokens[:30])[-1]
        assert con.ask("!logits " + " ".join(map(str, tokens[:30]))).decode() == \
            "logits " + " ".join(map(str, last.tolist())) + "\n"
        info = protocol.info(con)
        assert (info["heads"], info["head_dim"]) == ("4", "8")
    finally:
        assert con.close() == 0
    header = (tmp_path / "ta_model.h").read_text()
    kv = 2 * im.cfg.n_layers * 2 * 8
    assert "#define TA_MODEL_N_KV_HEADS 2 " in header and f"#define TA_MODEL_KV_BYTES_PER_TOKEN {kv} " in header
    assert f"int8_t[2, 48, 16], {48 * 32} bytes" in header  # k_cache: (layers, ctx, kv_heads*head_dim)


def test_default_size_model_matches_reference(tmp_path, spec):
    """ModelConfig() (283k parameters) over a full context, and the full logits of the last step."""
    bpe512 = from_hf(train_tokenizer(sample_texts(), vocab_size=512))
    cfg = ModelConfig(vocab_size=bpe512.vocab_size)
    _, im = make_int_model(cfg, seed=7)
    tokens = [random.Random(1).randrange(cfg.vocab_size) for _ in range(cfg.ctx)]
    con = start_firmware(tmp_path, im, bpe512, spec)
    try:
        assert run_lines(con, tokens) == expected_steps(im, tokens)
        last = forward_seq(im, tokens[:50])[-1]
        reply = con.ask("!logits " + " ".join(map(str, tokens[:50]))).decode()
        assert reply == "logits " + " ".join(map(str, last.tolist())) + "\n"
    finally:
        assert con.close() == 0


def test_run_reports_bad_input(device):
    assert device.ask("!run 1 x") == b"error: !run needs token ids separated by spaces (e.g. !run 12 7 301)\n"
    assert device.ask("!run 320") == b"error: token 320 is out of range (vocab 320)\n"
    assert device.ask("!run") == b"error: !run needs 1 to 48 token ids (the context), got 0\n"
    assert device.ask("!run" + " 1" * 49) == b"error: !run needs 1 to 48 token ids (the context), got 49\n"
    assert device.ask("!logits 99999999999") == b"error: token 99999999999 is out of range (vocab 320)\n"


def test_info_and_reset(device, tiny_int, bpe, spec):
    from tinyagent.codegen.generate import model_hash

    im = tiny_int[1]
    info = protocol.info(device)
    assert info["board"] == "harness" and info["engine"] == "3"
    assert info["model"] == model_hash(im, bpe, spec)
    assert (info["vocab"], info["ctx"], info["dim"], info["layers"]) == ("320", "48", "32", "2")
    assert (info["heads"], info["head_dim"], info["ffn"], info["tools"]) == ("2", "16", "64", "6")
    assert int(info["arena"]) > 2 * 2 * 48 * 32
    assert device.ask("!reset") == b"ok\n"
    assert device.banner.startswith(b"tinyagent ") and b" on harness, model " in device.banner


# ---- the Cortex-M4 kernels, under QEMU --------------------------------------------------------------

# multi-head; grouped-query (decode: a group's query heads as one matmat over the keys), with a head of
# 10 (tails), 8 and 16 (the quad loops of 8 and 16 columns), and one kv head for four query heads
@pytest.mark.parametrize("n_heads,n_kv_heads,head_dim", [(3, None, 10), (4, 2, 10), (4, 2, 8), (4, 1, 16)])
def test_cm4_kernels_bit_exact_under_qemu(tmp_path, bpe, spec, n_heads, n_kv_heads, head_dim):
    """ta_kernels_cm4.c (SMLAD) on the mps2-an386 board: odd dims leave tails in every kernel loop."""
    import os
    import select
    import subprocess
    import time

    from tinyagent.codegen.generate import generate_sources
    from tinyagent.targets.boards import load_board
    from tinyagent.targets.toolchain import compile_and_link

    cfg = ModelConfig(vocab_size=320, ctx=40, dim=36, n_layers=2, n_heads=n_heads, head_dim=head_dim, ffn_dim=50,
                      n_kv_heads=n_kv_heads)
    _, im = make_int_model(cfg, seed=3)
    board = load_board("mps2-an386")
    art = compile_and_link(board, generate_sources(im, bpe, spec, board.name, tmp_path, kernels="cm4"),
                           [tmp_path], tmp_path)
    tokens = [random.Random(3).randrange(cfg.vocab_size) for _ in range(cfg.ctx)]
    proc = subprocess.Popen(["qemu-system-arm", "-M", "mps2-an386", "-display", "none", "-monitor", "none",
                             "-semihosting-config", "enable=on,target=native", "-serial", "stdio",
                             "-kernel", str(art.elf)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        proc.stdin.write(f"\n!run {' '.join(map(str, tokens))}\n!ping 9\n".encode())
        proc.stdin.flush()
        out, deadline = b"", time.monotonic() + 60
        while b"pong 9" not in out and time.monotonic() < deadline:
            if select.select([proc.stdout], [], [], 1)[0]:
                out += os.read(proc.stdout.fileno(), 65536)
    finally:
        proc.kill()
        proc.wait()
    steps = [ln.removeprefix("> ") for ln in out.decode(errors="replace").splitlines() if "step " in ln]
    assert steps == expected_steps(im, tokens)
    np.testing.assert_equal(len(steps), cfg.ctx)
