"""The libFuzzer targets in fuzz/ build with clang's fuzzer, address and undefined sanitizers over the
real firmware sources (tables generated for the tiny random model) and survive a short, bounded run
from their seed corpus. Longer runs: `python fuzz/run.py` (docs/robustness.md)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[1] / "fuzz"
sys.path.insert(0, str(FUZZ))
import run as fuzz_run  # noqa: E402  (fuzz/run.py)

# per target: a bounded run (the console runs the model for every chat line, so it gets time, not runs)
BUDGET = {"tokenizer": {"runs": 20000}, "grammar": {"runs": 20000}, "numbers": {"runs": 20000}, "console": {"seconds": 10}}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("fuzz")
    sources = fuzz_run.generate(work / "src")
    return work, sources


@pytest.mark.parametrize("name", fuzz_run.TARGETS)
def test_fuzz_target_survives_a_short_run(built, name):
    work, sources = built
    exe = fuzz_run.build_target(name, sources, work / "src", work / "bin")
    code, execs, log = fuzz_run.run_target(exe, name, work, timeout=120, **BUDGET[name])
    print(f"fuzz_{name}: {execs} executions")
    assert code == 0, log[-3000:]
    assert execs >= BUDGET[name].get("runs", 100), log[-1000:]
    assert not any((work / "crashes" / name).iterdir())
