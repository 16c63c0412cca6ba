"""The device tokenizer (ta_tokenizer.c, tables from generate.py) against HF `tokenizers`.

`!tokx <hex>` tokenises any byte string through the firmware's console, so newlines, brackets and
control bytes are covered too; `!tok <text>` is the same path a user types.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from tokenizers import Tokenizer

from tinyagent.agent.spec import DEFAULT_SPEC_PATH, load_spec
from tinyagent.device import protocol

from c_harness import start_firmware
from conftest import WORDS

MAX_BYTES = 360  # hex doubles it; the console's line holds 768 bytes


@pytest.fixture(scope="module")
def device(tmp_path_factory, tiny_int, bpe):
    con = start_firmware(tmp_path_factory.mktemp("tok"), tiny_int[1], bpe, load_spec(DEFAULT_SPEC_PATH))
    yield con
    assert con.close() == 0


@pytest.fixture(scope="module")
def hf(bpe):
    return Tokenizer.from_str(bpe.json_text)


def device_ids(device, data: bytes) -> list[int]:
    return protocol.tokenize(device, data)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=120).filter(lambda s: len(s.encode()) <= MAX_BYTES))
def test_random_text_matches_hf(device, hf, text):
    assert device_ids(device, text.encode()) == hf.encode(text).ids


words = st.lists(st.sampled_from(list(WORDS) + ["[", "]", "\n", " ", "  ", "led on", "[led on]on\n"]), max_size=40)


@settings(max_examples=100, deadline=None)
@given(words)
def test_vocabulary_words_match_hf(device, hf, parts):
    """Text made of the words the BPE was trained on: long merge chains, ties, brackets, newlines."""
    text = " ".join(parts)[:MAX_BYTES]
    assert device_ids(device, text.encode()) == hf.encode(text).ids


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=MAX_BYTES))
def test_random_bytes_match_python_bpe(device, bpe, data):
    """Any bytes, valid UTF-8 or not (which HF cannot take): the same ids as tokenizer.BPE.encode."""
    assert device_ids(device, data) == bpe.encode(data)


def test_merge_ties_go_to_the_leftmost_pair(device, hf, bpe):
    """Overlapping equal pairs ("eee" with a merge e+e) are where leftmost-first matters: the device
    and tokenizer.BPE.encode both give HF's ids."""
    texts = set()
    for a, b, _ in bpe.merges:
        A, B = bpe.token_bytes[a], bpe.token_bytes[b]
        texts.update({A * 3, A * 4 + B, A + B * 3, (A + B) * 3, A + B + A + B + B})
    for t in sorted(t for t in texts if len(t) <= MAX_BYTES):
        try:
            want = hf.encode(t.decode("utf-8")).ids
        except UnicodeDecodeError:  # a token may end inside a character: HF cannot take that
            want = bpe.encode(t)
        assert device_ids(device, t) == want == bpe.encode(t), t  # the device, HF and Python alike


def test_typed_text_and_edges(device, hf):
    for text in ["turn on the light please", "", "a", "[led on]", "]]][[[", "temperature é ü 😀", "x" * 300]:
        if text:
            reply = device.ask("!tok " + text)
            assert reply == ("tok " + " ".join(map(str, hf.encode(text).ids)) + "\n").encode(), text
        assert device_ids(device, text.encode()) == hf.encode(text).ids
    assert device.ask("!tok") == b"tok\n"
    assert device.ask("!tokx 6") == b"error: !tokx needs an even number of hex digits (e.g. !tokx 68690a)\n"
    assert device.ask("!tokx zz") == b"error: !tokx needs hex digits 0-9 a-f (e.g. !tokx 68690a)\n"
