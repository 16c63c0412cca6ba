"""The held-out and val splits never repeat a request the model trained on.

The spec below makes that likely to happen: its phrasings differ only in case, so a held-out phrasing
rendered in lower case ("Light on" -> "light on") is a training request, and the meta and off-topic
requests come from pools that every split shares. Without the splits' avoidance of training requests
about a fifth of the held-out requests would repeat one (checked below, so the test can fail)."""
from __future__ import annotations

import pytest

from tinyagent.agent.corpus import _Generator, generate_corpus, split_phrasings
from tinyagent.agent.spec import parse_spec

SPEC = """
[agent]
name = "collide"
[[tools]]
name = "led"
call = "led {action}"
args.action = { type = "enum", values = ["on", "off"] }
result.format = "{state}"
result.slots.state = { type = "enum", values = ["on", "off"] }
[[tools.intents]]
name = "led_on"
args = { action = "on" }
phrasings = ["light on", "Light on", "LIGHT ON", "light On", "Light On"]
answers = ["The light is {state}."]
[[tools.intents]]
name = "led_off"
args = { action = "off" }
phrasings = ["light off", "Light off", "LIGHT OFF", "light Off", "Light Off"]
answers = ["The light is {state}."]
"""
N_TRAIN, N_OTHER = 300, 50


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_heldout_and_val_avoid_training_requests(seed):
    spec = parse_spec(SPEC)
    corpus = generate_corpus(spec, seed=seed, n_train=N_TRAIN, n_val=N_OTHER, n_heldout=N_OTHER)
    trained = {ex.request for ex in corpus.train}
    assert [ex.request for ex in corpus.heldout if ex.request in trained] == []
    assert [ex.request for ex in corpus.val if ex.request in trained] == []
    # the same held-out draw with nothing to avoid: many repeats, so the check above has teeth
    _, held = split_phrasings(spec, seed)
    unguarded = _Generator(spec, held, f"tinyagent/heldout/{seed}").generate(N_OTHER)
    assert sum(ex.request in trained for ex in unguarded) >= 3
