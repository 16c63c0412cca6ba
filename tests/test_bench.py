"""`tinyagent bench --quick` on a tiny random model: the JSON has every section (no timing assertions)."""
import json
import shutil

from tinyagent.bench import RESULTS_FILE, run_bench
from tinyagent.model import ModelConfig

SECTIONS = {"machine", "models", "speed", "instructions", "memory", "quality", "tflm", "pipeline"}


def test_quick_bench_writes_every_section(tmp_path, bpe, tiny_int):
    from pathlib import Path

    run = tmp_path / "run"
    tiny_int[1].save(run / "int8")
    bpe.save(run / "tokenizer.json")
    shutil.copy(Path(__file__).resolve().parents[1] / "agents" / "default.toml", run / "spec.toml")
    (run / "run.json").write_text(json.dumps({"format": 1, "stages": {}}))
    other = ModelConfig(vocab_size=320, ctx=32, dim=16, n_layers=1, n_heads=1, head_dim=16, ffn_dim=32)

    run_bench(tmp_path / "out", quick=True, run=run, boards=("host",), sizes={"other": other}, callgrind=False)

    res = json.loads((tmp_path / "out" / RESULTS_FILE).read_text())
    assert SECTIONS <= set(res)
    assert res["machine"]["git_commit"] and "cpu" in res["machine"]
    assert set(res["speed"]) == {"default", "other"}
    assert "tokens_per_s" in res["speed"]["default"]["numpy_reference"]
    assert res["memory"]["host"]["fits"]
