"""Byte-level BPE, trained with HF `tokenizers`, kept simple enough for the device to mirror exactly.

The rules (the device's tokenizer in firmware/ta_tokenizer.c follows them, and tests hold it to HF):
1. Split the input bytes into pieces: each split byte is a piece of its own; every maximal run of
   other bytes is a piece. There is no regex pre-tokenizer. The split bytes are '\\n', '[', ']' and
   the ten digits (so numbers are always spelled digit by digit, which a small model copies and
   converts far more reliably than arbitrary merged chunks like "gpio 3"); tokenizer.json records
   them as one isolated `Split` per byte, and the device gets them as a 256-bit table.
2. Each piece starts as one token per byte (the 256 byte tokens).
3. Repeatedly merge the adjacent pair with the lowest merge rank; among equal ranks, the leftmost.
   Stop when no adjacent pair has a merge.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from ..errors import bad_input
from ..fileio import write_text

SPLIT_BYTES = b"\n[]0123456789"
DEFAULT_VOCAB = 512


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map, which HF's ByteLevel uses."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_TO_CHAR = _bytes_to_unicode()


def train_tokenizer(texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB,
                    split_bytes: bytes = SPLIT_BYTES) -> Tokenizer:
    if not 257 <= vocab_size <= 4096:
        raise bad_input(f"vocab size {vocab_size} is out of range (allowed: 257..4096)")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(chr(c), "isolated") for c in split_bytes]
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False, special_tokens=[])
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


@dataclass
class BPE:
    """The tokenizer as plain tables: what the device holds and what `encode` below runs."""

    byte_to_id: list[int]  # 256 entries
    merges: list[tuple[int, int, int]]  # (left id, right id, merged id), in rank order
    token_bytes: list[bytes]  # id -> bytes
    json_text: str  # the HF tokenizer.json it came from
    split_bytes: bytes = SPLIT_BYTES  # rule 1's bytes, from the json's pre_tokenizer

    @property
    def vocab_size(self) -> int:
        return len(self.token_bytes)

    def id_of(self, b: bytes) -> int:
        return self.byte_to_id[b[0]] if len(b) == 1 else self.token_bytes.index(b)

    def encode(self, text: str | bytes) -> list[int]:
        data = text.encode("utf-8") if isinstance(text, str) else text
        rank = {(a, b): (r, m) for r, (a, b, m) in enumerate(self.merges)}
        out: list[int] = []
        for piece in split_pieces(data, self.split_bytes):
            ids = [self.byte_to_id[b] for b in piece]
            while len(ids) > 1:
                best = None
                for i in range(len(ids) - 1):
                    rm = rank.get((ids[i], ids[i + 1]))
                    if rm is not None and (best is None or rm[0] < best[0]):
                        best = (rm[0], i, rm[1])
                if best is None:
                    break
                _, i, m = best
                ids[i:i + 2] = [m]
            out.extend(ids)
        return out

    def decode(self, ids: Iterable[int]) -> str:
        return b"".join(self.token_bytes[i] for i in ids).decode("utf-8", errors="replace")

    def save(self, path: str | Path) -> None:
        write_text(path, self.json_text)


def split_pieces(data: bytes, split_bytes: bytes = SPLIT_BYTES) -> list[bytes]:
    pieces, start = [], 0
    for i, b in enumerate(data):
        if b in split_bytes:
            if i > start:
                pieces.append(data[start:i])
            pieces.append(data[i:i + 1])
            start = i + 1
    if start < len(data):
        pieces.append(data[start:])
    return pieces


def _split_bytes(pre: dict | None) -> bytes:
    """Rule 1's bytes from a tokenizer.json pre_tokenizer: isolated single-byte Splits, then ByteLevel
    without its regex. Anything else is a tokenizer the device could not mirror."""
    steps = (pre or {}).get("pretokenizers", [pre] if pre else [])
    out = bytearray()
    for st in steps:
        pat = st.get("pattern", {}).get("String", "") if st.get("type") == "Split" else ""
        if st.get("type") == "Split" and len(pat.encode()) == 1 and st.get("behavior") == "Isolated" \
                and not st.get("invert"):
            out += pat.encode()
        elif st.get("type") == "ByteLevel" and not st.get("use_regex", True) and not st.get("add_prefix_space"):
            continue
        else:
            raise ValueError(f"pre-tokenizer {json.dumps(st)[:60]} is not one the device mirrors "
                             "(allowed: isolated one-byte Split, ByteLevel without regex)")
    return bytes(out)


# Settings of HF's BPE model that change how text is split or merged; the device mirrors none of them.
_BPE_OPTIONS_OFF = {"dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                    "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False}


def _check_bpe(full: dict) -> None:
    """A tokenizer.json as `train_tokenizer` writes it, or ValueError saying what is not: a byte-level
    BPE with no normalizer or added tokens, whose ids 0..255 are the 256 byte tokens in the byte
    alphabet's order and whose token 256 + r is what merge r makes, from tokens made before it."""
    model = full.get("model")
    if not isinstance(model, dict) or model.get("type") != "BPE":
        raise ValueError(f"model type {(model or {}).get('type') if isinstance(model, dict) else model!r} "
                         "is not BPE (allowed: the byte-level BPE `tinyagent train` writes)")
    for k, off in _BPE_OPTIONS_OFF.items():
        v = model.get(k, off)
        if v != off and not (off is None and v == ""):
            raise ValueError(f"BPE option {k}={v!r} is not one the device mirrors (allowed: {off!r})")
    if full.get("normalizer") is not None or full.get("added_tokens"):
        raise ValueError("it has a normalizer or added tokens (allowed: none; the device mirrors neither)")
    vocab, merges = model.get("vocab"), model.get("merges")
    if not isinstance(vocab, dict) or not isinstance(merges, list):
        raise ValueError("its BPE model has no vocab object or no merges list")
    ids = sorted(vocab.values()) if all(type(i) is int for i in vocab.values()) else None
    if ids != list(range(len(vocab))) or not 256 <= len(vocab) <= 65535:
        raise ValueError(f"its {len(vocab)} token ids are not 0..{len(vocab) - 1} each once "
                         "(allowed: 256..65535 tokens, ids 0..n-1)")
    alphabet = sorted(BYTE_TO_CHAR.values())  # the order HF's trainer gives the byte tokens
    for b in range(256):
        got = vocab.get(BYTE_TO_CHAR[b])
        if got != alphabet.index(BYTE_TO_CHAR[b]):
            raise ValueError(f"byte {b:#04x} is token {got}, not {alphabet.index(BYTE_TO_CHAR[b])} (the 256 byte "
                             "tokens come first, in byte-alphabet order: ids permuted or bytes missing)")
    if len(merges) != len(vocab) - 256:
        raise ValueError(f"it has {len(vocab)} tokens but {len(merges)} merges (allowed: one merge per token "
                         "after the 256 byte tokens)")
    for r, m in enumerate(merges):
        pair = m.split(" ") if isinstance(m, str) else m
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise ValueError(f"merge {r} is {json.dumps(m)[:40]} (allowed: \"left right\" or [left, right])")
        a, b = pair
        made = vocab.get(a + b)
        if vocab.get(a, 1 << 30) >= 256 + r or vocab.get(b, 1 << 30) >= 256 + r or made != 256 + r:
            raise ValueError(f"merge {r} ({a!r} {b!r}) does not make token {256 + r} from tokens made before it "
                             f"(it makes {made}; merges and vocab disagree)")
    char_to_byte = {c: b for b, c in BYTE_TO_CHAR.items()}
    odd = next((s for s in vocab if not s or any(c not in char_to_byte for c in s)), None)
    if odd is not None:
        raise ValueError(f"token {odd[:20]!r} is not spelled in the byte alphabet (a byte-level BPE's tokens are)")


