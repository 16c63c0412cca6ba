"""The build folder: one build at a time (a lock with the builder's pid), and a build that was cut
short or failed is redone by the next build of the same model without --replace (the marker
tinyagent-build.partial.json names the model before anything is generated)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from tinyagent.codegen.generate import FIRMWARE_DIR
from tinyagent.errors import EXIT_BAD_INPUT, TinyAgentError
from tinyagent.targets import build as build_mod
from tinyagent.targets.build import LOCK_FILE, MANIFEST, PARTIAL, build

from conftest import make_int_model


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run


@pytest.fixture(scope="module")
def other_run(tmp_path_factory, run, tiny_int):
    other = tmp_path_factory.mktemp("other") / "run"
    shutil.copytree(run, other)
    shutil.rmtree(other / "int8")
    make_int_model(tiny_int[1].cfg, seed=1)[1].save(other / "int8")
    return other


def one_line(fn, *args, **kw) -> str:
    with pytest.raises(TinyAgentError) as e:
        fn(*args, **kw)
    assert e.value.code == EXIT_BAD_INPUT and "\n" not in str(e.value)
    return str(e.value)


HOLD = textwrap.dedent("""
    import fcntl, os, sys, time
    f = open(sys.argv[1], "a+")
    fcntl.flock(f, fcntl.LOCK_EX)
    f.seek(0); f.truncate(); f.write(f"{os.getpid()}\\n"); f.flush()
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin
""")


def test_a_second_build_into_the_same_folder_fails_naming_the_first(tmp_path, run):
    out = tmp_path / "b"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out / LOCK_FILE)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        msg = one_line(build, "host", out, run, generate_only=True)
        assert msg.startswith(f"build folder {out} is in use by another build (pid {holder.pid})"), msg
        assert not (out / PARTIAL).exists() and not (out / "src").exists()  # it wrote nothing
    finally:
        holder.stdin.close()
        holder.wait()
    assert build("host", out, run, generate_only=True).generated_only  # the lock is free again
    assert (out / MANIFEST).exists() and not (out / PARTIAL).exists()


def test_an_interrupted_build_is_redone_without_replace(tmp_path, run, other_run, monkeypatch):
    out = tmp_path / "b"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C while compiling: src/ is written, no manifest

    monkeypatch.setattr("tinyagent.targets.toolchain.compile_and_link", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build("host", out, run)
    assert (out / "src" / "ta_model.c").exists() and not (out / MANIFEST).exists()
    marker = json.loads((out / PARTIAL).read_text())
    monkeypatch.undo()
    msg = one_line(build, "host", out, other_run, generate_only=True)  # another model: not without asking
    assert f"{out} holds an unfinished build of model {marker['model_hash'][:12]}" in msg and "--replace" in msg
    r = build("host", out, run, generate_only=True)  # the same model: redone
    assert r.model_hash == marker["model_hash"] and (out / MANIFEST).exists() and not (out / PARTIAL).exists()
    assert build("host", out, other_run, generate_only=True, replace=True).model_hash != marker["model_hash"]


def test_a_build_that_failed_to_compile_is_built_again(tmp_path, run):
    out = tmp_path / "b"
    bad = tmp_path / "tools.c"
    bad.write_text((FIRMWARE_DIR / "ta_tools_default.c").read_text() + "\nint broken(void) { return }\n")
    with pytest.raises(TinyAgentError) as e:
        build("host", out, run, tools_c=str(bad))
    assert "compiling tools.c" in str(e.value)
    assert (out / PARTIAL).exists() and not (out / MANIFEST).exists()
    r = build("host", out, run)  # was: "is not empty and is not a tinyagent build"
    assert r.artifact.exists() and json.loads((out / MANIFEST).read_text())["artifact"] == "obj/firmware"
    assert not (out / PARTIAL).exists()


def test_a_rebuild_takes_the_old_manifest_away_until_it_is_complete(tmp_path, run, monkeypatch):
    out = tmp_path / "b"
    build("host", out, run, generate_only=True)
    monkeypatch.setattr(build_mod, "_finish", lambda out, manifest: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        build("host", out, run, generate_only=True)
    assert not (out / MANIFEST).exists() and (out / PARTIAL).exists()


def test_bad_input_leaves_no_folder_and_no_lock(tmp_path, run):
    new = tmp_path / "new"
    one_line(build, "host", new, tmp_path / "no-run")
    assert not new.exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    assert "not a tinyagent build" in one_line(build, "host", mine, run)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
