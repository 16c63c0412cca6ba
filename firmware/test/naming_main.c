/* Test program for ta_text_names (tests/test_naming.py). Each input line is
 *     units<TAB>name,name,...<TAB>text in hex
 * and each output line is 1 if the text names the tool, else 0. With units "a" (names ignored) it is
 * ta_text_ack: 1 if the text is a bare acknowledgement. */
#include <stdio.h>
#include <string.h>

#include "ta_text.h"

#define MAX_BYTES 2048
#define MAX_NAMES 64

static char line[2 * MAX_BYTES + 4096];
static uint8_t text[MAX_BYTES];

static int nibble(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int main(void)
{
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *names_field = strchr(line, '\t');
        char *hex = names_field ? strchr(names_field + 1, '\t') : NULL;
        if (!hex) {
            printf("bad line\n");
            return 1;
        }
        *names_field++ = '\0';
        *hex++ = '\0';
        const char *names[MAX_NAMES];
        int32_t n_names = 0;
        for (char *p = names_field; *p != '\0' && n_names < MAX_NAMES;) {
            names[n_names++] = p;
            char *comma = strchr(p, ',');
            if (!comma) {
                break;
            }
            *comma = '\0';
            p = comma + 1;
        }
        size_t n = 0;
        for (size_t i = 0; hex[i] != '\0' && hex[i + 1] != '\0' && n < MAX_BYTES; i += 2) {
            text[n++] = (uint8_t)(nibble(hex[i]) * 16 + nibble(hex[i + 1]));
        }
        printf("%d\n", line[0] == 'a' ? ta_text_ack(text, n) : ta_text_names(text, n, names, n_names, line[0] == '1'));
        fflush(stdout);
    }
    return 0;
}
