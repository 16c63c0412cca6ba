/* libFuzzer target: ta_tokenize on any bytes. Checks what must hold for every input: the tokens'
 * bytes concatenate back to the input, every id is in the vocabulary, a piece never straddles
 * '\n' '[' ']', and a too-small capacity gives TA_ERR_TOO_LONG rather than a write past it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ta_tokenizer.h"

#define MAX_IN 1024

static uint16_t ids[MAX_IN];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_IN) {
        return 0;
    }
    size_t n_ids = 0;
    if (ta_tokenize(data, size, ids, size, &n_ids) != TA_OK || n_ids > size) {
        abort(); /* cap >= n always suffices */
    }
    size_t at = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] >= ta_vocab_data.vocab) {
            abort();
        }
        size_t len;
        const uint8_t *b = ta_token_bytes(ids[i], &len);
        if (len == 0 || at + len > size || memcmp(b, data + at, len) != 0) {
            abort(); /* the ids do not spell the input */
        }
        for (size_t k = 0; len > 1 && k < len; k++) {
            if (b[k] == '\n' || b[k] == '[' || b[k] == ']') {
                abort(); /* split bytes are pieces of their own */
            }
        }
        at += len;
    }
    if (at != size) {
        abort();
    }
    /* a capacity one short of the bytes: either it fits after merging, or TOO_LONG; never an overrun
     * (the heap copy puts ASan's redzone right after the last id) */
    if (size > 0) {
        size_t cap = size - 1;
        uint16_t *small = malloc((cap > 0 ? cap : 1) * sizeof *small);
        size_t m = 0;
        ta_status st = ta_tokenize(data, size, small, cap, &m);
        if (st == TA_OK && (m > cap || m != n_ids || memcmp(small, ids, m * sizeof *small) != 0)) {
            abort();
        }
        if (st != TA_OK && st != TA_ERR_TOO_LONG) {
            abort();
        }
        free(small);
    }
    return 0;
}
