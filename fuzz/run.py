"""Build and run the libFuzzer targets over the real firmware sources (docs/robustness.md).

    python fuzz/run.py                      # every target, 60 s each
    python fuzz/run.py console -t 600       # one target, ten minutes
    python fuzz/run.py --run models/default # tables from a trained run instead of the random model

The generated tables (ta_model.c, ta_vocab.c, ta_tools.c) come from generate_sources, for the tiny
random model the tests use (tests/conftest.py) or for a run folder. Everything is built in
fuzz/build/ (not tracked); new inputs the fuzzer finds go to fuzz/build/corpus/<target>/, so the
seed corpus in fuzz/corpus/<target>/ stays small and reviewed; crashes go to fuzz/build/crashes/.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
REPO = FUZZ.parent
FIRMWARE = REPO / "firmware"
TARGETS = ("console", "tokenizer", "grammar", "numbers")
CC = "clang"
CFLAGS = ("-std=c99", "-g", "-O1", "-fno-omit-frame-pointer", "-fsanitize=fuzzer,address,undefined",
          "-fno-sanitize-recover=undefined", "-Wall", "-Wextra")
MAX_LEN = 2048  # longest input: a few console lines, two of them longer than TA_LINE_MAX


def generate(src_dir: Path, run: Path | None = None) -> list[Path]:
    """The generated sources and the runtime in src_dir; returns the C files (no ta_main.c)."""
    sys.path[:0] = [str(REPO / "host"), str(REPO / "tests")]
    from tinyagent.codegen.generate import generate_sources

    if run is not None:
        from tinyagent.agent.spec import load_spec
        from tinyagent.agent.tokenizer import load_tokenizer
        from tinyagent.integer.intmodel import load_int_model

        im, bpe, spec = load_int_model(run / "int8"), load_tokenizer(run / "tokenizer.json"), load_spec(run / "spec.toml")
    else:
        from tinyagent.agent.spec import DEFAULT_SPEC_PATH, load_spec
        from tinyagent.agent.tokenizer import from_hf, train_tokenizer
        from tinyagent.integer.config import ModelConfig

        from conftest import make_int_model, sample_texts

        bpe = from_hf(train_tokenizer(sample_texts(), vocab_size=320))
        cfg = ModelConfig(vocab_size=320, ctx=48, dim=32, n_layers=2, n_heads=2, head_dim=16, ffn_dim=64)
        im = make_int_model(cfg)[1]
        spec = load_spec(DEFAULT_SPEC_PATH)
    sources = generate_sources(im, bpe, spec, "fuzz", src_dir)
    return [s for s in sources if s.name != "ta_main.c"]


def build_target(name: str, sources: list[Path], src_dir: Path, out_dir: Path) -> Path:
    """fuzz_<name>.c, the runtime and the fuzzing HAL, linked with libFuzzer and the sanitizers."""
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = out_dir / f"fuzz_{name}"
    cmd = [CC, *CFLAGS, f"-I{src_dir}", f"-I{FUZZ}", str(FUZZ / f"fuzz_{name}.c"), str(FUZZ / "hal_fuzz.c"),
           str(FIRMWARE / "boards" / "common" / "hal_timers.c"), *map(str, sources), "-o", str(exe)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}\n{done.stderr}")
    return exe


def run_target(exe: Path, name: str, work: Path, *, runs: int | None = None, seconds: int | None = None,
               timeout: float | None = None) -> tuple[int, int, str]:
    """Runs one target over its seed corpus (plus what earlier runs found); returns (exit code,
    executions, libFuzzer's output)."""
    found = work / "corpus" / name
    crashes = work / "crashes" / name
    found.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    args = [str(exe), f"-max_len={MAX_LEN}", "-timeout=10", "-rss_limit_mb=1024", "-print_final_stats=1",
            f"-artifact_prefix={crashes}/"]
    args += [f"-runs={runs}"] if runs is not None else []
    args += [f"-max_total_time={seconds}"] if seconds is not None else []
    if (FUZZ / "dict" / f"{name}.dict").is_file():
        args.append(f"-dict={FUZZ / 'dict' / f'{name}.dict'}")
    args += [str(found), str(FUZZ / "corpus" / name)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    execs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", done.stderr)
    return done.returncode, int(execs[-1]) if execs else 0, done.stderr


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("targets", nargs="*", default=list(TARGETS), help=f"any of {', '.join(TARGETS)}")
    p.add_argument("-t", "--seconds", type=int, default=60, help="per target")
    p.add_argument("--run", type=Path, help="a run folder for the tables (default: the tests' random model)")
    a = p.parse_args()
    unknown = [t for t in a.targets if t not in TARGETS]
    if unknown:
        p.error(f"unknown target {unknown[0]!r} (targets: {', '.join(TARGETS)})")
    work = FUZZ / "build"
    src_dir = work / "src"
    sources = generate(src_dir, a.run)
    worst = 0
    for name in a.targets:
        exe = build_target(name, sources, src_dir, work / "bin")
        code, execs, log = run_target(exe, name, work, seconds=a.seconds)
        print(f"{name}: {execs} executions in {a.seconds} s, exit {code}")
        if code != 0:
            print(log[-4000:])
            worst = code
    return worst


if __name__ == "__main__":
    sys.exit(main())
