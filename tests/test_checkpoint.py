"""Checkpoints: round trip, and one-line rejection of missing, corrupt, truncated or mismatched ones."""
from __future__ import annotations

import json

import pytest
import torch

from tinyagent import checkpoint
from tinyagent.errors import EXIT_BAD_INPUT, TinyAgentError
from tinyagent.model import GPT, TINY


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    model = GPT(TINY)
    checkpoint.save_model(tmp_path, model, stage="teacher", step=7)
    return tmp_path, model


def one_line_error(fn, *args) -> str:
    with pytest.raises(TinyAgentError) as e:
        fn(*args)
    assert e.value.code == EXIT_BAD_INPUT
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


def test_round_trip(saved):
    folder, model = saved
    loaded = checkpoint.load_model(folder)
    assert loaded.cfg == model.cfg
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    cfg = checkpoint.read_config(folder)
    assert cfg["stage"] == "teacher" and cfg["step"] == 7 and len(cfg["sha256"]) == 64
    x = torch.randint(0, TINY.vocab_size, (2, 10))
    assert torch.equal(model(x), loaded(x))


def test_missing(tmp_path):
    assert "no checkpoint" in one_line_error(checkpoint.load_model, tmp_path / "nope")


def test_missing_weights(saved):
    folder, _ = saved
    (folder / checkpoint.WEIGHTS).unlink()
    assert "missing" in one_line_error(checkpoint.load_model, folder)


def test_truncated_weights(saved):
    folder, _ = saved
    w = folder / checkpoint.WEIGHTS
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    assert "corrupt or truncated" in one_line_error(checkpoint.load_model, folder)


def test_flipped_byte(saved):
    folder, _ = saved
    w = folder / checkpoint.WEIGHTS
    data = bytearray(w.read_bytes())
    data[-5] ^= 0x40
    w.write_bytes(bytes(data))
    assert "sha256" in one_line_error(checkpoint.load_model, folder)


def test_corrupt_config(saved):
    folder, _ = saved
    (folder / checkpoint.CONFIG).write_text('{"format": 1, "model": ')
    assert "not valid JSON" in one_line_error(checkpoint.load_model, folder)


def test_config_not_matching_weights(saved):
    folder, _ = saved
    cfg = json.loads((folder / checkpoint.CONFIG).read_text())
    cfg["model"]["ffn_dim"] = 48
    (folder / checkpoint.CONFIG).write_text(json.dumps(cfg))
    msg = one_line_error(checkpoint.load_model, folder)
    assert "shape" in msg and ("w1" in msg or "w2" in msg)


def test_state_round_trip_and_truncation(tmp_path):
    state = {"step": 3, "net": {"w": torch.ones(2)}, "optim": {}, "rng": torch.get_rng_state()}
    checkpoint.save_state(tmp_path, state)
    back = checkpoint.load_state(tmp_path)
    assert back["step"] == 3 and torch.equal(back["net"]["w"], torch.ones(2))
    p = tmp_path / checkpoint.STATE
    p.write_bytes(p.read_bytes()[:100])
    assert "corrupt or truncated" in one_line_error(checkpoint.load_state, tmp_path)
    checkpoint.clear_state(tmp_path)
    assert checkpoint.load_state(tmp_path) is None
