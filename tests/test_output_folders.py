"""Output folders that cannot be written: read-only (EROFS), full (ENOSPC), without permission
(EACCES). Every command that writes says so in one line naming the folder, never a traceback.

The suite runs as root, where chmod 0500 does not stop a write, and it cannot mount a read-only or a
full file system; so `unwritable` makes the kernel's answers happen in Python, where tinyagent writes:
os.mkdir (Path.mkdir), tempfile.mkstemp (every file goes through fileio's atomic writer),
os.access/os.statvfs (the early check before long work). The fake's name says it is one."""
from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from tinyagent import fileio
from tinyagent.agent.spec import DEFAULT_SPEC_PATH
from tinyagent.cli import main
from tinyagent.errors import EXIT_BAD_INPUT, TinyAgentError
from tinyagent.targets.boards import load_board
from tinyagent.targets.toolchain import compile_and_link
from tinyagent.training.run import create_run

from conftest import make_int_model

WHY = {errno.EROFS: "is on a read-only file system", errno.ENOSPC: "no space left on the device that holds",
       errno.EACCES: "permission denied in"}


def said(code: int, folder: Path) -> str:
    """What the line says of `folder` for errno `code`."""
    return f"{folder} {WHY[code]}" if code == errno.EROFS else f"{WHY[code]} {folder}"


@pytest.fixture()
def unwritable(monkeypatch):
    """fake_unwritable(folder, code): from now on, writes in or under `folder` fail with errno `code`."""
    blocked: dict[Path, int] = {}
    real_mkdir, real_mkstemp = os.mkdir, tempfile.mkstemp
    real_access, real_statvfs = os.access, os.statvfs

    def code_for(path) -> int | None:
        p = Path(path).absolute()
        return next((c for f, c in blocked.items() if p == f or f in p.parents), None)

    def fail(code: int, path):
        raise OSError(code, os.strerror(code), str(path))

    def mkdir(path, mode=0o777, *a, **kw):
        if code_for(path):
            fail(code_for(path), path)
        return real_mkdir(path, mode, *a, **kw)

    def mkstemp(suffix=None, prefix=None, dir=None, text=False):
        if dir is not None and code_for(dir):
            fail(code_for(dir), Path(dir) / f"{prefix or ''}XXXXXXXX{suffix or ''}")
        return real_mkstemp(suffix, prefix, dir, text)

    def access(path, mode, *a, **kw):
        if mode & os.W_OK and code_for(path) in (errno.EROFS, errno.EACCES):
            return False
        return real_access(path, mode, *a, **kw)

    def statvfs(path):
        if code_for(path) == errno.EROFS:
            return SimpleNamespace(f_flag=os.ST_RDONLY)
        return real_statvfs(path)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "statvfs", statvfs)

    def fake_unwritable(folder: Path, code: int) -> Path:
        real_mkdir(folder) if not folder.exists() else None
        blocked[folder.absolute()] = code
        return folder

    return fake_unwritable


def one_line(fn, *args, **kw) -> str:
    with pytest.raises(TinyAgentError) as e:
        fn(*args, **kw)
    assert e.value.code == EXIT_BAD_INPUT and not e.value.details
    assert "\n" not in str(e.value)
    return str(e.value)


# ---- the atomic writer and mkdir ----------------------------------------------------------------------

@pytest.mark.parametrize("code", list(WHY))
def test_a_write_into_an_unwritable_folder_is_one_line(tmp_path, unwritable, code):
    folder = unwritable(tmp_path / "out", code)
    msg = one_line(fileio.write_json, folder / "run.json", {})
    assert f"cannot write {folder}/run.json" in msg and said(code, folder) in msg
    msg = one_line(fileio.write_text, folder / "sub" / "x.txt", "x")  # its folder cannot be made
    assert f"cannot create {folder}/sub" in msg and said(code, folder) in msg


def test_a_disk_that_fills_during_the_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    fileio.write_json(path, {"old": True})

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    msg = one_line(fileio.write_json, path, {"new": True})
    assert f"cannot write {path}" in msg and f"no space left on the device that holds {tmp_path}" in msg
    assert json.loads(path.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]  # no temp file left behind


