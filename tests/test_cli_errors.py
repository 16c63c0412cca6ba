"""The table of bad inputs: every command's flags and file arguments, each given a bad value, must end
with one line on stderr (`tinyagent: error: ...`) that names the bad value and says what is allowed,
the exit code errors.py gives that kind of failure, and no traceback (`--debug` shows it).

File arguments are tried missing, as a file where a folder belongs (and the other way round), corrupt,
truncated and written by a newer tinyagent (a format version above the one this code reads). The
fixture run folder is the tests' tiny random model (conftest.py), so no row trains or compiles
anything. "Unreadable" (chmod 000) is not in the table: the suite runs as root in CI, where such a file
is still readable, so the row would test nothing; a folder in the place of a file (run.json,
model.int.json, the build manifest, --agent, --tools) takes the same path through the loaders (an
OSError when reading), and is tried instead.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tinyagent.agent.spec import DEFAULT_SPEC_PATH
from tinyagent.cli import DEFAULT_RUN, main
from tinyagent.device.chat import LINE_MAX, LINE_TOO_LONG
from tinyagent.errors import (
    EXIT_BAD_INPUT,
    EXIT_CHECK_FAILED,
    EXIT_DEVICE,
    EXIT_DOES_NOT_FIT,
    EXIT_INTERRUPTED,
    EXIT_TOOL_MISSING,
    TinyAgentError,
)
from tinyagent.targets.build import build

BAD, DEVICE, NOT_BUILT = EXIT_BAD_INPUT, EXIT_DEVICE, EXIT_TOOL_MISSING


def _json_edit(path, **fields):
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


def _json_change(path, change):
    data = json.loads(path.read_text())
    path.write_text(json.dumps(change(data)))


def _permute_byte_tokens(tok):
    v = tok["model"]["vocab"]
    v["a"], v["b"] = v["b"], v["a"]
    return tok


@pytest.fixture(scope="module")
def paths(tmp_path_factory, tiny_int, bpe):
    """Placeholder -> path, for the rows below."""
    root = tmp_path_factory.mktemp("cli-errors")
    run = root / "run"  # a run folder as `tinyagent quantize` leaves it (minimal run.json)
    tiny_int[1].save(run / "int8")
    bpe.save(run / "tokenizer.json")
    shutil.copy(DEFAULT_SPEC_PATH, run / "spec.toml")
    (run / "run.json").write_text(json.dumps({"format": 1, "stages": {}}))

    def variant(name, change):
        v = root / name
        shutil.copytree(run, v)
        change(v)
        return v

    rj = "run.json"
    i8c, i8w = "int8/model.int.json", "int8/model.int.safetensors"
    p = {
        "run": run,
        "missing": root / "no-such-thing",
        "file": root / "a-file.txt",
        "dir": root / "a-folder",
        "bad_toml": root / "bad.toml",
        "rj_dir": variant("rj-dir", lambda v: ((v / rj).unlink(), (v / rj).mkdir())),
        "rj_corrupt": variant("rj-corrupt", lambda v: (v / rj).write_bytes(b"\x00\xffnot json")),
        "rj_trunc": variant("rj-trunc", lambda v: (v / rj).write_text('{"format": 1, "sta')),
        "rj_newer": variant("rj-newer", lambda v: _json_edit(v / rj, format=99)),
        "rj_true": variant("rj-true", lambda v: _json_edit(v / rj, format=True)),
        "rj_stages": variant("rj-stages", lambda v: _json_edit(v / rj, stages=[])),
        "rj_seed": variant("rj-seed", lambda v: _json_edit(v / rj, seed="zero")),
        "rj_status": variant("rj-status", lambda v: _json_edit(v / rj, stages={"teacher": {"status": "finished"}})),
        "rj_corpus": variant("rj-corpus", lambda v: _json_edit(v / rj, corpus={"n_train": "many"})),
        "rj_args": variant("rj-args", lambda v: _json_edit(v / rj, args={"student_cfg": {"dim": 32}})),
        "no_int8": variant("no-int8", lambda v: shutil.rmtree(v / "int8")),
        "i8_dir": variant("i8-dir", lambda v: ((v / i8c).unlink(), (v / i8c).mkdir())),
        "i8_corrupt": variant("i8-corrupt", lambda v: (v / i8c).write_text("{nope")),
        "i8_trunc": variant("i8-trunc", lambda v: (v / i8w).write_bytes((v / i8w).read_bytes()[:1000])),
        "i8_newer": variant("i8-newer", lambda v: _json_edit(v / i8c, format=99)),
        "i8_negctx": variant("i8-negctx", lambda v: _json_change(v / i8c, lambda m: {**m, "config": {
            **m["config"], "ctx": -5}})),
        "i8_heads0": variant("i8-heads0", lambda v: _json_change(v / i8c, lambda m: {**m, "config": {
            **m["config"], "n_heads": 0}})),
        "i8_list": variant("i8-list", lambda v: _json_change(v / i8c, lambda m: [m])),
        "i8_noscales": variant("i8-noscales", lambda v: _json_change(v / i8c, lambda m: {
            k: x for k, x in m.items() if k != "scales"})),
        "tok_nomerge": variant("tok-nomerge", lambda v: _json_change(v / "tokenizer.json", lambda t: {
            **t, "model": {**t["model"], "merges": []}})),
        "tok_perm": variant("tok-perm", lambda v: _json_change(v / "tokenizer.json", _permute_byte_tokens)),
        "tok_corrupt": variant("tok-corrupt", lambda v: (v / "tokenizer.json").write_text("{nope")),
        "tok_trunc": variant("tok-trunc", lambda v: (v / "tokenizer.json").write_text(
            (v / "tokenizer.json").read_text()[:500])),
        "spec_corrupt": variant("spec-corrupt", lambda v: (v / "spec.toml").write_text("[[tool]\n")),
        "agents": root / "agents",
        "out": root / "out",
    }
    p["file"].write_text("hello\n")
    p["huge"] = root / "huge.toml"
    p["huge"].write_text("# " + "x" * (2 * 1024 * 1024 - 3) + "\n")
    p["dir"].mkdir()
    p["bad_toml"].write_text("[agent\nname =")
    p["agents"].mkdir()
    default = DEFAULT_SPEC_PATH.read_text()
    for name, was, now in (("spec_fixed", 'args = { level = 1 }', 'args = { level = 7 }'),  # trained calls the grammar refuses
                           ("spec_int32", 'args.pin = { type = "int", min = 0, max = 39 }',
                            'args.pin = { type = "int", min = 0, max = 2147483648 }'),  # the device's int32
                           ("spec_dur32", 'args.seconds = { type = "duration", min = 1, max = 86400 }',
                            'args.seconds = { type = "duration", min = 1, max = 4294967296 }')):
        assert was in default, was
        p[name] = p["agents"] / f"{name}.toml"  # read by `new NAME --tools-only`, which trains nothing
        p[name].write_text(default.replace(was, now, 1))
    (p["agents"] / "dup.toml").write_text("")
    (p["agents"] / "mine_tools.c").write_text("/* my handlers */\n")
    shutil.copy(DEFAULT_SPEC_PATH, p["agents"] / "have.toml")
    (p["agents"] / "have_tools.c").write_text("/* my handlers */\n")

    def build_dir(name, manifest):
        d = root / name
        d.mkdir()
        if manifest is not None:
            (d / "tinyagent-build.json").write_text(manifest)
        return d

    host = {"board": "host", "model_hash": "0" * 64, "artifact": "obj/firmware"}
    p["bm_other"] = build_dir("bm-other", json.dumps(host))  # another model's build for host
    p["bm_corrupt"] = build_dir("bm-corrupt", "{x")
    p["bm_trunc"] = build_dir("bm-trunc", json.dumps(host)[:20])
    p["bm_newer"] = build_dir("bm-newer", json.dumps({**host, "format": 99}))
    p["bm_dir"] = build_dir("bm-dir", None)
    (p["bm_dir"] / "tinyagent-build.json").mkdir()
    p["bm_true"] = build_dir("bm-true", json.dumps({**host, "artifact": "/bin/true", "run": str(run)}))
    p["bm_up"] = build_dir("bm-up", json.dumps({**host, "artifact": "../../../../bin/true"}))
    p["bm_fmt_true"] = build_dir("bm-fmt-true", json.dumps({**host, "format": True}))
    p["bm_hash_int"] = build_dir("bm-hash-int", json.dumps({**host, "model_hash": 7}))

    def program(name, data, mode=0o755):
        d = build_dir(name, json.dumps({**host, "run": str(run)}))
        (d / "obj").mkdir()
        (d / "obj" / "firmware").write_bytes(data)
        (d / "obj" / "firmware").chmod(mode)
        return d

    elf = shutil.which("true")
    p["fw_empty"] = program("fw-empty", b"")
    p["fw_noexec"] = program("fw-noexec", open(elf, "rb").read(), 0o644)
    p["fw_script"] = program("fw-script", b"#!/bin/sh\nhead -c 3000000 /dev/zero | tr '\\0' a\necho\n")
    p["not_a_build"] = build_dir("not-a-build", None)
    (p["not_a_build"] / "notes.txt").write_text("mine\n")
    return p


B = ["build", "--board", "host", "--out", "{out}/b"]  # a build whose --run each row fills in
# (args, exit code, words the one line must contain). {name} is a path from the fixture.
ROWS = [
    # train
    (["train", "--agent", "{missing}", "--out", "{out}/t"], BAD, ["{missing}", "agent spec not found", "TOML"]),
    (["train", "--agent", "{dir}", "--out", "{out}/t"], BAD, ["{dir}", "Is a directory"]),
    (["train", "--agent", "{bad_toml}", "--out", "{out}/t"], BAD, ["{bad_toml}", "bad TOML", "line 1"]),
    (["train", "--until", "bogus"], BAD, ["'bogus'", "'teacher'", "'int8'", "--until"]),
    (["train", "--steps", "abc"], BAD, ["'abc'", "--steps", "integer"]),
    (["train", "--steps", "-5", "--out", "{out}/t"], BAD, ["-5", "allowed: > 0"]),
    (["train", "--steps", "0", "--out", "{out}/t"], BAD, ["steps 0", "allowed: > 0"]),  # was: 4000 steps
    (["train", "--seed", "x"], BAD, ["'x'", "--seed", "integer"]),
    (["train", "--seed", str(2**76), "--out", "{out}/t"], BAD, [str(2**76), "allowed: an integer 0..4294967295"]),
    (["train", "--agent", "/dev/zero", "--out", "{out}/t"], BAD, ["/dev/zero", "not a regular file"]),  # hung
    (["train", "--agent", "{huge}", "--out", "{out}/t"], BAD, ["{huge}", "2,097,152 bytes", "at most 1,048,576"]),
    (["train", "--device", "tpu", "--out", "{out}/t"], BAD, ["'tpu'", "cpu, cuda"]),
    (["train", "--out", "{file}"], BAD, ["{file}", "--resume", "choose a new folder"]),
    (["train", "--resume", "--out", "{missing}"], BAD, ["{missing}", "no run to resume", "drop --resume"]),
    (["train", "--budget", "0", "--out", "{out}/t"], BAD, ["budget 0.0 minutes", "allowed: > 0"]),
    (["train", "--budget", "soon"], BAD, ["'soon'", "--budget"]),
    (["train", "--resume", "--budget", "5", "--out", "{run}"], BAD, ["--budget plans a new run", "drop --budget"]),
    (["train", "--teacher-steps", "0", "--out", "{out}/t"], BAD, ["steps 0", "allowed: > 0"]),
    (["train", "--student-steps", "-2", "--out", "{out}/t"], BAD, ["distill_steps -2", "allowed: > 0"]),
    (["train", "--prune-steps", "many"], BAD, ["'many'", "--prune-steps"]),
    (["train", "--qat-steps", "0", "--out", "{out}/t"], BAD, ["qat_steps 0", "allowed: > 0"]),
    (["train", "--call-weight", "0", "--out", "{out}/t"], BAD, ["call_weight 0.0", "allowed: > 0"]),
    (["train", "--call-weight", "heavy"], BAD, ["'heavy'", "--call-weight"]),
    (["train", "--steps", "5", "--teacher-steps", "6"], BAD, ["--steps 5", "--teacher-steps 6", "give one"]),
    # distill, prune, quantize, eval: the run folder
    (["distill"], BAD, ["'--run'", "distill --help"]),
    (["distill", "--run", "{missing}"], BAD, ["{missing}", "no run.json", "tinyagent train"]),
    (["distill", "--run", "{file}"], BAD, ["{file}", "not a run folder"]),
    (["distill", "--run", "{rj_dir}"], BAD, ["{rj_dir}/run.json", "Is a directory"]),
    (["distill", "--run", "{rj_corrupt}"], BAD, ["{rj_corrupt}/run.json", "not valid JSON"]),
    (["distill", "--run", "{rj_trunc}"], BAD, ["{rj_trunc}/run.json", "not valid JSON"]),
    (["distill", "--run", "{rj_newer}"], BAD, ["{rj_newer}/run.json", "format 99", "format 1", "newer"]),
    (["distill", "--run", "{rj_true}"], BAD, ["{rj_true}/run.json", "format true", "expected 1"]),
    (["distill", "--run", "{rj_stages}"], BAD, ["{rj_stages}/run.json", "stages is []", "an object"]),
    (["distill", "--run", "{rj_seed}"], BAD, ["{rj_seed}/run.json", 'seed is "zero"', "an integer 0..4294967295"]),
    (["distill", "--run", "{rj_status}"], BAD, ["{rj_status}/run.json", 'stages.teacher.status is "finished"',
                                                 "pending, running, done"]),
    (["distill", "--run", "{rj_corpus}"], BAD, ["{rj_corpus}/run.json", 'corpus.n_train is "many"', "an integer"]),
    (["distill", "--run", "{rj_args}"], BAD, ["{rj_args}/run.json", "args.student_cfg.vocab_size is missing"]),
    (["prune", "--run", "{run}", "--ffn-keep", "0"], BAD, ["0.0", "0 < ffn_keep <= 1"]),
    (["prune", "--run", "{run}", "--ffn-keep", "1.5"], BAD, ["1.5", "0 < ffn_keep <= 1"]),
    (["prune", "--run", "{run}", "--heads-keep", "0"], BAD, ["0.0", "0 < heads_keep <= 1"]),
    (["prune", "--run", "{run}", "--ffn-keep", "abc"], BAD, ["'abc'", "--ffn-keep", "float"]),
    (["prune", "--run", "{run}", "--from", "teacher"], BAD, ["'teacher'", "best", "scratch"]),
    (["prune", "--run", "{run}", "--steps", "-3"], BAD, ["recover_steps -3", "allowed: > 0"]),
    (["distill", "--run", "{run}", "--steps", "0"], BAD, ["steps 0", "allowed: > 0"]),
    (["quantize", "--run", "{run}", "--steps", "x"], BAD, ["'x'", "--steps"]),
    (["quantize", "--run", "{run}", "--steps", "0"], BAD, ["qat_steps 0", "allowed: > 0"]),
    (["prune", "--run", "{missing}"], BAD, ["{missing}", "no run.json"]),
    (["prune", "--run", "{rj_newer}"], BAD, ["format 99", "format 1"]),
    (["quantize", "--run", "{missing}"], BAD, ["{missing}", "no run.json"]),
    (["quantize", "--run", "{file}"], BAD, ["{file}", "not a run folder"]),
    (["quantize", "--run", "{rj_corrupt}"], BAD, ["{rj_corrupt}/run.json", "not valid JSON"]),
    (["quantize", "--run", "{rj_newer}"], BAD, ["format 99", "format 1"]),
    (["eval", "--run", "{missing}"], BAD, ["{missing}", "no run.json"]),
    (["eval", "--run", "{rj_dir}"], BAD, ["{rj_dir}/run.json", "Is a directory"]),
    (["eval", "--run", "{rj_newer}"], BAD, ["format 99", "format 1"]),
    (["eval", "--run", "{rj_stages}"], BAD, ["{rj_stages}/run.json", "stages is []"]),
    (["eval", "--n", "0"], BAD, ["0", "--n", "x>=1"]),
    (["eval", "--n", "many"], BAD, ["'many'", "--n"]),
    (["eval", "--requests", "{missing}"], BAD, ["{missing}", "request file not found"]),
    (["eval", "--requests", "{file}", "--stage", "bogus"], BAD, ["'bogus'", "--stage"]),
    (["eval", "--split", "test"], BAD, ["'test'", "--split", "heldout", "train"]),
    (["eval", "--split", "train", "--requests", "{file}"], BAD, ["--split train", "--requests"]),
    (["gate", "--run", "{missing}"], BAD, ["{missing}", "no run.json"]),
    (["gate", "--run", "{rj_newer}"], BAD, ["format 99", "format 1"]),
    # new
    (["new"], BAD, ["'NAME'", "new --help"]),
    (["new", "Bad Name", "--dir", "{agents}"], BAD, ["'Bad Name'", "allowed:"]),
    (["new", "dup", "--dir", "{agents}"], BAD, ["{agents}/dup.toml", "exists already"]),
    (["new", "fresh", "--dir", "{file}"], BAD, ["{file}", "not a folder"]),
    (["new", "mine", "--dir", "{agents}"], BAD, ["{agents}/mine_tools.c", "exists already"]),
    (["new", "nosuch", "--tools-only", "--dir", "{agents}"], BAD,
     ["{agents}/nosuch.toml", "does not exist", "tinyagent new nosuch"]),
    (["new", "dup", "--tools-only", "--dir", "{agents}"], BAD, ["{agents}/dup.toml", "missing field 'agent'"]),
    (["new", "mine", "--tools-only", "--dir", "{agents}"], BAD, ["{agents}/mine.toml", "does not exist"]),
    (["new", "have", "--tools-only", "--dir", "{agents}"], BAD, ["{agents}/have_tools.c", "exists already",
                                                                 "move it away"]),
    (["new", "spec_fixed", "--tools-only", "--dir", "{agents}"], BAD,
     ["{spec_fixed}", "intent 'gpio_high'", "level = 7 is out of range", "allowed: 0..1"]),
    (["new", "spec_int32", "--tools-only", "--dir", "{agents}"], BAD,
     ["{spec_int32}", "arg 'pin'", "max 2147483648 is out of range", "allowed: 0..2147483647"]),
    (["new", "spec_dur32", "--tools-only", "--dir", "{agents}"], BAD,
     ["{spec_dur32}", "arg 'seconds'", "max 4294967296 is out of range", "allowed: 0..2147483647"]),
    # build: board, run folder and every file in it, tools file, output folder
    (["build"], BAD, ["'--board'", "build --help"]),
    (["build", "--board", "nosuch", "--run", "{run}"], BAD, ["'nosuch'", "known boards", "mps2-an386", "host"]),
    ([*B, "--run", "{missing}"], BAD, ["{missing}", "not a run folder"]),
    ([*B, "--run", "{file}"], BAD, ["{file}", "not a run folder"]),
    ([*B, "--run", "{rj_dir}"], BAD, ["{rj_dir}/run.json", "Is a directory"]),
    ([*B, "--run", "{rj_corrupt}"], BAD, ["{rj_corrupt}/run.json", "not valid JSON"]),
    ([*B, "--run", "{rj_newer}"], BAD, ["{rj_newer}/run.json", "format 99", "format 1"]),
    ([*B, "--run", "{rj_corpus}"], BAD, ["{rj_corpus}/run.json", 'corpus.n_train is "many"']),
    ([*B, "--run", "{no_int8}"], BAD, ["{no_int8}/int8", "no integer model", "tinyagent quantize"]),
    ([*B, "--run", "{i8_dir}"], BAD, ["{i8_dir}/int8", "expected model.int.json"]),
    ([*B, "--run", "{i8_corrupt}"], BAD, ["{i8_corrupt}/int8/model.int.json", "corrupt"]),
    ([*B, "--run", "{i8_trunc}"], BAD, ["{i8_trunc}/int8/model.int.safetensors", "truncated"]),
    ([*B, "--run", "{i8_newer}"], BAD, ["{i8_newer}/int8/model.int.json", "format 99", "format 1"]),
    ([*B, "--run", "{i8_negctx}"], BAD, ["{i8_negctx}/int8/model.int.json", "config.ctx is -5", "1..32768"]),
    ([*B, "--run", "{i8_heads0}"], BAD, ["{i8_heads0}/int8/model.int.json", "config.n_heads is 0", "1..256"]),
    ([*B, "--run", "{i8_list}"], BAD, ["{i8_list}/int8/model.int.json", "a list, not an object"]),
    ([*B, "--run", "{i8_noscales}"], BAD, ["{i8_noscales}/int8/model.int.json", "scales is null", "resid"]),
    ([*B, "--run", "{tok_nomerge}"], BAD, ["{tok_nomerge}/tokenizer.json", "0 merges", "one merge per token"]),
    ([*B, "--run", "{tok_perm}"], BAD, ["{tok_perm}/tokenizer.json", "byte 0x61", "permuted"]),
    ([*B, "--run", "{tok_corrupt}"], BAD, ["{tok_corrupt}/tokenizer.json", "not a valid tokenizer.json"]),
    ([*B, "--run", "{tok_trunc}"], BAD, ["{tok_trunc}/tokenizer.json", "not a valid tokenizer.json"]),
    ([*B, "--run", "{spec_corrupt}"], BAD, ["{spec_corrupt}/spec.toml", "bad TOML"]),
    ([*B, "--run", "{run}", "--tools", "{missing}"], BAD, ["{missing}", "does not exist", "C file"]),
    ([*B, "--run", "{run}", "--tools", "{dir}"], BAD, ["{dir}", "is a folder", "C file"]),
    (["build", "--board", "host", "--run", "{run}", "--out", "{file}"], BAD, ["{file}", "not a folder"]),
    (["build", "--board", "host", "--run", "{run}", "--out", "{bm_other}"], BAD,
     ["{bm_other}", "holds a build of model 000000000000", "--replace"]),
    (["build", "--board", "host", "--run", "{run}", "--out", "{not_a_build}"], BAD,
     ["{not_a_build}", "not a tinyagent build", "--replace"]),
    # flash
    (["flash"], BAD, ["'--board'", "flash --help"]),
    (["flash", "--board", "nosuch"], BAD, ["'nosuch'", "known boards", "esp32"]),
    (["flash", "--board", "pico", "--out", "{missing}"], NOT_BUILT, ["{missing}", "does not exist", "build --board pico"]),
    (["flash", "--board", "esp32", "--out", "{bm_other}", "--port", "/dev/null"], BAD,
     ["{bm_other}", "holds a build for host", "not esp32"]),
    (["flash", "--board", "esp32", "--baud", "0"], BAD, ["0", "--baud", "x>=1"]),
    # chat: which device, its build folder and manifest, a port, the reference's run folder
    (["chat"], BAD, ["--board BOARD", "--port"]),
    (["chat", "--board", "nosuch"], BAD, ["'nosuch'", "known boards", "host"]),
    (["chat", "--board", "host", "--out", "{missing}"], BAD, ["{missing}", "no build here", "tinyagent build --board host"]),
    (["chat", "--board", "host", "--out", "{file}"], BAD, ["{file}", "not a build folder"]),
    (["chat", "--board", "host", "--out", "{bm_dir}"], BAD, ["{bm_dir}/tinyagent-build.json", "Is a directory"]),
    (["chat", "--board", "host", "--out", "{bm_corrupt}"], BAD, ["{bm_corrupt}/tinyagent-build.json", "corrupt"]),
    (["chat", "--board", "host", "--out", "{bm_trunc}"], BAD, ["{bm_trunc}/tinyagent-build.json", "corrupt"]),
    (["chat", "--board", "host", "--out", "{bm_newer}"], BAD, ["{bm_newer}/tinyagent-build.json", "format 99", "format 1"]),
    (["chat", "--board", "mps2-an386", "--out", "{bm_other}"], BAD,
     ["{bm_other}", "build for board 'host'", "not 'mps2-an386'", "--board host"]),
    (["chat", "--board", "host", "--out", "{bm_true}"], BAD, ["{bm_true}/tinyagent-build.json", "'/bin/true'",
                                                             "outside the build folder"]),
    (["chat", "--board", "host", "--out", "{bm_up}"], BAD, ["{bm_up}/tinyagent-build.json", "outside the build folder"]),
    (["chat", "--board", "host", "--out", "{bm_fmt_true}"], BAD, ["format true", "format 1"]),
    (["chat", "--board", "host", "--out", "{fw_empty}"], BAD, ["{fw_empty}/obj/firmware", "is empty", "--replace"]),
    (["chat", "--board", "host", "--out", "{fw_noexec}"], BAD, ["{fw_noexec}/obj/firmware", "not executable",
                                                              "mode 644"]),
    (["chat", "--board", "host", "--out", "{fw_script}"], BAD, ["{fw_script}/obj/firmware", "not a linked program"]),
    (["chat", "--port", "/dev/ttyNOSUCH0"], DEVICE, ["/dev/ttyNOSUCH0", "no such device"]),
    (["chat", "--board", "reference", "--run", "{missing}"], BAD, ["{missing}", "not a run folder"]),
    (["chat", "--board", "reference", "--run", "{rj_newer}"], BAD, ["format 99", "format 1"]),
    (["chat", "--board", "reference", "--run", "{i8_trunc}"], BAD, ["{i8_trunc}/int8/model.int.safetensors", "truncated"]),
    (["chat", "--board", "reference", "--run", "{i8_negctx}"], BAD, ["{i8_negctx}/int8/model.int.json", "config.ctx"]),
    (["chat", "--baud", "fast"], BAD, ["'fast'", "--baud"]),
    # test
    (["test"], BAD, ["--board BOARD", "--out DIR"]),
    (["test", "--port", "/dev/ttyUSB7"], BAD, ["/dev/ttyUSB7", "--out DIR", "--board BOARD"]),
    (["test", "--board", "nosuch"], BAD, ["'nosuch'", "known boards"]),
    (["test", "--out", "{missing}"], BAD, ["{missing}", "no build here"]),
    (["test", "--out", "{file}"], BAD, ["{file}", "not a build folder"]),
    (["test", "--out", "{bm_corrupt}"], BAD, ["{bm_corrupt}/tinyagent-build.json", "corrupt"]),
    (["test", "--out", "{bm_newer}"], BAD, ["{bm_newer}/tinyagent-build.json", "format 99", "format 1"]),
    (["test", "--out", "{bm_true}"], BAD, ["{bm_true}/tinyagent-build.json", "'/bin/true'", "outside the build folder"]),
    (["test", "--out", "{bm_hash_int}"], BAD, ["{bm_hash_int}/tinyagent-build.json", "model_hash is 7", "a string"]),
    (["test", "--out", "{bm_other}"], BAD, ["{bm_other}", "names no run", "--replace"]),
    (["test", "--out", "{fw_empty}"], BAD, ["{fw_empty}/obj/firmware", "is empty"]),
    (["test", "--out", "{fw_noexec}"], BAD, ["{fw_noexec}/obj/firmware", "not executable"]),
    (["test", "--baud", "-1"], BAD, ["-1", "--baud", "x>=1"]),
    # bench, boards, export
    (["bench", "--out", "{file}"], BAD, ["{file}", "not a folder"]),
    (["boards", "--run", "{missing}"], BAD, ["{missing}/int8", "no integer model"]),
    (["boards", "--run", "{i8_trunc}"], BAD, ["{i8_trunc}/int8/model.int.safetensors", "truncated"]),
    (["boards", "--run", "{i8_newer}"], BAD, ["format 99", "format 1"]),
    (["boards", "--run", "{tok_corrupt}"], BAD, ["{tok_corrupt}/tokenizer.json"]),
    (["boards", "--run", "{i8_heads0}"], BAD, ["{i8_heads0}/int8/model.int.json", "config.n_heads is 0"]),
    (["export", "--run", "{i8_list}", "--out", "{out}/z.tflite"], BAD, ["{i8_list}/int8/model.int.json", "a list"]),
    (["export"], BAD, ["'--out'", "export --help"]),
    (["export", "--format", "onnx", "--out", "{out}/x.tflite"], BAD, ["'onnx'", "'tflite'"]),
    (["export", "--run", "{missing}", "--out", "{out}/x.tflite"], BAD, ["{missing}", "no integer model"]),
    (["export", "--run", "{run}", "--out", "{dir}"], BAD, ["{dir}", "is a folder", "file name"]),
    (["export", "--run", "{i8_trunc}", "--out", "{out}/y.tflite"], BAD, ["{i8_trunc}/int8/model.int.safetensors", "truncated"]),
    (["export", "--run", "{i8_newer}", "--out", "{out}/y.tflite"], BAD, ["format 99", "format 1"]),
    # the command line itself
    (["nosuchcmd"], BAD, ["'nosuchcmd'", "commands:", "build", "train"]),
    (["--bogus"], BAD, ["'--bogus'", "--help"]),
    (["build", "--board", "host", "--frobnicate"], BAD, ["'--frobnicate'", "build --help"]),
]


def _fill(text: str, paths: dict) -> str:
    return text.format(**{k: str(v) for k, v in paths.items()})


@pytest.mark.parametrize("args, code, words", ROWS, ids=[" ".join(r[0])[:60] for r in ROWS])
def test_bad_input_is_one_line(paths, args, code, words):
    args = [_fill(a, paths) for a in args]
    r = CliRunner().invoke(main, args)
    assert isinstance(r.exception, SystemExit) and r.exit_code == code, (r.exit_code, r.output, r.exception)
    assert "Traceback" not in r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("tinyagent: error: "), r.stderr
    assert r.stdout.strip() == "", r.stdout
    missing = [w for w in (_fill(w, paths) for w in words) if w not in lines[0]]
    assert not missing, f"{missing} not in: {lines[0]}"


def test_the_table_covers_every_command():
    covered = {r[0][0] for r in ROWS}
    assert set(main.commands) <= covered, set(main.commands) - covered


def test_debug_shows_the_traceback(paths):
    r = CliRunner().invoke(main, ["--debug", "chat", "--board", "host", "--out", str(paths["bm_newer"])])
    assert isinstance(r.exception, TinyAgentError) and "format 99" in str(r.exception)
    assert r.exc_info is not None and r.exc_info[2] is not None  # the traceback CliRunner caught


def test_plain_tinyagent_still_prints_its_help():
    r = CliRunner().invoke(main, [])
    assert "Usage:" in r.output and "Commands:" in r.output and "Traceback" not in r.output


# ---- bad input on chat's stdin: the console's answer, never a traceback (docs/robustness.md) ----

@pytest.mark.parametrize("typed, said", [
    (b"\xff\n", "error: input is not valid UTF-8"),
    (b"ok\xed\xa0\x80\n", "error: input is not valid UTF-8"),     # a surrogate, which the console refuses
    (b"z" * (LINE_MAX + 1) + b"\n", LINE_TOO_LONG),
])
def test_chat_answers_bad_lines_as_the_console(paths, typed, said):
    r = CliRunner().invoke(main, ["chat", "--board", "reference", "--run", str(paths["run"])],
                           input=typed + b"\x1b[A\n")  # and a line that edits to nothing: no request
    assert r.exit_code == 0 and r.exception is None, (r.output, r.exception)
    assert r.stdout.splitlines()[1:] == [said] and r.stderr == ""


# ---- the exit codes that are not bad input: 1 a check failed, 4 does not fit, 130 interrupted ----

TINYAGENT = str(Path(sys.executable).with_name("tinyagent"))


@pytest.fixture(scope="module")
def disagreeing_build(tmp_path_factory):
    """The shipped model built for the host board from a copy of its run folder, whose confidence gate
    is then raised to the most gate.json allows. The device keeps the threshold it was built with;
    `tinyagent test` reads the reference's from the run folder the manifest names, so the reference
    refuses calls the device makes, and the conversation checks with a call in them fail."""
    root = tmp_path_factory.mktemp("disagree")
    run = root / "run"
    shutil.copytree(DEFAULT_RUN, run)
    out = build("host", root / "host", run).out
    _json_edit(run / "int8" / "gate.json", min_margin=2**31 - 1)
    return out


def _one_line(stderr: str, code: int, got: int, words: list[str]) -> str:
    assert got == code, (got, stderr)
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("tinyagent: "), stderr
    missing = [w for w in words if w not in lines[0]]
    assert not missing, f"{missing} not in: {lines[0]}"
    return lines


def test_test_exits_1_when_a_check_fails(disagreeing_build):
    """`tinyagent test` through the CLI, the device disagreeing with the reference: exit 1, the table
    marks each failed check, and stderr is one line naming the first in full (the table cuts its
    details to the terminal's width)."""
    r = subprocess.run([TINYAGENT, "test", "--out", str(disagreeing_build)], capture_output=True, text=True,
                       timeout=120)
    lines = _one_line(r.stderr, EXIT_CHECK_FAILED, r.returncode,
                      ["tinyagent: error: conformance on host:", "checks failed", "the first: conversation",
                       "device [", "reference []"])
    assert len(lines) == 1, r.stderr
    n_failed = int(r.stdout.rsplit(" passed, ", 1)[1].split()[0])
    assert n_failed > 0 and f"{n_failed} of " in lines[0], (r.stdout[-200:], lines[0])
    assert r.stdout.count("FAIL: ") == n_failed and "│ model        │ model hash" in r.stdout
    assert "pass" in r.stdout  # the logits and the tokenizer still agree: only the gate differs


def test_a_model_that_does_not_fit_exits_4(tmp_path):
    """`tinyagent build` for a board too small for the model: exit 4, one line saying what is over and
    by how much, then the memory plan it was measured by (TinyAgentError.details), and no folder left."""
    r = subprocess.run([TINYAGENT, "build", "--board", "microbit", "--out", str(tmp_path / "mb")],
                       capture_output=True, text=True, timeout=120)
    lines = _one_line(r.stderr, EXIT_DOES_NOT_FIT, r.returncode,
                      ["tinyagent: error: the model does not fit board 'microbit'", "RAM", "> 16,384 B",
                       "boards with room for this plan:"])
    assert lines[1] == "memory plan for microbit:" and any("OVER by" in ln for ln in lines[2:]), r.stderr
    assert r.stdout == "" and not (tmp_path / "mb").exists()


def test_ctrl_c_ends_chat_with_130(paths):
    """A Ctrl-C (SIGINT to the terminal's whole process group, as a shell sends it) while `tinyagent
    chat` waits for the next request: exit 130 and the one line `tinyagent: interrupted`."""
    proc = subprocess.Popen([TINYAGENT, "chat", "--board", "reference", "--run", str(paths["run"])],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        proc.stdin.write(b"!new\n")
        proc.stdin.flush()
        got = proc.stdout.readline() + proc.stdout.readline()
        assert got == b"> !new\nok\n", (got, proc.poll())  # the command runs, and waits for a line
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        lines = _one_line(err.decode(), EXIT_INTERRUPTED, proc.returncode, ["tinyagent: interrupted"])
        assert lines == ["tinyagent: interrupted"] and out == b"", (lines, out)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
