"""Shared fixtures: a tiny random integer model and tokenizer, built once per session (seconds)."""
from __future__ import annotations

import random

import pytest
import torch

from tinyagent import intmodel
from tinyagent.model import GPT, ModelConfig
from tinyagent.tokenizer import from_hf, train_tokenizer

WORDS = ("turn on the light please set a timer for five minutes what is temperature gpio pin high "
         "low led off toggle status uptime hello thanks could you").split()


def sample_texts(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        req = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9)))
        out.append(f"{req}\n[led on]on\nThe LED is on.\n")
    return out


def make_int_model(cfg: ModelConfig, seed: int = 0, gain: float = 3.0):
    """A random GPT whose weights are scaled up so attention and norms are not trivial, exported."""
    torch.manual_seed(seed)
    m = GPT(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(gain)
    batches = [torch.randint(0, cfg.vocab_size, (4, min(cfg.ctx, 32))) for _ in range(2)]
    m.qat = intmodel.calibrate(m, batches)
    return m, intmodel.export_int_model(m)


@pytest.fixture(scope="session")
def bpe():
    return from_hf(train_tokenizer(sample_texts(), vocab_size=320))


@pytest.fixture(scope="session")
def tiny_int():
    cfg = ModelConfig(vocab_size=320, ctx=48, dim=32, n_layers=2, n_heads=2, head_dim=16, ffn_dim=64)
    return make_int_model(cfg)
