"""Two CPU processes under torch.distributed.run (gloo): the loss goes down, rank 0 alone writes one
loadable checkpoint, and it has the shapes of the single-process run."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tinyagent.training import checkpoint
from tinyagent.training.chain import train

HERE = Path(__file__).resolve().parent
SPEC = HERE.parent / "agents" / "default.toml"
sys.path.insert(0, str(HERE))
from ddp_train import ARGS  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # Its own session, so a hang can be ended by killing exactly this launcher and its workers.
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
                             str(HERE / "ddp_train.py"), str(SPEC), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        raise AssertionError("torch.distributed.run did not finish in 120 s: " + err[-2000:]) from None
    assert proc.returncode == 0, err[-3000:]
    info = json.loads((out / "run.json").read_text())
    teacher = info["stages"]["teacher"]
    assert teacher["status"] == "done" and teacher["step"] == ARGS["steps"]
    curve = teacher["curve"]
    assert curve[-1][1] < 0.75 * curve[0][1], curve
    # Exactly one checkpoint, written once: no stray temporary or resume files, no other stage output.
    assert sorted(p.name for p in (out / "teacher").iterdir()) == sorted([checkpoint.WEIGHTS, checkpoint.CONFIG])
    assert sorted(p.name for p in out.iterdir()) == ["run.json", "spec.toml", "teacher", "tokenizer.json"]
    ddp_model = checkpoint.load_model(out / "teacher")

    single = tmp_path / "single"
    train(SPEC, single, **ARGS)
    ref = checkpoint.load_model(single / "teacher")
    assert ddp_model.cfg == ref.cfg
    assert {k: v.shape for k, v in ddp_model.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    single_loss = json.loads((single / "run.json").read_text())["stages"]["teacher"]["metrics"]["val"]["loss"]
    assert abs(teacher["metrics"]["val"]["loss"] - single_loss) < 0.25 * single_loss
