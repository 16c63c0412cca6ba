"""`tinyagent eval --requests FILE.tsv`: a user's own requests scored per category, every miss listed;
and the confidence gate's threshold, picked on validation margins."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from tinyagent.agent.grammar import grammar_from_spec
from tinyagent.agent.spec import DEFAULT_SPEC_PATH, REPO_ROOT, load_spec
from tinyagent.cli import main
from tinyagent.errors import EXIT_BAD_INPUT, TinyAgentError
from tinyagent.training.evaluate import load_requests, score_requests
from tinyagent.training.gate import pick_threshold

SHIPPED = REPO_ROOT / "models" / "default"
HEADER = "category\trequest\texpected\n"


def write(tmp_path, text: str):
    p = tmp_path / "requests.tsv"
    p.write_text(text, encoding="utf-8")
    return p


def test_load_requests(tmp_path):
    g = grammar_from_spec(load_spec(DEFAULT_SPEC_PATH))
    p = write(tmp_path, HEADER + "# a comment\n\ndirect\tturn on the light\tled on\n"
                                 "multi\tlight on and a 5 minute timer\tled on ; timer 300\nchat\thello\t-\n")
    reqs = load_requests(p, g)
    assert [(r.category, r.want, r.line) for r in reqs] == [
        ("direct", ("led on",), 4), ("multi", ("led on", "timer 300"), 5), ("chat", (), 6)]


@pytest.mark.parametrize("body, message", [
    ("direct\tturn on the light\n", "requests.tsv:2: expected 3 tab-separated fields"),
    ("direct\tturn on the light\tled dim\n", "requests.tsv:2: expected call 'led dim' is not a valid call"),
    ("direct\tset a timer\ttimer 1h\n", "expected call 'timer 1h' is not a valid call"),  # seconds, as printed
    ("direct\tset pin 40\tgpio 40 1\n", "expected call 'gpio 40 1'"),
    ("", "no requests"),
])
def test_bad_request_files_are_one_line(tmp_path, body, message):
    g = grammar_from_spec(load_spec(DEFAULT_SPEC_PATH))
    with pytest.raises(TinyAgentError) as e:
        load_requests(write(tmp_path, HEADER + body), g)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_missing_request_file(tmp_path):
    with pytest.raises(TinyAgentError, match="request file not found"):
        load_requests(tmp_path / "nope.tsv")


def test_eval_requests_lists_every_miss(tmp_path):
    """Two right, two known misses (a wrong expectation on purpose), through the CLI and the function."""
    p = write(tmp_path, HEADER + "direct\tturn on the light\tled on\n"
                                 "direct\tturn on the light please\tled off\n"
                                 "chat\thello\t-\n"
                                 "wrong\twhat's the temperature?\tuptime\n")
    report = score_requests(SHIPPED, p)
    assert report["total"]["n"] == 4 and report["total"]["right"] == 2
    assert report["categories"]["direct"] == {"n": 2, "right": 1, "unasked": 1, "clarified": 0}
    assert [(m["request"], m["want"], m["got"], m["unasked"]) for m in report["misses"]] == [
        ("turn on the light please", ["led off"], ["led on"], True),
        ("what's the temperature?", ["uptime"], ["temp"], False)]
    out = tmp_path / "report.json"
    r = CliRunner().invoke(main, ["eval", "--requests", str(p), "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "2 misses" in r.output and "turn on the light please | led off | led on UNASKED" in r.output
    assert json.loads(out.read_text())["total"] == report["total"]


def test_eval_scores_the_training_split_too(tmp_path):
    """`eval --split train` scores what the model was trained on, beside held-out (underfitting against
    phrasings that do not carry over), and leaves eval.json alone."""
    from tinyagent.training.evaluate import evaluate, heldout_examples
    from tinyagent.training.run import open_run
    run = open_run(SHIPPED, writer=False)
    _, train = heldout_examples(run, 3, "train")
    _, held = heldout_examples(run, 3)
    assert {e.request for e in train}.isdisjoint(e.request for e in held)
    saved = (SHIPPED / "eval.json").read_bytes()
    rep = evaluate(SHIPPED, n=3, stages=("scratch",), split="train")
    assert rep["split"] == "train" and rep["examples"] == 3 and rep["stages"]["scratch"]["n"] == 3
    assert (SHIPPED / "eval.json").read_bytes() == saved
    r = CliRunner().invoke(main, ["eval", "--split", "val", "--n", "2"])
    assert r.exit_code == 0, r.output
    assert "validation split (training phrasings) (2 examples)" in r.output
    assert (SHIPPED / "eval.json").read_bytes() == saved
    with pytest.raises(TinyAgentError, match="'test' is not a corpus split"):
        heldout_examples(run, 1, "test")


def test_pick_threshold():
    right = [(m, True) for m in (300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200)] * 10
    wrong = [(m, False) for m in (5, 20, 50, 350)]
    # 5, 20, 50 are stopped at t = 51 with no right call; 350 would stop ten right calls (10 %)
    assert pick_threshold(right + wrong, max_right_stopped=0.02, wrong_cost=1) == 51
    assert pick_threshold(right + wrong, max_right_stopped=0.2, wrong_cost=1) == 51  # 350 costs 10, saves 1
    assert pick_threshold(right + wrong, max_right_stopped=0.2, wrong_cost=20) == 351  # worth it at 20:1
    assert pick_threshold(right, max_right_stopped=0.02) == 0  # nothing wrong: no gate
    assert pick_threshold(right + [(m, False) for m in range(280, 300)] * 3, wrong_cost=1) == 300


@pytest.mark.parametrize("stage", ["scratch", "pruned"])
def test_eval_requests_on_a_float_stage(tmp_path, stage):
    """A float stage runs the same loop on torch logits (no margin gate: float logits are not the
    device's): the shipped run's scratch and pruned students answer the plain requests."""
    p = write(tmp_path, HEADER + "direct\tturn on the light\tled on\n"
                                 "chat\thello\t-\n"
                                 "direct\twhat's the temperature?\ttemp\n")
    report = score_requests(SHIPPED, p, stage=stage)
    assert report["total"]["n"] == 3 and report["total"]["right"] == 3, report["misses"]
    r = CliRunner().invoke(main, ["eval", "--requests", str(p), "--stage", stage])
    assert r.exit_code == 0, r.output
    assert f"({stage}, gate 0)" in r.output and re.search(r"│ all +│ +3 │ 3 \(100\.0%\)", r.output), r.output


def test_eval_requests_on_a_stage_the_run_lacks(tmp_path):
    p = write(tmp_path, HEADER + "chat\thello\t-\n")
    r = CliRunner().invoke(main, ["eval", "--requests", str(p), "--stage", "teacher"])
    assert r.exit_code == EXIT_BAD_INPUT and "stage 'teacher' has no trained model" in r.output, r.output


@pytest.mark.parametrize("name,agent,n", [("default.tsv", "default", 385), ("default-b.tsv", "default", 315),
                                          ("default-dev.tsv", "default", 150), ("plant.tsv", "plant", 69),
                                          ("plant-dev.tsv", "plant", 47)])
def test_the_hand_written_sets_are_valid_for_their_agent(name, agent, n):
    """Every request file under tests/handwritten parses, and each expected call is one its agent's
    grammar prints (a typo in an expectation would count a right answer as a miss)."""
    grammar = grammar_from_spec(load_spec(REPO_ROOT / "agents" / f"{agent}.toml"))
    assert len(load_requests(REPO_ROOT / "tests" / "handwritten" / name, grammar)) == n
