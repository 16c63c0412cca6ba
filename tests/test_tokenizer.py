"""The tokenizer: the simple merge rule that the device runs gives HF's ids, and text round-trips."""
from hypothesis import given, settings, strategies as st

from tinyagent.tokenizer import hf_encode, split_pieces

ALPHABET = st.characters(codec="utf-8", exclude_categories=("Cs",))


@settings(max_examples=300, deadline=None)
@given(st.text(ALPHABET, max_size=80) | st.text("abcdefghij onthelig[]\n.", max_size=80))
def test_simple_merge_rule_equals_hf_and_roundtrips(bpe, s):
    ids = bpe.encode(s)
    assert ids == hf_encode(bpe.json_text, s)
    assert bpe.decode(ids) == s


def test_brackets_and_newline_are_tokens_of_their_own(bpe):
    for ch in "[]\n":
        assert bpe.token_bytes[bpe.byte_to_id[ord(ch)]] == ch.encode()
    assert not any(b != bytes([c]) and any(x in b for x in b"[]\n")
                   for c, b in ((b[0], b) for b in bpe.token_bytes if b))


def test_split_pieces():
    assert split_pieces(b"ab[c]\n\nd") == [b"ab", b"[", b"c", b"]", b"\n", b"\n", b"d"]
