"""Shared fixtures: the default agent spec, a tiny random integer model and tokenizer, built once per
session (seconds)."""
from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from tinyagent.agent.spec import DEFAULT_SPEC_PATH, load_spec
from tinyagent.agent.tokenizer import from_hf, train_tokenizer
from tinyagent.integer.config import ModelConfig
from tinyagent.targets.toolchain import host_sanitize
from tinyagent.training import intexport
from tinyagent.training.model import GPT

# ---- sanitized runs (TA_HOST_SANITIZE=1; docs/robustness.md) ----------------------------------------
# halt_on_error: the first report ends the program with exit code 86, so a conversation with it fails
# (c_harness.Console and the transport quote the program's stderr in their errors; both check the
# exit code at close). ASan also writes each report to a file in one folder (log_path), whatever
# became of the process; a test during which such a file appears fails, and so does the session if
# one appears later (at a module fixture's teardown). GCC 12's UBSan ignores log_path and always
# prints to stderr, so for UBSan the exit code and stderr are the check.
SANITIZER_EXIT_CODE = 86
SANITIZER_LOGS = Path(tempfile.mkdtemp(prefix="ta-sanitizer-")) if host_sanitize() else None
if SANITIZER_LOGS is not None:
    _common = f"halt_on_error=1:abort_on_error=0:exitcode={SANITIZER_EXIT_CODE}"
    os.environ.setdefault("ASAN_OPTIONS", f"{_common}:log_path={SANITIZER_LOGS}/asan:detect_leaks=1:"
                                          f"strict_string_checks=1:detect_stack_use_after_return=1:"
                                          f"check_initialization_order=1")
    os.environ.setdefault("UBSAN_OPTIONS", f"{_common}:print_stacktrace=1")


def _sanitizer_reports(seen: set[Path] = frozenset()) -> list[Path]:
    return sorted(p for p in SANITIZER_LOGS.iterdir() if p not in seen) if SANITIZER_LOGS else []


def _show(reports: list[Path]) -> str:
    return "\n".join(f"{p.name}:\n{p.read_text(errors='replace')[:4000]}" for p in reports)


@pytest.fixture(autouse=True)
def no_sanitizer_reports():
    """Under TA_HOST_SANITIZE, fail the test during which a sanitized program wrote a report."""
    seen = set(_sanitizer_reports())
    yield
    new = _sanitizer_reports(seen)
    if new:
        pytest.fail(f"sanitizer report(s) while this test ran:\n{_show(new)}", pytrace=False)


def pytest_sessionfinish(session, exitstatus):
    reports = _sanitizer_reports()
    if reports:
        print(f"\n{len(reports)} sanitizer report(s) in {SANITIZER_LOGS}:\n{_show(reports)}")
        session.exitstatus = 1

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
    m.qat = intexport.calibrate(m, batches)
    return m, intexport.export_int_model(m)


@pytest.fixture(scope="session")
def spec():
    """The default agent's spec (frozen: safe to share)."""
    return load_spec(DEFAULT_SPEC_PATH)


@pytest.fixture(scope="session")
def bpe():
    return from_hf(train_tokenizer(sample_texts(), vocab_size=320))


@pytest.fixture(scope="session")
def tiny_int():
    cfg = ModelConfig(vocab_size=320, ctx=48, dim=32, n_layers=2, n_heads=2, head_dim=16, ffn_dim=64)
    return make_int_model(cfg)


@pytest.fixture(scope="session")
def tiny_gqa_int():
    """Grouped-query attention: 4 query heads read 2 kv heads (0, 1 -> 0; 2, 3 -> 1)."""
    cfg = ModelConfig(vocab_size=320, ctx=48, dim=32, n_layers=2, n_heads=4, head_dim=8, ffn_dim=64, n_kv_heads=2)
    return make_int_model(cfg)


def write_run(folder: Path, int_model, bpe, spec_path: Path = DEFAULT_SPEC_PATH) -> Path:
    """A run folder as `tinyagent quantize` leaves it: int8/, the tokenizer, the spec, run.json."""
    folder.mkdir(parents=True, exist_ok=True)
    int_model.save(folder / "int8")
    bpe.save(folder / "tokenizer.json")
    shutil.copy(spec_path, folder / "spec.toml")
    (folder / "run.json").write_text(json.dumps({"format": 1, "stages": {}}))
    return folder


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_int, bpe):
    """A run folder holding the tiny random model, the test tokenizer and the default spec (read only:
    a test that changes a run writes its own with write_run)."""
    return write_run(tmp_path_factory.mktemp("tiny-run"), tiny_int[1], bpe)


@pytest.fixture(scope="module")
def device(tmp_path_factory, tiny_int, bpe, spec):
    """The real firmware on the tiny model, its console over stdin/stdout (tests/c_harness.py)."""
    from c_harness import start_firmware

    con = start_firmware(tmp_path_factory.mktemp("tiny"), tiny_int[1], bpe, spec)
    yield con
    assert con.close() == 0