def test_check_writable_before_long_work(tmp_path, unwritable):
    ro = unwritable(tmp_path / "ro", errno.EROFS)
    msg = one_line(fileio.check_writable, ro / "runs" / "new")
    assert f"cannot create {ro}/runs/new" in msg and f"{ro} is on a read-only file system" in msg
    fileio.check_writable(tmp_path / "fine" / "deeper")  # a writable ancestor: nothing to say


# ---- every command that writes ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder with a random int8 model: enough for build, export and eval."""
    run = create_run(DEFAULT_SPEC_PATH, tmp_path_factory.mktemp("out") / "run", seed=0, n_train=200, n_val=20,
                     n_heldout=20, vocab_size=300, ctx=48, args={})
    from tinyagent.integer.config import ModelConfig

    vocab = run.info["vocab_size"]
    cfg = ModelConfig(vocab_size=vocab, ctx=48, dim=32, n_layers=1, n_heads=2, head_dim=16, ffn_dim=32)
    make_int_model(cfg)[1].save(run.path / "int8")
    return run.path


def _invoke(args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert isinstance(r.exception, SystemExit) and r.exit_code == EXIT_BAD_INPUT, (r.output, r.exception)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("tinyagent: error: cannot "), r.stderr
    return lines[0]


# train into a full folder shows only when it writes, after the corpus: test_train_into_a_full_folder
CASES = [(c, code) for c in ("build", "new", "export", "bench", "train") for code in WHY
         if (c, code) != ("train", errno.ENOSPC)]


@pytest.mark.parametrize("command, code", CASES)
def test_commands_say_the_folder_cannot_be_written(tmp_path, run_dir, unwritable, command, code):
    out = unwritable(tmp_path / "out", code)
    args = {"build": ["build", "--board", "host", "--run", run_dir, "--out", out / "b"],
            "new": ["new", "fresh", "--dir", out],
            "export": ["export", "--run", run_dir, "--out", out / "m.tflite"],
            "bench": ["bench", "--quick", "--out", out / "bench"],
            "train": ["train", "--out", out / "t"]}[command]
    line = _invoke(args)
    assert str(out) in line and WHY[code] in line, line


@pytest.mark.parametrize("code", list(WHY))
def test_eval_says_the_run_folder_cannot_be_written(tmp_path, run_dir, unwritable, code):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    unwritable(run, code)
    line = _invoke(["eval", "--run", run, "--n", "2"])
    assert f"cannot write {run}/eval.json" in line and said(code, run) in line


def test_train_into_a_full_folder(tmp_path, unwritable):
    from tinyagent.integer.config import TINY
    from tinyagent.training.chain import train

    full = unwritable(tmp_path / "full", errno.ENOSPC)
    msg = one_line(train, DEFAULT_SPEC_PATH, full / "run", n_train=200, n_val=20, n_heldout=20, steps=5,
                   teacher_cfg=TINY, student_cfg=TINY, until="teacher", progress=False)
    assert f"cannot create {full}/run" in msg and f"no space left on the device that holds {full}" in msg


# ---- the linker -------------------------------------------------------------------------------------------

def test_a_link_error_is_one_line_and_says_where_the_log_is(tmp_path):
    src = tmp_path / "main.c"
    src.write_text("extern int one(void), two(void), three(void);\n"
                   "int main(void) { return one() + two() + three(); }\n")
    board = load_board("host")
    board = __import__("dataclasses").replace(board, hal_sources=())
    with pytest.raises(TinyAgentError) as e:
        compile_and_link(board, [src], [], tmp_path / "out")
    msg = str(e.value)
    assert "\n" not in msg and not e.value.details
    assert msg.startswith("linking for host failed: ") and "undefined reference" in msg
    log = tmp_path / "out" / "firmware.link.log"
    assert f"(full log: {log})" in msg
    text = log.read_text()
    assert all(f"`{f}'" in text or f"'{f}'" in text for f in ("one", "two", "three")), text