def from_hf(tok: Tokenizer) -> BPE:
    js = tok.to_str()
    full = json.loads(js)
    _check_bpe(full)
    model = full["model"]
    vocab: dict[str, int] = model["vocab"]
    char_to_byte = {c: b for b, c in BYTE_TO_CHAR.items()}
    token_bytes = [b""] * len(vocab)
    for s, i in vocab.items():
        token_bytes[i] = bytes(char_to_byte[c] for c in s)
    merges = []
    for m in model["merges"]:
        a, b = m.split(" ") if isinstance(m, str) else m
        merges.append((vocab[a], vocab[b], vocab[a + b]))
    byte_to_id = [vocab[BYTE_TO_CHAR[b]] for b in range(256)]
    return BPE(byte_to_id, merges, token_bytes, js, _split_bytes(full.get("pre_tokenizer")))


def load_tokenizer(path: str | Path) -> BPE:
    path = Path(path)
    try:
        tok = Tokenizer.from_file(str(path))
    except FileNotFoundError:
        raise bad_input(f"{path}: no tokenizer file (expected the tokenizer.json a run writes)") from None
    except Exception as e:  # tokenizers raises bare Exceptions for malformed JSON
        raise bad_input(f"{path}: not a valid tokenizer.json ({str(e).splitlines()[0][:80]})") from None
    try:
        return from_hf(tok)
    except ValueError as e:  # _check_bpe and _split_bytes: what the device could not mirror
        raise bad_input(f"{path}: not a valid tokenizer.json ({e})") from None


def hf_encode(json_text: str, text: str) -> list[int]:
    """Encode with HF itself (for tests and for training-data preparation at speed)."""
    return Tokenizer.from_str(json_text).encode(text).ids
