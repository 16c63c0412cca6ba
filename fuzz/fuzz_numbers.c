/* libFuzzer target: ta_text_numbers (number words to digits, in place) on any bytes. Checks: the
 * result is never longer than the input (the firmware rewrites the console's line in place), bytes
 * that are not ASCII letters, digits or the spaces and hyphens inside a number come through in
 * order, and a rewritten line stays as it is when rewritten again. The copy on the heap has no slack,
 * so an access past n is caught. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ta_text.h"

static int kept(uint8_t c)
{
    return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' || c == '-');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *text = malloc(size > 0 ? size : 1);
    memcpy(text, data, size);
    size_t n = ta_text_numbers(text, size);
    if (n > size) {
        abort();
    }
    size_t j = 0; /* every other byte of the input appears in the output, in order */
    for (size_t i = 0; i < size; i++) {
        if (kept(data[i])) {
            while (j < n && text[j] != data[i]) {
                j++;
            }
            if (j == n) {
                abort();
            }
            j++;
        }
    }
    uint8_t *again = malloc(n > 0 ? n : 1);
    memcpy(again, text, n);
    if (ta_text_numbers(again, n) != n || memcmp(again, text, n) != 0) {
        abort(); /* not idempotent */
    }
    free(again);
    free(text);
    return 0;
}
