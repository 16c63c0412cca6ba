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
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tokenizers import Tokenizer

from ..agent.corpus import as_read, corpus_stats, generate_corpus
from ..agent.spec import load_spec
from ..agent.tokenizer import train_tokenizer
from ..errors import bad_input
from ..fileio import (
    check_input_file,
    make_dir,
    read_json,
    remove_stale_temps,
    sha256_bytes,
    write_bytes,
    write_json,
    write_text,
)

if TYPE_CHECKING:
    from .data import TokenData

RUN_FORMAT = 1
RUN_FILE = "run.json"
SPEC_FILE = "spec.toml"
TOKENIZER_FILE = "tokenizer.json"
STAGES = ("teacher", "scratch", "student", "pruned", "int8")
# Stages whose output is built from a stage's output: redoing the stage makes them stale (pruned may
# start from scratch: prune.pick_source).
DOWNSTREAM = {"teacher": ("student", "pruned", "int8"), "scratch": ("pruned", "int8"), "student": ("pruned", "int8"),
              "pruned": ("int8",), "int8": ()}
STATUSES = ("pending", "running", "done")
SEED_MAX = 2**32 - 1  # seeds are 0..SEED_MAX (torch's generators take seed * 1_000_003 + epoch: data.Batches)
# run.json's stored arguments, by kind (None is "the default"); others are left to the stage that reads them
_INT_ARGS = ("steps", "batch", "distill_steps", "recover_steps", "qat_steps", "n_train", "n_val", "n_heldout",
             "ckpt_every")
