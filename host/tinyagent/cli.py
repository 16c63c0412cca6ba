"""The command line: parses arguments and calls the stage functions. Nothing else lives here.

Errors: a TinyAgentError prints as one line `tinyagent: error: ...` and exits with its code; so does
a usage error click finds (an unknown option or command, a value of the wrong type or out of range:
exit code 2). Any other exception is a bug and prints its traceback. `--debug` shows the traceback
for TinyAgentErrors too. tests/test_cli_errors.py holds the table of bad inputs.

Ctrl-C (SIGINT), SIGTERM and SIGHUP unwind the command, so open consoles close and the emulators and
host programs behind them end, then exit 128 + the signal's number (130, 143, 129).
"""
from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from .errors import EXIT_CHECK_FAILED, EXIT_INTERRUPTED, TinyAgentError
from .training.defaults import DEFAULTS as D

DEFAULT_AGENT = "agents/default.toml"
DEFAULT_RUN = Path(__file__).resolve().parents[2] / "models" / "default"


def _usage_line(e: click.UsageError, ctx: click.Context) -> None:
    """Print click's usage error as one line (what is wrong, then where the allowed values are)."""
    where = e.ctx.command_path if e.ctx is not None else ctx.command_path
    msg = " ".join(e.format_message().split()).rstrip(".")
    if msg.startswith("No such command") and isinstance(e.ctx.command if e.ctx else None, click.Group):
        msg += f" (commands: {', '.join(sorted(e.ctx.command.commands))})"
    click.echo(f"tinyagent: error: {msg} (see `{where} --help`)", err=True)
    ctx.exit(e.exit_code)


_END_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s)


class _Terminated(BaseException):
    """SIGTERM or SIGHUP arrived. A BaseException, so that nothing catches it on the way out."""

    def __init__(self, signo: int):
        super().__init__(signo)
        self.signo = signo


def _terminate(signo: int, frame) -> None:
    for s in _END_SIGNALS:
        signal.signal(s, signal.SIG_DFL)  # a second signal ends tinyagent at once (its boards with it)
    raise _Terminated(signo)


def _catch_end_signals() -> dict:
    """Turn SIGTERM and SIGHUP into _Terminated for this command; the handlers they had before."""
    if threading.current_thread() is not threading.main_thread():
        return {}  # only the main thread may set handlers (a command run from a test's thread)
    return {s: signal.signal(s, _terminate) for s in _END_SIGNALS}


