"""`tinyagent bench --quick` on a tiny random model: the JSON has every section; `!bench` on the
host and the emulated boards counts more for more tokens (no timing assertions)."""
import json

import pytest

from tinyagent.compare.bench import RESULTS_FILE, board_instructions, mean_macs, run_bench
from tinyagent.device import protocol
from tinyagent.device.protocol import ask, sync
from tinyagent.device.transport import open_console
from tinyagent.integer.config import ModelConfig
from tinyagent.targets.boards import load_board
from tinyagent.targets.build import build

from conftest import write_run

SECTIONS = {"machine", "models", "speed", "instructions", "memory", "quality", "tflm", "pipeline"}


def test_quick_bench_writes_every_section(tmp_path, bpe, tiny_int):
    run = write_run(tmp_path / "run", tiny_int[1], bpe)
    other = ModelConfig(vocab_size=320, ctx=32, dim=16, n_layers=1, n_heads=1, head_dim=16, ffn_dim=32)

    run_bench(tmp_path / "out", quick=True, run=run, boards=("host",), sizes={"other": other}, callgrind=False)

    res = json.loads((tmp_path / "out" / RESULTS_FILE).read_text())
    assert SECTIONS <= set(res)
    assert res["machine"]["git_commit"] and "cpu" in res["machine"]
    assert set(res["speed"]) == {"default", "other"}
    assert "tokens_per_s" in res["speed"]["default"]["numpy_reference"]
    assert res["memory"]["host"]["fits"]
    assert "error" not in res["tflm"] and res["tflm"]["tokens"] > 0, res["tflm"]


@pytest.mark.parametrize("board", ["host", "riscv32-virt", "mps2-an386", "lx106-sim"])
def test_bench_command_counts_more_for_more_tokens(tmp_path, tiny_run, tiny_int, board):
    """`!bench` prints a well-formed line, does the work `!run` does (same last step) and counts more
    for 12x the tokens; where the count is instructions (QEMU -icount) it is repeatable and grows at
    least in proportion (attention grows with the position)."""
    ctx = tiny_int[1].cfg.ctx
    ids = [(7 * i + 3) % tiny_int[1].cfg.vocab_size for i in range(ctx)]
    b = load_board(board)
    built = build(board, tmp_path / board, tiny_run)
    with open_console(b, artifact=built.artifact) as con:
        sync(con)
        short, full, again = protocol.bench(con, ids[:4]), protocol.bench(con, ids), protocol.bench(con, ids[:4])
        last = ask(con, "!run " + " ".join(map(str, ids))).splitlines()[-1]
        refused = ask(con, "!bench 99999")
    assert (short["steps"], full["steps"]) == (4, ctx)
    assert last == f"step {ctx - 1} {full['argmax']} {full['hash']}"
    assert 0 < short["cycles"] < full["cycles"]
    assert refused.startswith("error: token 99999 is out of range")
    if b.run.counter == "instructions":
        assert full["cycles"] >= ctx / 4 * short["cycles"]
        assert abs(again["cycles"] - short["cycles"]) <= 2  # a timer interrupt, the counter's unit


def test_board_instructions_row(tmp_path, tiny_run, tiny_int):
    """The bench's per-board row: instructions from the board file's counter_scale, next to MACs."""
    cfg = tiny_int[1].cfg
    ids = list(range(1, 9))
    built = build("mps2-an386", tmp_path / "mps2", tiny_run)
    row = board_instructions("mps2-an386", built.artifact, ids, mean_macs(cfg, len(ids)))
    assert row["counter"] == "instructions" and row["counter_scale"] == 40
    assert row["instructions_total"] == 40 * row["cycles_total"] > 0
    assert row["instructions_per_token"] == round(row["instructions_total"] / 8)
    assert row["instructions_per_mac"] == round(row["instructions_per_token"] / mean_macs(cfg, 8), 3)


def test_turn_costs_on_mps2(tmp_path, tiny_run):
    """run_turn_bench's per-board row on mps2-an386 (QEMU -icount): !stats after each request, prefill
    and decode counted apart, the first output byte within the turn, and the sums add up."""
    from tinyagent.compare.bench import turn_costs

    built = build("mps2-an386", tmp_path / "mps2", tiny_run)
    requests = ["turn on the light", "what is the temperature", "hello"]
    row = turn_costs("mps2-an386", built.artifact, requests)
    assert row["unit"] == "instructions" and row["turns"] == 3
    per = row["per_turn"]
    assert [t["request"] for t in per] == requests
    for t in per:
        assert t["fed"] > 0 and t["fed_macs"] > 0 and t["fed_cycles"] > 0
        assert 0 < t["first_cycles"] <= t["cycles"] and t["fed_cycles"] + t["chosen_cycles"] <= t["cycles"]
    assert row["prefill"]["tokens"] == sum(t["fed"] for t in per)
    assert row["turn"]["instructions"] == 40 * sum(t["cycles"] for t in per)
    assert row["turn"]["macs"] == sum(t["fed_macs"] + t["chosen_macs"] for t in per)


def test_host_turn_costs_from_callgrind(tmp_path, tiny_run):
    """The x86-64 whole-turn row: instructions from callgrind inside ta_engine_feed, ta_engine_step and
    ta_agent_turn; the tokens and MACs are those the same build reports by `!stats` run natively."""
    from tinyagent.compare.bench import host_turn_costs, turn_costs

    built = build("host", tmp_path / "host", tiny_run)
    requests = ["turn on the light", "what is the temperature", "hello"]
    row = host_turn_costs(built.artifact, requests, tmp_path)
    native = turn_costs("host", built.artifact, requests)
    assert row["unit"] == "instructions" and row["turns"] == 3
    for part in ("prefill", "decode"):
        assert row[part]["tokens"] == native[part]["tokens"] > 0
        assert row[part]["macs"] == native[part]["macs"] > 0
        assert row[part]["instructions"] > row[part]["macs"] // 4  # not a count of something else
        assert row[part]["instructions_per_mac"] == round(row[part]["instructions"] / row[part]["macs"], 3)
    assert row["prefill"]["instructions"] + row["decode"]["instructions"] < row["turn"]["instructions"]
    assert row["turn"]["macs"] == native["turn"]["macs"]
