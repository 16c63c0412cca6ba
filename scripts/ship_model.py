"""Copy a finished run into models/default: what `build`, `chat`, `test` and `eval` need, small.

Kept: run.json, spec.toml, tokenizer.json, eval.json, and the float student, scratch, pruned and int8
(QAT float + integer) stages. Left out: the teacher (its weights are the bulk) and resume state.
Usage: python scripts/ship_model.py runs/default models/default
"""
import shutil
import sys
from pathlib import Path

KEEP_FILES = ("run.json", "spec.toml", "tokenizer.json", "eval.json")
KEEP_STAGES = ("scratch", "student", "pruned", "int8")
STAGE_FILES = ("model.safetensors", "config.json", "model.int.safetensors", "model.int.json", "gate.json")


def main(src: str, dst: str) -> None:
    src_p, dst_p = Path(src), Path(dst)
    tmp = dst_p.with_name(dst_p.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in KEEP_FILES:
        if (src_p / f).exists():
            shutil.copy2(src_p / f, tmp / f)
    for stage in KEEP_STAGES:
        for f in STAGE_FILES:
            if (src_p / stage / f).exists():
                (tmp / stage).mkdir(exist_ok=True)
                shutil.copy2(src_p / stage / f, tmp / stage / f)
    shutil.rmtree(dst_p, ignore_errors=True)
    tmp.rename(dst_p)
    print(f"shipped {src_p} -> {dst_p}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
