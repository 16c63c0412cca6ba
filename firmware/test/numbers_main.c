/* Test program for ta_text_numbers (tests/test_numbers.py): each input line is a line of text in
 * hex; each output line is the same line after number words are written as digits, in hex. */
#include <stdio.h>
#include <string.h>

#include "ta_text.h"

#define MAX_BYTES 4096

static char hex_in[2 * MAX_BYTES + 2];
static uint8_t text[MAX_BYTES];

static int nibble(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int main(void)
{
    while (fgets(hex_in, sizeof hex_in, stdin)) {
        size_t h = strcspn(hex_in, "\r\n"), n = 0;
        for (size_t i = 0; i + 1 < h && n < MAX_BYTES; i += 2) {
            text[n++] = (uint8_t)(nibble(hex_in[i]) * 16 + nibble(hex_in[i + 1]));
        }
        size_t m = ta_text_numbers(text, n);
        for (size_t i = 0; i < m; i++) {
            printf("%02x", text[i]);
        }
        printf("\n");
        fflush(stdout);
    }
    return 0;
}
