/* The device tokenizer: byte-level BPE with exactly the rules of host/tinyagent/agent/tokenizer.py.
 *
 * 1. Split the bytes into pieces: each split byte (the vocab's `split` table: '\n', '[', ']' and the
 *    digits for a tokenizer tinyagent trains) is a piece of its own; every maximal run of other
 *    bytes is a piece.
 * 2. Each piece starts as one token per byte.
 * 3. Repeatedly merge the adjacent pair with the lowest merge rank (the leftmost among equal ranks),
 *    until no adjacent pair has a merge.
 * The tables are generated from the HF tokenizer (ta_vocab.c); tests hold the ids equal to HF's.
 */
#ifndef TA_TOKENIZER_H
#define TA_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "ta_status.h"

typedef struct {
    int32_t vocab;
    const uint16_t *byte_to_id;     /* (256,) the byte tokens */
    const uint8_t *split;           /* (32,) bit b set: byte b is a piece of its own (rule 1) */
    int32_t n_merges;
    const uint32_t *merge_keys;     /* (n_merges,) left << 16 | right, ascending (binary search) */
    const uint16_t *merge_rank;     /* (n_merges,) lower merges first */
    const uint16_t *merge_id;       /* (n_merges,) the merged token */
    const uint8_t *token_bytes;     /* every token's bytes, concatenated */
    const uint32_t *token_offsets;  /* (vocab + 1,) token t is token_bytes[off[t] .. off[t+1]) */
} ta_vocab;

/* The tokenizer of this build, defined by the generated ta_vocab.c. */
extern const ta_vocab ta_vocab_data;

/* Tokenises text[0..n) into ids[0..*n_ids). Each piece is merged in place in `ids`, so TA_ERR_TOO_LONG
 * is returned when a piece's bytes do not fit the room left; cap >= n always suffices. */
ta_status ta_tokenize(const uint8_t *text, size_t n, uint16_t *ids, size_t cap, size_t *n_ids);

/* The bytes of token `id` (0 <= id < vocab) and their count. */
const uint8_t *ta_token_bytes(int32_t id, size_t *len);

/* The id of a single-byte token ('[' , ']', '\n', ...). */
uint16_t ta_byte_token(uint8_t byte);

#endif /* TA_TOKENIZER_H */
