"""Checkpoints: round trip, and one-line rejection of missing, corrupt, truncated or mismatched ones."""
from __future__ import annotations

import json
import os
import stat

import pytest
import torch

from tinyagent.errors import EXIT_BAD_INPUT, TinyAgentError
from tinyagent.fileio import write_json
from tinyagent.integer.config import TINY
from tinyagent.training import checkpoint
from tinyagent.training.model import GPT


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


# ---- the training state's checksum, and the atomic writer's temp files and modes -----------------------

def _state(tmp_path):
    checkpoint.save_state(tmp_path, {"step": 3, "net": {"w": torch.arange(64.0)}, "optim": {},
                                     "rng": torch.get_rng_state()})
    return tmp_path / checkpoint.STATE


def test_a_flipped_bit_in_the_training_state_fails_its_checksum(tmp_path):
    p = _state(tmp_path)
    data = bytearray(p.read_bytes())
    assert data.startswith(checkpoint.STATE_MAGIC)
    data[len(data) // 2] ^= 0x08  # one bit, in the middle of the tensor data (torch.load alone reads it)
    p.write_bytes(bytes(data))
    msg = one_line_error(checkpoint.load_state, tmp_path)
    assert "fails its checksum" in msg and str(p) in msg and "delete it to restart the stage" in msg


def test_a_training_state_from_before_the_checksum_still_loads(tmp_path):
    import io

    buf = io.BytesIO()
    torch.save({"step": 5, "net": {}, "optim": {}}, buf)  # a bare torch zip, as older versions wrote
    (tmp_path / checkpoint.STATE).write_bytes(buf.getvalue())
    assert checkpoint.load_state(tmp_path)["step"] == 5
    (tmp_path / checkpoint.STATE).write_bytes(b"\x00" * 100)
    assert "not a tinyagent training state" in one_line_error(checkpoint.load_state, tmp_path)


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_resume_deletes_the_temp_files_of_a_killed_write(tmp_path):
    _state(tmp_path)
    dead = tmp_path / f".{checkpoint.STATE}.{_dead_pid()}.abcd1234.tmp"  # a write killed before its rename
    live = tmp_path / f".{checkpoint.STATE}.{os.getppid()}.abcd1234.tmp"  # one still being written
    dead.write_bytes(b"half")
    live.write_bytes(b"half")
    assert checkpoint.load_state(tmp_path)["step"] == 3
    assert not dead.exists() and live.exists()


def test_the_next_write_deletes_stale_temps_of_that_file(tmp_path):
    pid = _dead_pid()
    mine = tmp_path / f".run.json.{pid}.zz99xx00.tmp"
    other = tmp_path / f".eval.json.{pid}.zz99xx00.tmp"
    old = tmp_path / ".run.json.q1w2e3r4.tmp"  # an older tinyagent's name (no pid): stale once old
    for p in (mine, other, old):
        p.write_text("{")
    os.utime(old, (0, 0))
    write_json(tmp_path / "run.json", {"ok": 1})
    assert json.loads((tmp_path / "run.json").read_text()) == {"ok": 1}
    assert not mine.exists() and not old.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "run.json"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask_like_open(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {})
        with open(tmp_path / "b.json", "w"):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "b.json").stat().st_mode) == mode


def test_rewriting_a_file_keeps_its_mode(tmp_path):
    p = tmp_path / "config.json"
    write_json(p, {})
    p.chmod(0o640)
    write_json(p, {"again": True})
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
