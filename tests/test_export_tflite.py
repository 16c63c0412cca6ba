"""The .tflite export runs in TFLM's real interpreter; its numbers match ours where the arithmetic is
the same, and within 1 LSB per op where TFLM's rounding differs (docs/tflm.md)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from tinyagent.cli import main
from tinyagent.compare import export_tflite as ex, tflm as tc
from tinyagent.errors import TinyAgentError
from tinyagent.integer import intmath as im


@pytest.fixture(scope="module")
def run_dir(tiny_run):
    """A run folder holding the tiny random integer model in int8/, as `tinyagent quantize` leaves it."""
    return tiny_run


@pytest.fixture(scope="module")
def report(run_dir):
    return tc.compare_with_tflm(run_dir / "int8", n_tokens=24, repeats=1)


def test_export_writes_a_model_tflm_runs(run_dir, tmp_path):
    out = tmp_path / "m.tflite"
    summary = ex.export_tflite(run_dir, out)
    assert "\n" not in summary and str(out) in summary
    for left_out in ("embedding", "RMSNorm", "attention"):
        assert left_out in summary
    data = out.read_bytes()
    assert data[4:8] == b"TFL3"

    from tflite_micro import runtime
    it = runtime.Interpreter.from_bytes(data, arena_size=1 << 20)
    g = ex.plan_graph(tc.resolve_int_model(run_dir))
    for i, name in enumerate(g.inputs):
        info = it.get_input_details(i)
        assert info["dtype"] == g.tensors[name].dtype
        it.set_input(np.ones((1, g.tensors[name].size), dtype=g.tensors[name].dtype), i)
    it.invoke()
    logits = it.get_output(len(g.outputs) - 1)
    assert logits.dtype == np.int16 and logits.shape == (1, 320)


def test_cli_export(run_dir, tmp_path):
    out = tmp_path / "cli.tflite"
    r = CliRunner().invoke(main, ["export", "--run", str(run_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "left out" in r.output and out.stat().st_size > 0


def test_tflm_helpers_are_emulated_exactly(report):
    """Every op's TFLM output equals our numpy twin of TFLM's helpers, so the causes below are real."""
    assert report["emulated_exactly"]


def test_exact_ops_are_bit_exact(report):
    for name, row in report["ops"].items():
        if row["kind"] in ("to_int16", "add", "gelu"):
            assert row["differ"] == 0, name


def test_fully_connected_within_one_lsb_and_explained(report):
    for name, row in report["ops"].items():
        if row["kind"].startswith("fc"):
            assert row["max_abs_diff"] <= 1, name
            cause = row["cause"]
            assert row["differ"] <= sum(cause.values())
    # Both TFLM requant helpers round differently from ours somewhere on a model this size.
    assert any(r["cause"]["helper_rounding"] for r in report["ops"].values() if r["kind"] == "fc int8")
    assert any(r["cause"]["helper_rounding"] for r in report["ops"].values() if r["kind"] == "fc int16")
    assert not report["bit_exact"]


def test_inputs_from_our_left_out_ops_match_exactly(report):
    """The int8 tensors TFLM computes straight from our inputs (q, k, v, h) are off by at most 1."""
    for name, row in report["tensors"].items():
        if name.rsplit(".", 1)[-1] in ("q", "k", "v", "h"):
            assert row["max_abs_diff"] <= 1, name


def test_report_is_json_and_names_what_was_left_out(report):
    json.dumps(report)
    assert set(report["left_out"]) == {"embedding", "rmsnorm", "attention"}
    tflm, ours = report["arena_bytes"]["tflm"], report["arena_bytes"]["ours"]
    assert tflm["total"] == tflm["head_activations"] + tflm["tail_persistent"]
    assert 0 < tflm["of_which_per_channel_multipliers"] < tflm["tail_persistent"]
    d, a, f, V = 32, 32, 64, 320
    assert ours["total"] == 2 * d + d + a + 2 * a + a + f + 4 * V
    assert report["time_us_per_token"]["tflm_invoke_exported_part"] > 0
    assert 0 <= report["free_running"]["argmax_agree"] <= 1
    assert "bit-exact" in tc.format_report(report)


def test_trace_is_the_reference(tiny_int):
    """Our side of the comparison is reference.py's numbers (compare_with_tflm also checks this)."""
    from tinyagent.integer.reference import forward_seq

    m = tiny_int[1]
    toks = [5, 17, 300, 2, 9]
    ours = tc.trace(m, ex.plan_graph(m), toks)
    np.testing.assert_array_equal(np.stack([v["logits"] for v in ours]), forward_seq(m, toks))


