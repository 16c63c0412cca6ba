"""The run folder: one training run, its inputs and every stage's output.

    run.json         format, tool version, seed, corpus sizes and stats, train() arguments, and per
                     stage: status (pending | running | done), steps, seconds, arguments, metrics
    spec.toml        copy of the agent spec the corpus came from
    tokenizer.json   HF byte-level BPE, trained on the training split
    teacher/ scratch/ student/ pruned/ int8/    checkpoints (checkpoint.py), one per stage

The corpus is not stored: it is regenerated from spec.toml and the seed, which is deterministic.
Only rank 0 writes here (`Run.save` is a no-op elsewhere).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from .corpus import corpus_stats, generate_corpus, render
from .data import TokenData, encode_examples
from .errors import bad_input
from .fileio import read_json, write_bytes, write_json, write_text
from .spec import load_spec
from .tokenizer import train_tokenizer

RUN_FORMAT = 1
RUN_FILE = "run.json"
SPEC_FILE = "spec.toml"
TOKENIZER_FILE = "tokenizer.json"
STAGES = ("teacher", "scratch", "student", "pruned", "int8")
# Stages whose output is built from a stage's output: redoing the stage makes them stale (pruned may
# start from scratch: prune.pick_source).
DOWNSTREAM = {"teacher": ("student", "pruned", "int8"), "scratch": ("pruned", "int8"), "student": ("pruned", "int8"),
              "pruned": ("int8",), "int8": ()}


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("tinyagent")
    except Exception:  # running from a source tree without metadata
        return "unknown"


@dataclass
class Splits:
    train: TokenData
    val: TokenData
    heldout: TokenData


class Run:
    def __init__(self, path: Path, info: dict, writer: bool = True):
        self.path, self.info, self.writer = path, info, writer
        self._data: dict[int, Splits] = {}

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # -- stages ---------------------------------------------------------------------------------------

    def dir(self, stage: str) -> Path:
        return self.path / stage

    def stage(self, stage: str) -> dict:
        return self.info["stages"].setdefault(stage, {"status": "pending"})

    def done(self, stage: str) -> bool:
        return self.stage(stage)["status"] == "done"

    def require(self, stage: str, why: str) -> Path:
        if not self.done(stage):
            raise bad_input(f"{self.path}: stage '{stage}' has not finished ({why}); run it first")
        return self.dir(stage)

    def begin(self, stage: str, args: dict, fresh: bool, **fields) -> None:
        """Mark `stage` running. A fresh start clears what an earlier attempt recorded and makes every
        later stage stale (pending again)."""
        if fresh:
            self.info["stages"][stage] = {}
            for later in DOWNSTREAM[stage]:
                self.info["stages"][later] = {"status": "pending"}
        self.stage(stage).update(status="running", args=args, **fields)
        self.save()

    def update(self, stage: str, **fields) -> None:
        self.stage(stage).update(fields)
        self.save()

    def save(self) -> None:
        if self.writer:
            write_json(self.path / RUN_FILE, self.info)

    # -- inputs ---------------------------------------------------------------------------------------

    def tokenizer(self) -> Tokenizer:
        try:
            return Tokenizer.from_file(str(self.path / TOKENIZER_FILE))
        except Exception:
            raise bad_input(f"{self.path}: missing or corrupt {TOKENIZER_FILE}; start a new run") from None

    def data(self, ctx: int) -> Splits:
        """The corpus tokenised for context length `ctx` (regenerated, then cached in memory)."""
        if ctx not in self._data:
            c = self.info["corpus"]
            spec = load_spec(self.path / SPEC_FILE)
            corpus = generate_corpus(spec, seed=self.info["seed"], n_train=c["n_train"], n_val=c["n_val"],
                                     n_heldout=c["n_heldout"])
            tok = self.tokenizer()
            self._data[ctx] = Splits(*(encode_examples(getattr(corpus, s), tok, ctx, render)
                                       for s in ("train", "val", "heldout")))
            if len(self._data[ctx].train) == 0:
                raise bad_input(f"no training example fits in ctx {ctx} tokens "
                                f"(longest: see {RUN_FILE}); use a larger ctx")
        return self._data[ctx]


def check_run_file(path: str | Path) -> dict:
    """run.json of the run folder `path`, read and its format checked: one bad_input line for a folder
    that is missing or a file, a run.json that is missing, unreadable, corrupt, or from a newer tinyagent."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise bad_input(f"{path} is a file, not a run folder (give the folder `tinyagent train --out` made)")
    try:
        info = read_json(path / RUN_FILE, "run file")
    except FileNotFoundError:
        raise bad_input(f"{path}: not a run folder (no {RUN_FILE}; create one with `tinyagent train`)") from None
    fmt = info.get("format") if isinstance(info, dict) else None
    if isinstance(fmt, int) and fmt > RUN_FORMAT:
        raise bad_input(f"{path / RUN_FILE}: run format {fmt} is newer than this tinyagent reads "
                        f"(format {RUN_FORMAT}); upgrade tinyagent")
    if fmt != RUN_FORMAT:
        raise bad_input(f"{path / RUN_FILE}: not a tinyagent run file (format {fmt!r}; expected {RUN_FORMAT})")
    return info


def open_run(path: str | Path, writer: bool = True) -> Run:
    path = Path(path)
    info = check_run_file(path)
    need = {"stages", "corpus", "seed", "vocab_size", "args"}
    if not isinstance(info, dict) or info.get("format") != RUN_FORMAT or not need <= info.keys():
        raise bad_input(f"{path / RUN_FILE}: not a tinyagent run file (expected format {RUN_FORMAT} with "
                        f"{', '.join(sorted(need))})")
    return Run(path, info, writer)


def create_run(agent: str | Path, out: str | Path, *, seed: int, n_train: int, n_val: int, n_heldout: int,
               vocab_size: int, ctx: int, args: dict, writer: bool = True) -> Run:
    """Make the run folder: spec copy, corpus, tokenizer, run.json. Nothing is written on bad input."""
    agent, out = Path(agent), Path(out)
    spec = load_spec(agent)  # validates; raises bad_input itself
    corpus = generate_corpus(spec, seed=seed, n_train=n_train, n_val=n_val, n_heldout=n_heldout)
    tok = train_tokenizer((render(ex) for ex in corpus.train), vocab_size=vocab_size)
    splits = Splits(*(encode_examples(getattr(corpus, s), tok, ctx, render) for s in ("train", "val", "heldout")))
    if len(splits.train) == 0:
        raise bad_input(f"no training example fits in ctx {ctx} tokens; use a larger ctx")
    info = {"format": RUN_FORMAT, "tool": f"tinyagent {_version()}", "agent": str(agent), "seed": seed,
            "vocab_size": tok.get_vocab_size(),
            "corpus": {"n_train": n_train, "n_val": n_val, "n_heldout": n_heldout, "ctx": ctx,
                       "train": splits.train.stats(), "val": splits.val.stats(), "heldout": splits.heldout.stats(),
                       "text": corpus_stats(corpus)},
            "args": args, "stages": {s: {"status": "pending"} for s in STAGES}}
    run = Run(out, info, writer)
    run._data[ctx] = splits
    if writer:
        out.mkdir(parents=True, exist_ok=True)
        write_bytes(out / SPEC_FILE, agent.read_bytes())
        write_text(out / TOKENIZER_FILE, tok.to_str())
        run.save()
    return run
