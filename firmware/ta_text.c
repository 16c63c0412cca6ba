/* Text helpers (see ta_text.h). */
#include "ta_text.h"

int ta_text_match(const char *word, const uint8_t *text, size_t n, int prefix)
{
    size_t i = 0;
    while (i < n && word[i] != '\0' && (uint8_t)word[i] == text[i]) {
        i++;
    }
    return i == n && (prefix || word[i] == '\0');
}

int ta_text_digits(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return 0;
        }
    }
    return 1;
}

int64_t ta_text_value(const uint8_t *p, size_t n)
{
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v * 10 + (p[i] - '0');
        if (v > INT32_MAX) {
            return -1;
        }
    }
    return v;
}

size_t ta_text_u64(char *out, uint64_t v)
{
    char rev[TA_TEXT_U64_MAX];
    size_t k = 0;
    do {
        rev[k++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    for (size_t i = 0; i < k; i++) {
        out[i] = rev[k - 1 - i];
    }
    return k;
}

void ta_cat(char *dst, size_t cap, const char *s)
{
    size_t n = 0;
    while (n < cap && dst[n] != '\0') {
        n++;
    }
    while (*s != '\0' && n + 1 < cap) {
        dst[n++] = *s++;
    }
    if (n < cap) {
        dst[n] = '\0';
    }
}

void ta_cat_i32(char *dst, size_t cap, int32_t v)
{
    char buf[1 + TA_TEXT_U64_MAX + 1];
    size_t k = 0;
    if (v < 0) {
        buf[k++] = '-';
    }
    k += ta_text_u64(buf + k, v < 0 ? 0u - (uint32_t)v : (uint32_t)v);
    buf[k] = '\0';
    ta_cat(dst, cap, buf);
}
