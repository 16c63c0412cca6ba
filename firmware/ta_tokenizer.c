/* BPE encoding in place: each piece's byte tokens are written to the output, then merged there. */
#include "ta_tokenizer.h"

#define NO_MERGE 0xFFFFFFFFu

static int is_split_byte(const ta_vocab *v, uint8_t b)
{
    return v->split[b >> 3] >> (b & 7) & 1;
}

/* Index of the merge of (left, right) in the sorted tables, or -1. */
static int32_t find_merge(const ta_vocab *v, uint16_t left, uint16_t right)
{
    uint32_t key = (uint32_t)left << 16 | right;
    int32_t lo = 0, hi = v->n_merges - 1;
    while (lo <= hi) {
        int32_t mid = lo + (hi - lo) / 2;
        uint32_t k = v->merge_keys[mid];
        if (k == key) {
            return mid;
        }
        if (k < key) {
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return -1;
}

/* Merges ids[0..len) in place; returns the new length. */
static size_t merge_piece(const ta_vocab *v, uint16_t *ids, size_t len)
{
    while (len > 1) {
        uint32_t best_rank = NO_MERGE;
        size_t best_i = 0;
        uint16_t best_id = 0;
        for (size_t i = 0; i + 1 < len; i++) {
            int32_t k = find_merge(v, ids[i], ids[i + 1]);
            if (k >= 0 && v->merge_rank[k] < best_rank) { /* strict: the leftmost wins a tie */
                best_rank = v->merge_rank[k];
                best_i = i;
                best_id = v->merge_id[k];
            }
        }
        if (best_rank == NO_MERGE) {
            break;
        }
        ids[best_i] = best_id;
        for (size_t i = best_i + 1; i + 1 < len; i++) {
            ids[i] = ids[i + 1];
        }
        len--;
    }
    return len;
}

ta_status ta_tokenize(const uint8_t *text, size_t n, uint16_t *ids, size_t cap, size_t *n_ids)
{
    const ta_vocab *v = &ta_vocab_data;
    size_t out = 0, i = 0;
    *n_ids = 0;
    while (i < n) {
        size_t end = i + 1;
        if (!is_split_byte(v, text[i])) {
            while (end < n && !is_split_byte(v, text[end])) {
                end++;
            }
        }
        if (out + (end - i) > cap) { /* the piece's byte tokens must fit before merging */
            return TA_ERR_TOO_LONG;
        }
        for (size_t j = i; j < end; j++) {
            ids[out + j - i] = v->byte_to_id[text[j]];
        }
        out += merge_piece(v, ids + out, end - i);
        i = end;
    }
    *n_ids = out;
    return TA_OK;
}

const uint8_t *ta_token_bytes(int32_t id, size_t *len)
{
    const ta_vocab *v = &ta_vocab_data;
    *len = v->token_offsets[id + 1] - v->token_offsets[id];
    return v->token_bytes + v->token_offsets[id];
}

uint16_t ta_byte_token(uint8_t byte)
{
    return ta_vocab_data.byte_to_id[byte];
}