_NUMBER_ARGS = ("lr", "dropout", "alpha", "temperature", "hidden_weight", "ffn_keep", "heads_keep")
_CONFIG_ARGS = ("teacher_cfg", "student_cfg", "model")


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

    def spec(self):
        """The run's spec.toml, refused if it is not the spec the run started on."""
        path = self.path / SPEC_FILE
        self.check_same_spec(path)
        return load_spec(path)

    def check_same_spec(self, path: Path) -> None:
        """`path` (the run's spec.toml, or an --agent given on resume) holds the spec the run started
        on: the sha256 of its bytes is run.json's spec_sha256. A run from before that field passes."""
        check_input_file(path, "agent spec")
        stored = self.info.get("spec_sha256")
        try:
            now = sha256_bytes(Path(path).read_bytes())
        except OSError:
            return  # missing or unreadable: load_spec says so in its own words
        if stored and stored != now:
            raise bad_input(f"{path}: not the spec this run started on (sha256 {now[:12]}, {RUN_FILE} says "
                            f"{stored[:12]}); a run trains on one spec: restore it, or start a new run")

    def data(self, ctx: int) -> Splits:
        """The corpus tokenised for context length `ctx` (regenerated, then cached in memory)."""
        if ctx not in self._data:
            c = self.info["corpus"]
            spec = self.spec()
            corpus = generate_corpus(spec, seed=self.info["seed"], n_train=c["n_train"], n_val=c["n_val"],
                                     n_heldout=c["n_heldout"])
            tok = self.tokenizer()
            from .data import encode_examples  # torch: only where a run is trained or scored in float

            self._data[ctx] = Splits(*(encode_examples(getattr(corpus, s), tok, ctx, as_read)
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
    if type(fmt) is int and fmt > RUN_FORMAT:
        raise bad_input(f"{path / RUN_FILE}: run format {fmt} is newer than this tinyagent reads "
                        f"(format {RUN_FORMAT}); upgrade tinyagent")
    if type(fmt) is not int or fmt != RUN_FORMAT:  # `true` == 1 in Python, not in a run file
        raise bad_input(f"{path / RUN_FILE}: not a tinyagent run file (format {_show(fmt)}; expected {RUN_FORMAT})")
    check_run_fields(info, path / RUN_FILE)
    return info


def _show(v) -> str:
    text = json.dumps(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(v, lo: int = 0, hi: float = math.inf) -> bool:
    return type(v) is int and lo <= v <= hi


def _is_number(v) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _check_args(args, field: str, where: Path) -> None:
    """Stored train() or stage arguments: an object whose known arguments have their types."""
    from ..integer.intmodel import check_model_config

    def bad(k: str, allowed: str):
        raise bad_input(f"{where}: {field}.{k} is {_show(args[k])} (allowed: {allowed})")

    if not isinstance(args, dict):
        raise bad_input(f"{where}: {field} is {_show(args)} (allowed: an object of arguments)")
    for k, v in args.items():
        if v is None:
            continue
        if k == "seed" and not _is_int(v, 0, SEED_MAX):
            bad(k, f"an integer 0..{SEED_MAX}")
        if k in _INT_ARGS and not _is_int(v, 1):
            bad(k, "an integer >= 1")
        if k in _NUMBER_ARGS and not _is_number(v):
            bad(k, "a number")
        if k in _CONFIG_ARGS:
            check_model_config(v, f"{where}: {field}.{k}")


def check_run_fields(info: dict, where: Path) -> None:
    """The fields of a run file that are there have the types and ranges the stages rely on: one
    bad_input line naming the field, its value and what is allowed. (open_run says which must be there.)"""
    from ..integer.intmodel import check_scales

    def bad(field: str, v, allowed: str):
        raise bad_input(f"{where}: {field} is {_show(v)} (allowed: {allowed})")

    for k in ("tool", "agent"):
        if k in info and not isinstance(info[k], str):
            bad(k, info[k], "a string")
    sha = info.get("spec_sha256", "0" * 64)
    if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        bad("spec_sha256", sha, "64 lowercase hex digits, the sha256 of spec.toml")
    if "seed" in info and not _is_int(info["seed"], 0, SEED_MAX):
        bad("seed", info["seed"], f"an integer 0..{SEED_MAX}")
    if "vocab_size" in info and not _is_int(info["vocab_size"], 256, 65535):
        bad("vocab_size", info["vocab_size"], "an integer 256..65535")
    corpus = info.get("corpus", {})
    if not isinstance(corpus, dict):
        bad("corpus", corpus, "an object")
    for k in ("n_train", "n_val", "n_heldout", "ctx"):
        if k in corpus and not _is_int(corpus[k], 1):
            bad(f"corpus.{k}", corpus[k], "an integer >= 1")
    for split in ("train", "val", "heldout"):
        stats = corpus.get(split, {})
        if not isinstance(stats, dict):
            bad(f"corpus.{split}", stats, "an object of statistics")
        for k, v in stats.items():
            if not _is_number(v):
                bad(f"corpus.{split}.{k}", v, "a number")
    if "args" in info:
        _check_args(info["args"], "args", where)
    stages = info.get("stages", {})
    if not isinstance(stages, dict):
        bad("stages", stages, f"an object with an entry per stage ({', '.join(STAGES)})")
    for name, e in stages.items():
        f = f"stages.{name}"
        if name not in STAGES:
            raise bad_input(f"{where}: {f} is not a stage (allowed: {', '.join(STAGES)})")
        if not isinstance(e, dict):
            bad(f, e, "an object with a status")
        if e.get("status") not in STATUSES:
            bad(f + ".status", e.get("status"), ", ".join(STATUSES))
        for k in ("step", "steps", "resumed_from", "params"):
            if k in e and not _is_int(e[k]):
                bad(f"{f}.{k}", e[k], "an integer >= 0")
        if "seconds" in e and not _is_number(e["seconds"]):
            bad(f + ".seconds", e["seconds"], "a number")
        if "args" in e:
            _check_args(e["args"], f + ".args", where)
        for k in ("metrics", "source_val_loss"):  # {"val": {"loss": ...}} and {"student": 0.13}
            if not isinstance(e.get(k, {}), dict):
                bad(f"{f}.{k}", e[k], "an object")
            for part, v in e.get(k, {}).items():
                if not (_is_number(v) or isinstance(v, dict) and all(_is_number(x) for x in v.values())):
                    bad(f"{f}.{k}.{part}", v, "a number, or numbers by name")
        if "curve" in e and not (isinstance(e["curve"], list) and all(
                isinstance(p, list) and len(p) == 2 and all(map(_is_number, p)) for p in e["curve"])):
            bad(f + ".curve", e["curve"], "a list of [step, loss] pairs")
        if "qat" in e:
            q = e["qat"] if isinstance(e["qat"], dict) else None
            n = len(q["q"]) if q and isinstance(q.get("q"), list) else 0
            check_scales({k: v for k, v in (q or {}).items() if k != "extra"} if q else e["qat"], n,
                         f"{where}: {f}.qat")


def open_run(path: str | Path, writer: bool = True) -> Run:
    path = Path(path)
    info = check_run_file(path)
    need = {"stages", "corpus", "seed", "vocab_size", "args"}
    if not need <= info.keys():
        raise bad_input(f"{path / RUN_FILE}: not a tinyagent run file (expected format {RUN_FORMAT} with "
                        f"{', '.join(sorted(need))}; {sorted(need - info.keys())[0]} is missing)")
    lacking = [k for k in ("n_train", "n_val", "n_heldout") if k not in info["corpus"]]
    if lacking:
        raise bad_input(f"{path / RUN_FILE}: corpus.{lacking[0]} is missing (the corpus is regenerated "
                        "from n_train, n_val and n_heldout)")
    if writer:  # what a killed writer left behind (fileio's temp files)
        for folder in (path, *(path / s for s in STAGES)):
            remove_stale_temps(folder)
    return Run(path, info, writer)


def create_run(agent: str | Path, out: str | Path, *, seed: int, n_train: int, n_val: int, n_heldout: int,
               vocab_size: int, ctx: int, args: dict, writer: bool = True) -> Run:
    """Make the run folder: spec copy, corpus, tokenizer, run.json. Nothing is written on bad input."""
    agent, out = Path(agent), Path(out)
    check_input_file(agent, "agent spec")  # /dev/zero, a pipe or a huge file: refused before reading
    spec = load_spec(agent)  # validates; raises bad_input itself
    corpus = generate_corpus(spec, seed=seed, n_train=n_train, n_val=n_val, n_heldout=n_heldout)
    tok = train_tokenizer((as_read(ex) for ex in corpus.train), vocab_size=vocab_size)
    from .data import encode_examples  # torch

    splits = Splits(*(encode_examples(getattr(corpus, s), tok, ctx, as_read) for s in ("train", "val", "heldout")))
    if len(splits.train) == 0:
        raise bad_input(f"no training example fits in ctx {ctx} tokens; use a larger ctx")
    spec_bytes = agent.read_bytes()
    info = {"format": RUN_FORMAT, "tool": f"tinyagent {_version()}", "agent": str(agent), "seed": seed,
            "spec_sha256": sha256_bytes(spec_bytes),  # of spec.toml's bytes: resume refuses another spec
            "vocab_size": tok.get_vocab_size(),
            "corpus": {"n_train": n_train, "n_val": n_val, "n_heldout": n_heldout, "ctx": ctx,
                       "train": splits.train.stats(), "val": splits.val.stats(), "heldout": splits.heldout.stats(),
                       "text": corpus_stats(corpus)},
            "args": args, "stages": {s: {"status": "pending"} for s in STAGES}}
    run = Run(out, info, writer)
    run._data[ctx] = splits
    if writer:
        make_dir(out)
        write_bytes(out / SPEC_FILE, spec_bytes)
        write_text(out / TOKENIZER_FILE, tok.to_str())
        run.save()
    return run
