"""The training plan: each stage's steps and its time here from a timed warm-up, and fitting the steps
to a budget. Tiny models and corpora only; nothing is trained but a 20-step teacher for the resume case,
and no test depends on how fast this machine is."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tinyagent.cli import main
from tinyagent.errors import TinyAgentError
from tinyagent.integer.config import TINY
from tinyagent.training.chain import MIN_STEPS, STEP_ARGS, chain_defaults, duration_text, fit_budget, plan, train
from tinyagent.training.defaults import DEFAULTS
from tinyagent.training.run import STAGES

SPEC = Path(__file__).resolve().parents[1] / "agents" / "default.toml"
SMALL = dict(n_train=300, n_val=40, n_heldout=40, teacher_cfg=TINY, student_cfg=TINY, batch=8)
STEPS = {"steps": 4000, "distill_steps": 30000, "recover_steps": 2000, "qat_steps": 1000}
COST = {"steps": 0.1, "distill_steps": 0.05, "recover_steps": 0.04, "qat_steps": 0.06}  # s/step: 2040 s in all


def seconds(steps: dict, fixed: float = 60.0) -> float:
    return fixed + sum(steps[a] * COST[a] for a in steps)


# ---- fit_budget: the arithmetic ----------------------------------------------------------------------

def test_a_plan_that_fits_is_unchanged():
    assert fit_budget(STEPS, COST, 60.0, 2100.0) == STEPS


def test_steps_scale_by_one_factor_to_fit():
    out = fit_budget(STEPS, COST, 60.0, 1000.0)
    assert seconds(out) <= 1000.0 and seconds(out) > 990.0
    ratios = [out[a] / STEPS[a] for a in STEPS]
    assert max(ratios) - min(ratios) < 0.01 and all(out[a] % 10 == 0 for a in out)


def test_floors_hold_and_leave_the_rest_to_the_others():
    out = fit_budget(STEPS, COST, 60.0, 200.0)  # one factor (0.069) would take teacher and QAT below their floor
    assert out["steps"] == MIN_STEPS["steps"] and out["qat_steps"] == MIN_STEPS["qat_steps"]
    assert MIN_STEPS["distill_steps"] < out["distill_steps"] < STEPS["distill_steps"]
    assert 190.0 < seconds(out) <= 200.0
    small = dict(STEPS, qat_steps=50)  # below its floor already: kept, never raised
    assert fit_budget(small, COST, 60.0, 200.0)["qat_steps"] == 50


def test_given_steps_are_kept():
    out = fit_budget(STEPS, COST, 60.0, 1000.0, keep=frozenset({"steps"}))
    assert out["steps"] == 4000 and seconds(out) <= 1000.0 and out["distill_steps"] < 30000 * 0.4


def test_a_budget_too_short_for_the_floors_says_how_long_it_needs():
    with pytest.raises(TinyAgentError, match=r"budget 1 min is too short: even with steps 300, distill_steps "
                                             r"300, recover_steps 100, qat_steps 100 the run takes about 2 min here "
                                             r"\(allowed: a budget of 2 minutes or more, or fewer stages"):
        fit_budget(STEPS, COST, 60.0, 60.0)


def test_one_table_of_defaults():
    d = chain_defaults()
    assert (d["steps"], d["distill_steps"]) == (DEFAULTS["teacher"]["steps"], DEFAULTS["student"]["steps"])
    assert (d["recover_steps"], d["qat_steps"]) == (DEFAULTS["pruned"]["steps"], DEFAULTS["int8"]["steps"])
    assert set(STEP_ARGS) <= set(d)
    help_text = CliRunner().invoke(main, ["train", "--help"]).output
    for flag, n in (("--teacher-steps", d["steps"]), ("--student-steps", d["distill_steps"]),
                    ("--prune-steps", d["recover_steps"]), ("--qat-steps", d["qat_steps"])):
        assert re.search(rf"{flag} INTEGER\s+[^[]*\[default:\s+{n}\]", help_text), (flag, help_text)


# ---- plan: the warm-up on tiny models ------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_plan(tmp_path_factory):
    return plan(SPEC, tmp_path_factory.mktemp("plan") / "new", qat_steps=500, **SMALL)


def test_plan_times_every_stage(tiny_plan):
    p = tiny_plan
    assert [s.stage for s in p.stages] == list(STAGES)
    assert all(s.step_s > 0 and s.eval_s > 0 and s.done == 0 for s in p.stages)
    assert p.step_args == {**{a: chain_defaults()[a] for a in STEP_ARGS}, "qat_steps": 500}
    assert p.setup_s > 0 and p.n_examples == 380 and not p.resume
    assert p.seconds == pytest.approx(p.setup_s + sum(s.seconds for s in p.stages))
    table = p.table()
    for stage in ("corpus", *STAGES, "total"):
        assert re.search(rf"^  {stage} ", table, re.M), table
    assert "a new run" in table and "30,000" in table and "budget" not in table


def test_plan_fits_a_budget_from_its_own_timings(tiny_plan):
    p = copy.deepcopy(tiny_plan)
    budget = p.seconds / 3
    p.fit(budget, keep=frozenset({"qat_steps"}))
    assert p.seconds <= budget and p.scaled_from == tiny_plan.step_args
    assert p.step_args["qat_steps"] == 500
    assert all(MIN_STEPS[a] <= n < tiny_plan.step_args[a] for a, n in p.step_args.items() if a != "qat_steps")
    assert "steps scaled to fit (steps 4,000 -> " in p.table()
    q = copy.deepcopy(tiny_plan)
    q.fit(tiny_plan.seconds * 2)
    assert q.scaled_from is None and "the plan fits; steps unchanged" in q.table()


def test_plan_of_a_resumed_run(tmp_path):
    out = tmp_path / "run"
    train(SPEC, out, until="teacher", steps=20, distill_steps=40, recover_steps=10, qat_steps=10, progress=False,
          **SMALL)
    p = plan(SPEC, out, resume=True, until="pruned")
    assert [s.stage for s in p.stages] == ["teacher", "scratch", "student", "pruned"]
    assert p.stages[0].seconds == 0 and p.stages[0].done == 20
    assert p.step_args == {"steps": 20, "distill_steps": 40, "recover_steps": 10}  # the run's own, not DEFAULTS
    assert "resumed" in p.table() and "done" in p.table() and "regenerated from the spec" in p.table()
    assert [duration_text(s) for s in (89, 3599, 5369, 5371, 86399)] == ["89 s", "60 min", "89 min", "1 h 30 min",
                                                                          "24 h 00 min"]
    with pytest.raises(TinyAgentError, match="was started with distill_steps=40"):
        plan(SPEC, out, resume=True, distill_steps=50)
    with pytest.raises(TinyAgentError, match="--budget plans a new run"):
        plan(SPEC, out, resume=True, budget_minutes=5)


def test_bad_plan_arguments_are_one_line_before_the_warm_up(tmp_path):
    for kw, words in ((dict(budget_minutes=0), "budget 0 minutes must be positive"),
                      (dict(qat_steps=-1), "qat_steps -1 must be positive"),
                      (dict(ffn_keep=2.0), "ffn_keep 2.0 is out of range"),
                      (dict(until="nope"), "until='nope' is not a stage")):
        with pytest.raises(TinyAgentError, match=re.escape(words)):
            plan(SPEC, tmp_path / "x", **kw)
    assert not (tmp_path / "x").exists()


def test_cli_prints_the_plan_and_a_dry_run_trains_nothing(tmp_path):
    """The default sizes' warm-up, through the CLI; a budget no machine needs; nothing written."""
    out = tmp_path / "r"
    r = CliRunner().invoke(main, ["train", "--out", str(out), "--dry-run", "--budget", "1e6", "--qat-steps", "200"])
    assert r.exit_code == 0, r.output
    assert f"plan for {out} (a new run; timed here on cpu" in r.output
    assert re.search(r"^  teacher +\S+ +4,000 ", r.output, re.M) and re.search(r"^  int8 +\S+ +200 ", r.output, re.M)
    assert "budget 1e+06 min: the plan fits; steps unchanged" in r.output
    assert not out.exists()