def test_tflm_helpers_on_known_values():
    # x * 0.25 as m = 2^30 (0.5), exponent -1. -10 -> -5 exactly, then -2.5 -> -3 (ties away from
    # zero); 5 -> 2.5 -> 3 (the high-mul rounds ties up), then 1.5 -> 2: double rounding.
    m, e = np.array([1 << 30]), np.array([-1])
    assert tc.tflm_mbqm_int32(np.array([-10, 5]), m, e).tolist() == [-3, 2]
    assert im.mul_shift(np.array([-10, 5]), 1 << 30, 32).tolist() == [-2, 1]  # ours: -2.5 -> -2, 1.25 -> 1
    assert tc.tflm_mbqm_int32(np.array([5, -5]), m, np.array([0])).tolist() == [3, -2]  # ties up, as ours
    # 15-bit multiplier: 0.75 * 2^31 reduces exactly; x * 0.75 rounds half up once.
    assert tc.tflm_mbqm_int64(np.array([2, -2]), np.array([3 << 29]), np.array([0])).tolist() == [2, -1]
    q, e = tc.tflm_quantize_multiplier(np.array([0.75, 0.0, 2.0**-40]))
    assert q.tolist() == [3 << 29, 0, 0] and e.tolist() == [0, 0, 0]


@pytest.mark.parametrize("make", ["empty", "run_without_int8"])
def test_no_int_model_is_one_line(tmp_path, make):
    folder = tmp_path / "nothing"
    folder.mkdir()
    if make == "run_without_int8":
        (folder / "student").mkdir()
    for fn in (lambda: ex.export_tflite(folder, tmp_path / "x.tflite"), lambda: tc.compare_with_tflm(folder)):
        with pytest.raises(TinyAgentError) as e:
            fn()
        assert "\n" not in str(e.value) and str(folder) in str(e.value) and e.value.code == 2
    assert not (tmp_path / "x.tflite").exists()


def test_cli_export_bad_folder_exits_2(tmp_path):
    r = CliRunner().invoke(main, ["export", "--run", str(tmp_path), "--out", str(tmp_path / "x.tflite")])
    assert r.exit_code == 2 and "no integer model" in r.output and "Traceback" not in r.output


def test_grouped_query_attention_exports_narrow_k_and_v(tiny_gqa_int, tmp_path):
    """With n_kv_heads < n_heads the k and v FULLY_CONNECTED ops are kv_heads*head_dim wide (the caller's
    attention reads kv head h // (n_heads // n_kv_heads)), and the comparison's side is the reference."""
    from tinyagent.integer.reference import forward_seq

    m = tiny_gqa_int[1]
    g = ex.plan_graph(m)
    kv = m.cfg.n_kv_heads * m.cfg.head_dim
    assert g.tensors["layers.0.q"].size == 32 and g.tensors["layers.0.k"].size == g.tensors["layers.0.v"].size == kv
    toks = [5, 17, 300, 2, 9, 44]
    ours = tc.trace(m, g, toks)
    np.testing.assert_array_equal(np.stack([v["logits"] for v in ours]), forward_seq(m, toks))
    m.save(tmp_path / "int8")
    r = tc.compare_with_tflm(tmp_path / "int8", n_tokens=8, repeats=1)
    assert r["emulated_exactly"]
    assert all(row["max_abs_diff"] <= 1 for row in r["ops"].values() if row["kind"].startswith("fc"))
    d, a, f, V = 32, 32, 64, 320
    assert r["arena_bytes"]["ours"]["total"] == 2 * d + d + a + 2 * kv + a + f + 4 * V
