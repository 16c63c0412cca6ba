"""The defaults of every training stage, in one table: the API (train.py and the stage modules) and the
CLI (its help and its unset flags) both read them here. Plain data: importing it costs nothing."""

from __future__ import annotations

# Defaults of every stage (docs/training.md has what each stage measured). This is the teacher ->
# distilled student chain `tinyagent train` runs; the shipped model was not made with it: it is a
# scratch student of 15,000 steps pruned to ffn_keep 0.75 with no teacher (docs/training.md, "The
# shipped model"), because a teacher at 256 tokens did not fit this machine's time. A stage argument
# left as None takes its value from here, or on resume from what the stage was started with.
DEFAULTS: dict[str, dict] = {
    "corpus": {"n_train": 100000, "n_val": 1000, "n_heldout": 1000},
    "teacher": {"steps": 4000, "batch": 32, "lr": 3e-3, "dropout": 0.1, "call_weight": 1.0},
    "student": {"steps": 30000, "batch": 32, "lr": 3e-3,
                "alpha": 0.2,  # weight of the distillation term; 1 - alpha on the hard labels
                "temperature": 2.0, "hidden_weight": 0.0, "dropout": 0.1,
                "call_weight": 1.0},  # loss weight of the tokens that decide an action (data.loss_weights)
    "pruned": {"ffn_keep": 0.5, "heads_keep": 1.0, "steps": 2000, "batch": 32, "lr": 1e-3,
               "alpha": 0.2, "temperature": 2.0, "dropout": 0.1, "call_weight": 1.0,
               "source": "best"},  # the student with the lower validation loss (prune.pick_source)
    "int8": {"steps": 1000, "batch": 32, "lr": 3e-4, "alpha": 0.2, "temperature": 2.0, "call_weight": 1.0},
}
# the scratch student trains as the distilled one does
DEFAULTS["scratch"] = {k: DEFAULTS["student"][k] for k in ("steps", "batch", "lr", "dropout", "call_weight")}
