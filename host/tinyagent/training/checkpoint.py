"""Model checkpoints (what a stage publishes) and training state (what resume needs).

A stage folder holds:
  model.safetensors   the float weights
  config.json         {"format", "model": ModelConfig, "stage", "step", "sha256": of model.safetensors, ...}
  train_state.pt      only while the stage runs: weights, optimizer, step, RNG state (torch.save)

Every file is written atomically (fileio). The weights go first and config.json, which names their
hash, last; a kill between the two leaves a pair whose hash disagrees, which `load_model` rejects as
it rejects any other corrupt or truncated checkpoint. Resume never needs that pair: train_state.pt is
one file and holds everything.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load, save as st_save

from ..errors import bad_input
from ..fileio import read_json, remove_stale_temps, sha256_bytes, write_bytes, write_json
from ..integer.config import ModelConfig
from ..integer.intmodel import check_model_config
from .model import GPT

FORMAT = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
STATE = "train_state.pt"
STATE_MAGIC = b"TASTATE1"  # train_state.pt starts with this, then the payload's sha256


def first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:80] if lines else type(e).__name__


def save_model(folder: str | Path, model: GPT, *, stage: str, step: int, extra: dict | None = None) -> str:
    """Write model.safetensors then config.json. Returns the weights' sha256."""
    folder = Path(folder)
    # Tied or shared tensors are not allowed by safetensors; clone makes every entry its own storage.
    tensors = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    data = st_save(tensors)
    digest = sha256_bytes(data)
    write_bytes(folder / WEIGHTS, data)
    write_json(folder / CONFIG, {"format": FORMAT, "model": model.cfg.to_dict(), "stage": stage, "step": step,
                                 "sha256": digest, **(extra or {})})
    return digest


def read_config(folder: str | Path) -> dict:
    """config.json of a checkpoint, checked for the fields load_model needs."""
    path = Path(folder) / CONFIG
    try:
        cfg = read_json(path, "checkpoint config")
    except FileNotFoundError:
        raise bad_input(f"{folder}: no checkpoint ({CONFIG} is missing)") from None
    if not isinstance(cfg, dict) or type(cfg.get("format")) is not int or cfg["format"] != FORMAT \
            or not {"model", "sha256"} <= cfg.keys():
        raise bad_input(f"{path}: not a tinyagent checkpoint config (expected format {FORMAT} "
                        "with 'model' and 'sha256')")
    check_model_config(cfg["model"], f"{path}: model")
    return cfg


def load_model(folder: str | Path, device: str = "cpu") -> GPT:
    """The GPT in `folder`, after checking the weights against the hash and shapes in config.json."""
    folder = Path(folder)
    cfg = read_config(folder)
    wpath = folder / WEIGHTS
    try:
        data = wpath.read_bytes()
    except FileNotFoundError:
        raise bad_input(f"{folder}: no checkpoint weights ({WEIGHTS} is missing)") from None
    if sha256_bytes(data) != cfg["sha256"]:
        raise bad_input(f"{wpath}: corrupt or truncated checkpoint (sha256 does not match {CONFIG})")
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError) as e:
        raise bad_input(f"{wpath}: unreadable weights ({first_line(e)})") from None
    model = GPT(ModelConfig.from_dict(cfg["model"]))
    expect = model.state_dict()
    if tensors.keys() != expect.keys():
        missing = sorted(expect.keys() - tensors.keys()) or sorted(tensors.keys() - expect.keys())
        raise bad_input(f"{wpath}: weights do not match the config in {CONFIG} (first odd tensor: {missing[0]})")
    for k, v in tensors.items():
        if v.shape != expect[k].shape:
            raise bad_input(f"{wpath}: tensor {k} has shape {tuple(v.shape)}, config says "
                            f"{tuple(expect[k].shape)}")
    model.load_state_dict(tensors)
    return model.to(device)


def save_state(folder: str | Path, state: dict) -> None:
    """train_state.pt: STATE_MAGIC, the sha256 of the payload (32 bytes), then torch.save's payload."""
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    write_bytes(Path(folder) / STATE, STATE_MAGIC + hashlib.sha256(payload).digest() + payload)


def load_state(folder: str | Path) -> dict | None:
    """The resume state of a stage, or None if the stage has none; its checksum is verified first. A
    state from before the checksum (a bare torch zip) is still read. Stale temp files of the stage's
    interrupted writes are deleted."""
    folder = Path(folder)
    path = folder / STATE
    remove_stale_temps(folder)
    if not path.exists():
        return None
    fix = "delete it to restart the stage"
    try:
        data = path.read_bytes()
    except OSError as e:
        raise bad_input(f"{path}: cannot read the training state ({e.strerror}); {fix}") from None
    if data.startswith(STATE_MAGIC):
        n = len(STATE_MAGIC)
        digest, payload = data[n:n + 32], data[n + 32:]
        if hashlib.sha256(payload).digest() != digest:
            raise bad_input(f"{path}: training state fails its checksum (corrupt or truncated: sha256 "
                            f"{hashlib.sha256(payload).hexdigest()[:12]}, saved {digest.hex()[:12]}); {fix}")
    elif data.startswith(b"PK\x03\x04"):  # torch's zip format, as saved before the checksum existed
        payload = data
    else:
        raise bad_input(f"{path}: not a tinyagent training state (no {STATE_MAGIC.decode()} header); {fix}")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a truncated or foreign file
        raise bad_input(f"{path}: corrupt or truncated training state ({first_line(e)}); {fix}") from None
    if not isinstance(state, dict) or not {"step", "net", "optim"} <= state.keys():
        raise bad_input(f"{path}: not a tinyagent training state (missing step/net/optim); "
                        "delete it to restart the stage")
    return state


def clear_state(folder: str | Path) -> None:
    (Path(folder) / STATE).unlink(missing_ok=True)