class _Group(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:  # the group's own options: `tinyagent --bogus`
            if isinstance(e, getattr(click.exceptions, "NoArgsIsHelpError", ())):
                raise  # plain `tinyagent`: click prints the help
            _usage_line(e, ctx)

    def invoke(self, ctx: click.Context):
        previous = _catch_end_signals()
        try:
            return super().invoke(ctx)
        except click.UsageError as e:  # a command's options and arguments, or an unknown command
            if isinstance(e, getattr(click.exceptions, "NoArgsIsHelpError", ())):
                raise
            _usage_line(e, ctx)
        except TinyAgentError as e:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"tinyagent: error: {e}", err=True)
            if e.details:
                click.echo(e.details, err=True)
            ctx.exit(e.code)
        except KeyboardInterrupt:
            click.echo("tinyagent: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except _Terminated as e:
            click.echo(f"tinyagent: terminated by {signal.Signals(e.signo).name}", err=True)
            ctx.exit(128 + e.signo)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def _run_dir(run: str | None) -> Path:
    return Path(run) if run else DEFAULT_RUN


@click.group(cls=_Group)
@click.option("--debug", is_flag=True, help="Show tracebacks for expected errors too.")
@click.version_option(package_name="tinyagent")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """tinyagent: train a small language-model agent and run it on a microcontroller."""
    ctx.obj = {"debug": debug}


# ---- model pipeline --------------------------------------------------------------------------------

@main.command()
@click.option("--agent", default=None, help=f"Agent spec (TOML) [default: {DEFAULT_AGENT}; with --resume: the "
                                             "run's own, and one given must be the same]")
@click.option("--out", default="runs/default", show_default=True, help="Run folder to create.")
@click.option("--until", type=click.Choice(["teacher", "student", "pruned", "int8"]), default="int8",
              show_default=True, help="Last stage to run.")
@click.option("--teacher-steps", type=int, default=None, help=f"Teacher training steps [default: {D['teacher']['steps']}].")
@click.option("--student-steps", type=int, default=None,
              help="Steps of the distilled student, and of the same student from scratch "
                   f"[default: {D['student']['steps']}].")
@click.option("--prune-steps", type=int, default=None, help=f"Recovery steps after pruning [default: {D['pruned']['steps']}].")
@click.option("--qat-steps", type=int, default=None, help=f"Quantisation-aware steps [default: {D['int8']['steps']}].")
@click.option("--steps", type=int, default=None, help="The same as --teacher-steps.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--seed", type=int, default=None, help="Seed of the corpus and the training [default: 0; with --resume: "
              "the run's].")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last checkpoint.")
@click.option("--budget", type=float, default=None, metavar="MINUTES",
              help="Scale the steps not given so the whole run fits in this many minutes here.")
@click.option("--call-weight", type=float, default=None,
              help="Loss weight of the tokens that decide an action (each call's tokens, and the first token "
                   "after a request or a result: call or answer) against 1 for the rest of an answer "
                   f"[default: {D['student']['call_weight']:g}; with --resume: the run's].")
@click.option("--dry-run", is_flag=True, help="Print the plan (steps, time here) and stop.")
def train(agent, out, until, teacher_steps, student_steps, prune_steps, qat_steps, steps, device, seed, resume,
          budget, call_weight, dry_run):
    """Train the teacher, then (by default) the whole chain down to the int8 model.

    First it prints its plan: each stage's steps and the time they take on this machine, from a few
    timed steps of each stage's model. Step flags left out take defaults.DEFAULTS (on --resume: the
    run's own); --budget scales them to the minutes you have."""
    from .training.chain import plan, train as train_fn
    from .training.train import check_positive

    check_positive(call_weight=call_weight)  # before the plan's warm-up, not after it

    if steps is not None and teacher_steps is not None and steps != teacher_steps:
        raise TinyAgentError(f"--steps {steps} and --teacher-steps {teacher_steps} differ (they are one "
                             f"setting: give one of them)")
    step_args = {"steps": teacher_steps if teacher_steps is not None else steps, "distill_steps": student_steps,
                 "recover_steps": prune_steps, "qat_steps": qat_steps}

    agent = agent if agent is not None or resume else DEFAULT_AGENT
    p = plan(agent, out, budget_minutes=budget, device=device, resume=resume, until=until, seed=seed, **step_args)
    click.echo(p.table())
    if dry_run:
        return
    if p.scaled_from is not None:
        step_args.update(p.step_args)
    train_fn(agent, out, until=until, device=device, seed=seed, resume=resume, call_weight=call_weight, **step_args)


@main.command()
@click.option("--run", "run", required=True, help="Run folder.")
@click.option("--steps", type=int, default=None, help="Steps of the distilled student and of the scratch one "
              f"[default: {D['student']['steps']}; on --resume: the stage's].")
@click.option("--resume", is_flag=True)
def distill(run, steps, resume):
    """Distil the student from the teacher (and train the same student from scratch, for comparison)."""
    from .training.distill import distill as fn

    fn(run, steps=steps, resume=resume)


@main.command()
@click.option("--run", "run", required=True, help="Run folder.")
@click.option("--ffn-keep", type=float, default=None,
              help=f"Fraction of FFN neurons kept, in (0, 1] [default: {D['pruned']['ffn_keep']}; on --resume: the stage's].")
@click.option("--heads-keep", type=float, default=None,
              help=f"Fraction of attention heads kept, in (0, 1] [default: {D['pruned']['heads_keep']}; on --resume: "
                   "the stage's].")
@click.option("--from", "source", type=click.Choice(["best", "student", "scratch"]), default=None,
              help="The student to prune: best = lower validation loss of distilled and scratch "
                   f"[default: {D['pruned']['source']}; on --resume: the stage's].")
@click.option("--steps", type=int, default=None,
              help=f"Recovery steps after pruning [default: {D['pruned']['steps']}; on --resume: the stage's].")
@click.option("--resume", is_flag=True)
def prune(run, ffn_keep, heads_keep, source, steps, resume):
    """Structured pruning (FFN neurons, heads) ranked by L1 importance, then recovery."""
    from .training.prune import prune as fn

    fn(run, ffn_keep=ffn_keep, heads_keep=heads_keep, source=source, recover_steps=steps, resume=resume)
    from .training.run import open_run

    entry = open_run(run, writer=False).stage("pruned")
    losses = ", ".join(f"{k} {v:.4f}" for k, v in sorted(entry.get("source_val_loss", {}).items()))
    click.echo(f"pruned {entry['source']}/" + (f" (validation loss: {losses})" if losses else ""))


@main.command()
@click.option("--run", "run", required=True, help="Run folder.")
@click.option("--steps", type=int, default=None, help=f"Quantisation-aware steps [default: {D['int8']['steps']}; on --resume: the stage's].")
@click.option("--resume", is_flag=True)
def quantize(run, steps, resume):
    """Quantisation-aware training, export the integer model, choose its confidence gate on val."""
    from .training.gate import choose_gate
    from .training.quantize import quantize as fn

    fn(run, qat_steps=steps, resume=resume)
    _print_gate(choose_gate(run))


def _print_gate(g: dict) -> None:
    click.echo(f"confidence gate: min_margin {g['min_margin']} (chosen on val: stops {g['wrong_stopped']} of "
               f"{g['wrong']} wrong write calls and {g['right_stopped']} of {g['right']} right ones)")


@main.command()
@click.option("--run", "run", default=None, help="Run folder (default: the shipped model).")
def gate(run):
    """Choose the confidence gate's threshold on the validation split again (int8/gate.json)."""
    from .training.gate import choose_gate

    _print_gate(choose_gate(_run_dir(run)))


@main.command("eval")
@click.option("--run", "run", default=None, help="Run folder (default: the shipped model).")
@click.option("--n", "n", type=click.IntRange(min=1), default=None,
              help="Held-out examples to score (default: all).")
@click.option("--split", default="heldout", show_default=True, type=click.Choice(["heldout", "val", "train"]),
              help="The corpus split to score: train and val beside held-out tell a model that underfits "
                   "(train longer) from one that does not carry over to new phrasings (add phrasings). "
                   "Only held-out is saved to eval.json.")
@click.option("--requests", "requests", default=None,
              help="A .tsv of your own requests (category, request, expected calls or -) to score instead.")
@click.option("--conversations", "conversations", default=None,
              help="A file of multi-turn conversations (format: tests/handwritten/conversations-default.txt) "
                   "to score instead.")
@click.option("--stage", default="int8", show_default=True,
              type=click.Choice(["teacher", "scratch", "student", "pruned", "int8"]),
              help="With --requests or --conversations: the stage to score.")
@click.option("--json", "json_out", default=None,
              help="With --requests or --conversations: also write the report to this file.")
def eval_cmd(run, n, split, requests, conversations, stage, json_out):
    """Score every stage on the held-out phrasings (a table, the misses by intent, and eval.json in the
    run), or, with --requests or --conversations, one stage on your own requests or conversations: per
    category, and every miss."""
    if requests and conversations:
        raise TinyAgentError("--requests and --conversations given together (allowed: one of them)")
    if split != "heldout" and (requests or conversations):
        raise TinyAgentError(f"--split {split} scores the corpus; it does not go with --requests or --conversations")
    if requests or conversations:
        from .fileio import write_json
        from .training.evaluate import print_conversations, print_requests, score_conversations, score_requests

        if requests:
            report = score_requests(_run_dir(run), requests, stage)
            print_requests(report)
        else:
            report = score_conversations(_run_dir(run), conversations, stage)
            print_conversations(report)
        if json_out:
            write_json(json_out, report)
        return
    from .training.evaluate import evaluate, print_table

    print_table(evaluate(_run_dir(run), n=n, split=split))


@main.command()
@click.argument("name")
@click.option("--dir", "folder", default="agents", show_default=True)
@click.option("--tools-only", is_flag=True,
              help="Only write DIR/NAME_tools.c, from the spec DIR/NAME.toml as it is now.")
def new(name, folder, tools_only):
    """Scaffold a new agent: its spec agents/NAME.toml and its tools agents/NAME_tools.c."""
    from .agent.spec import load_spec, parse_spec, scaffold
    from .codegen.literals import check_identifier
    from .codegen.tools_file import tools_c_name, write_tools_c
    from .fileio import write_text

    check_identifier(name, what="agent name")
    if Path(folder).exists() and not Path(folder).is_dir():
        raise TinyAgentError(f"--dir {folder} is a file, not a folder (give the folder for agent specs)")
    path, tools = Path(folder) / f"{name}.toml", Path(folder) / tools_c_name(name)
    if tools_only:
        if not path.is_file():
            raise TinyAgentError(f"{path} does not exist (the tools file is written from the agent's spec: "
                                 f"`tinyagent new {name}` makes both)")
        click.echo(f"wrote {write_tools_c(load_spec(path), tools)}: a handler per tool of {path}")
        return
    for p in (path, tools):
        if p.exists():
            raise TinyAgentError(f"{p} exists already (choose another name or remove it)")
    text = scaffold(name)
    write_text(path, text)
    write_tools_c(parse_spec(text, str(path)), tools)
    run = f"runs/{name}"
    click.echo(f"wrote {path}: the agent, its tools and how people ask for them (docs/agent-spec.md)\n"
               f"wrote {tools}: a handler per tool, answering as the simulated board does; edit it for "
               f"your hardware\n"
               f"next (docs/own-agent.md):\n"
               f"  tinyagent train --agent {path} --out {run} --budget 60   # the steps that fit in an hour\n"
               f"  tinyagent chat  --board reference --run {run}\n"
               f"  tinyagent build --board mps2-an386 --run {run} --tools {tools}\n"
               f"  tinyagent chat  --board mps2-an386\n"
               f"after editing {path}: tinyagent new {name} --tools-only (move {tools} away first)")


# ---- boards and devices ----------------------------------------------------------------------------

@main.command()
@click.option("--board", required=True, help="Board name (see `tinyagent boards`).")
@click.option("--out", default=None, help="Build folder (default: build/BOARD).")
@click.option("--run", "run", default=None, help="Run folder with the int8 model (default: the shipped model).")
@click.option("--tools", "tools_c", default=None, help="C file with your agent's tool handlers.")
@click.option("--replace", is_flag=True, help="Replace a build of another model in --out.")
@click.option("--generate-only", is_flag=True, help="Generate the project; do not compile (SDK boards).")
@click.option("--micropython", is_flag=True, help="Generate the MicroPython user C module for BOARD.")
def build(board, out, run, tools_c, replace, generate_only, micropython):
    """Generate C for BOARD, compile it, and report the memory plan against the board's budget."""
    from .targets.build import build as fn, print_report

    print_report(fn(board, out or f"build/{board}", _run_dir(run), tools_c=tools_c, replace=replace,
                    generate_only=generate_only, micropython=micropython))


@main.command()
@click.option("--board", default=None, help="Board (with --out: the build to run or flash).")
@click.option("--out", default=None, help="Build folder (default: build/BOARD).")
@click.option("--port", default=None, help="A serial port of a real board, e.g. /dev/ttyUSB0.")
@click.option("--baud", type=click.IntRange(min=1), default=115200, show_default=True)
@click.option("--run", "run", default=None, help="With --board reference: the run folder.")
@click.option("--diagnostics", is_flag=True,
              help="After each reply, what the firmware or its emulator wrote to stderr (a tools file's "
                   "fprintf on the host board, QEMU's messages), on stderr, marked [BOARD stderr].")
def chat(board, out, port, baud, run, diagnostics):
    """Talk to the agent: one conversation, each request seeing the earlier turns (!new starts a new
    one). Reads one request per line from stdin when stdin is not a terminal."""
    from .device.chat import chat as fn

    fn(board=board, out=out, port=port, baud=baud, run=_run_dir(run), diagnostics=diagnostics)


@main.command("test")
@click.option("--board", default=None)
@click.option("--out", default=None, help="Build folder (default: build/BOARD).")
@click.option("--port", default=None)
@click.option("--baud", type=click.IntRange(min=1), default=115200, show_default=True)
def test_cmd(board, out, port, baud):
    """On-device conformance: tokens and logit checksums, step by step, and whole conversations,
    against the reference."""
    from .device.conformance import conformance, print_results

    res = conformance(board=board, out=out, port=port, baud=baud)
    if not print_results(res):  # the table cuts long details to the terminal's width: the first in full
        failed = [c for c in res.checks if not c.ok]
        first = f"; the first: {failed[0].kind} {failed[0].name}: {failed[0].detail}" if failed else ""
        raise TinyAgentError(f"conformance on {res.board}: {len(failed)} of {len(res.checks)} checks "
                             f"failed{first}", EXIT_CHECK_FAILED)


@main.command()
@click.option("--board", required=True)
@click.option("--out", default=None, help="Build folder (default: build/BOARD).")
@click.option("--port", default=None)
@click.option("--baud", type=click.IntRange(min=1), default=460800, show_default=True)
def flash(board, out, port, baud):
    """Write the build to the board (esptool, UF2 copy, or start the emulator)."""
    from .targets.flash import flash as fn

    click.echo(fn(board, out or f"build/{board}", port=port, baud=baud))


@main.command()
@click.option("--run", "run", default=None, help="Run folder (default: the shipped model).")
def boards(run):
    """Known boards: architecture, flash and RAM, and whether the model fits."""
    from .targets.build import print_boards

    print_boards(_run_dir(run))


@main.command()
@click.option("--run", "run", default=None)
@click.option("--format", "fmt", type=click.Choice(["tflite"]), default="tflite", show_default=True)
@click.option("--out", required=True, help="Output file.")
def export(run, fmt, out):
    """Export the quantised student (int8 .tflite, TFLM conventions)."""
    from .compare.export_tflite import export_tflite

    if Path(out).is_dir():
        raise TinyAgentError(f"--out {out} is a folder (give a file name, e.g. {Path(out) / 'model.tflite'})")
    click.echo(export_tflite(_run_dir(run), out))


@main.command()
@click.option("--quick", is_flag=True, help="Fewer repetitions and sizes.")
@click.option("--out", default="bench/results", show_default=True)
def bench(quick, out):
    """Speed, memory and quality tables; saved as JSON with the machine and the commit."""
    from .compare.bench import run_bench

    if Path(out).exists() and not Path(out).is_dir():
        raise TinyAgentError(f"--out {out} is a file, not a folder (give a folder for the results)")
    run_bench(out, quick=quick)


if __name__ == "__main__":
    main()
