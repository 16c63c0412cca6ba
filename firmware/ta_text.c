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

/* ---- number words to digits (agent/numbers.py is the spec) ------------------------------------- */

typedef struct {
    size_t s, e; /* text[s..e) is the word */
} word;

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const units[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                    "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen",
                                    "sixteen", "seventeen", "eighteen", "nineteen"};
static const char *const tens[] = {"twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"};
static const char *const time_units[] = {"second", "seconds", "sec", "secs", "minute", "minutes",
                                         "min", "mins", "hour", "hours", "hr", "hrs"};

static int is_letter(uint8_t c)
{
    c |= 0x20;
    return c >= 'a' && c <= 'z';
}

static int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* The first word at or after `from`: 0 if there is none. */
static int word_from(const uint8_t *t, size_t n, size_t from, word *w)
{
    while (from < n && !is_letter(t[from])) {
        from++;
    }
    if (from >= n) {
        return 0;
    }
    w->s = from;
    while (from < n && is_letter(t[from])) {
        from++;
    }
    w->e = from;
    return 1;
}

static int word_is(const uint8_t *t, word w, const char *lit)
{
    size_t i = 0;
    for (; w.s + i < w.e; i++) {
        if (lit[i] == '\0' || (t[w.s + i] | 0x20) != (uint8_t)lit[i]) {
            return 0;
        }
    }
    return lit[i] == '\0';
}

static int lookup(const uint8_t *t, word w, const char *const *table, int count)
{
    for (int i = 0; i < count; i++) {
        if (word_is(t, w, table[i])) {
            return i;
        }
    }
    return -1;
}

/* Word b follows word a after one space (or, with hyphen, one '-'). */
static int joined(const uint8_t *t, word a, word b, int hyphen)
{
    return b.s == a.e + 1 && (t[a.e] == ' ' || (hyphen && t[a.e] == '-'));
}

/* The word after a, if it follows a after one space: into *b. */
static int next_joined(const uint8_t *t, size_t n, word a, word *b)
{
    return word_from(t, n, a.e, b) && joined(t, a, *b, 0);
}

static int next_is(const uint8_t *t, size_t n, word a, const char *lit, word *b)
{
    return next_joined(t, n, a, b) && word_is(t, *b, lit);
}

static int below_100(const uint8_t *t, size_t n, word w, int32_t *value, word *end)
{
    int u = lookup(t, w, units, COUNT(units));
    if (u >= 0) {
        *value = u;
        *end = w;
        return 1;
    }
    int k = lookup(t, w, tens, COUNT(tens));
    if (k < 0) {
        return 0;
    }
    *value = 20 + 10 * k;
    *end = w;
    word nx;
    if (word_from(t, n, w.e, &nx) && joined(t, w, nx, 1)) {
        u = lookup(t, nx, units, COUNT(units));
        if (u >= 1 && u <= 9) {
            *value += u;
            *end = nx;
        }
    }
    return 1;
}

/* The number below 100 after word a, with or without an "and" between. */
static int with_and(const uint8_t *t, size_t n, word a, int32_t *value, word *end)
{
    word x, y;
    if (next_is(t, n, a, "and", &x)) {
        return next_joined(t, n, x, &y) && below_100(t, n, y, value, end);
    }
    return next_joined(t, n, a, &y) && below_100(t, n, y, value, end);
}

static int below_1000(const uint8_t *t, size_t n, word w, int32_t *value, word *end)
{
    word x;
    if (word_is(t, w, "a") || word_is(t, w, "an")) {
        if (!next_is(t, n, w, "hundred", &x)) {
            return 0;
        }
        *value = 100;
        *end = x;
    } else {
        if (!below_100(t, n, w, value, end)) {
            return 0;
        }
        if (!(*value >= 1 && *value <= 9 && next_is(t, n, *end, "hundred", &x))) {
            return 1;
        }
        *value *= 100;
        *end = x;
    }
    int32_t rest;
    word rest_end;
    if (with_and(t, n, *end, &rest, &rest_end)) {
        *value += rest;
        *end = rest_end;
    }
    return 1;
}

static int number_at(const uint8_t *t, size_t n, word w, int32_t *value, word *end)
{
    word x, y;
    if ((word_is(t, w, "a") || word_is(t, w, "an")) && next_is(t, n, w, "thousand", &x)) {
        *value = 1;
        *end = w;
    } else if (!below_1000(t, n, w, value, end)) {
        return 0;
    }
    if (next_is(t, n, *end, "thousand", &x)) {
        *value *= 1000;
        *end = x;
        if (next_is(t, n, x, "and", &y)) {
            x = y;
        }
        int32_t rest;
        word rest_end;
        if (next_joined(t, n, x, &y) && below_1000(t, n, y, &rest, &rest_end)) {
            *value += rest;
            *end = rest_end;
        }
    }
    return 1;
}

size_t ta_text_numbers(uint8_t *t, size_t n)
{
    size_t o = 0, r = 0; /* bytes written, bytes read: o <= r, and t[r..n) is untouched */
    int after_pin = 0;   /* the word before is "pin", one space before this one */
    word w, prev = {0, 0};
    size_t from = 0;
    while (word_from(t, n, from, &w)) {
        int32_t value;
        word end;
        int found = number_at(t, n, w, &value, &end);
        if (found) {
            word nx;
            if ((w.s > 0 && is_digit(t[w.s - 1])) || (end.e < n && is_digit(t[end.e]))) {
                found = 0;
            } else if (end.s == w.s && word_is(t, w, "one")) {
                int unit_after = next_joined(t, n, w, &nx) && lookup(t, nx, time_units, COUNT(time_units)) >= 0;
                found = unit_after || (after_pin && joined(t, prev, w, 0));
            }
        }
        if (!found) {
            after_pin = word_is(t, w, "pin");
            prev = w;
            from = w.e;
            continue;
        }
        while (r < w.s) {
            t[o++] = t[r++];
        }
        char digits[TA_TEXT_U64_MAX];
        size_t k = ta_text_u64(digits, (uint64_t)value);
        for (size_t i = 0; i < k; i++) {
            t[o++] = (uint8_t)digits[i];
        }
        r = from = end.e;
        after_pin = 0;
    }
    while (r < n) {
        t[o++] = t[r++];
    }
    return o;
}

/* ---- naming (agent/naming.py) ---- */

#define FUZZY_MIN 4 /* naming.FUZZY_MIN */

static int same_bytes(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            return 0;
        }
    }
    return 1;
}

/* naming._typo_of: w is name with one typo after the first letter. */
static int typo_of(const char *w, size_t wn, const char *name, size_t nn)
{
    if (w[0] != name[0] || (wn < nn ? wn : nn) < FUZZY_MIN) {
        return 0;
    }
    const char *a = wn <= nn ? w : name, *b = wn <= nn ? name : w;
    const size_t an = wn <= nn ? wn : nn, bn = wn <= nn ? nn : wn;
    if (bn - an > 1) {
        return 0;
    }
    size_t i = 0;
    while (i < an && a[i] == b[i]) {
        i++;
    }
    if (an == bn) {
        if (i + 1 < an && a[i] == b[i + 1] && a[i + 1] == b[i] && same_bytes(a + i + 2, b + i + 2, an - i - 2)) {
            return 1; /* swapped */
        }
        return an > FUZZY_MIN && (i >= an || same_bytes(a + i + 1, b + i + 1, an - i - 1)); /* changed */
    }
    return an >= FUZZY_MIN + 1 && same_bytes(a + i, b + i + 1, an - i); /* one more letter in b */
}

int ta_text_names(const uint8_t *s, size_t n, const char *const *names, int32_t n_names, int units)
{
    size_t i = 0;
    while (i < n) {
        char word[TA_TEXT_NAME_MAX + 1];
        const size_t begin = i;
        size_t len = 0;
        for (; i < n; i++) {
            uint8_t c = s[i];
            if (c >= 'A' && c <= 'Z') {
                c = (uint8_t)(c - 'A' + 'a');
            }
            if (c < 'a' || c > 'z') {
                break;
            }
            if (len < sizeof word) {
                word[len] = (char)c;
            }
            len++;
        }
        if (len == 0) {
            i++;
            continue;
        }
        if (len <= TA_TEXT_NAME_MAX + 1) { /* longer: one typo from no name */
            for (int32_t k = 0; k < n_names; k++) {
                const char *name = names[k];
                size_t nn = 0;
                while (name[nn] != '\0') {
                    nn++;
                }
                if ((nn == len && same_bytes(word, name, len)) || typo_of(word, len, name, nn)) {
                    return 1;
                }
            }
        }
        if (units && len == 1 && (word[0] == 'h' || word[0] == 'm' || word[0] == 's') && begin > 0 &&
            s[begin - 1] >= '0' && s[begin - 1] <= '9') {
            return 1;
        }
    }
    return 0;
}

/* naming.py ACK_WORDS (sorted): a request of these words alone acknowledges the last turn. */
static const char *const ack_words[] = {"a", "ah", "all", "allright", "alright", "amazing", "and",
                                        "appreciated", "awesome", "brilliant", "bye", "cheers", "cool", "done",
                                        "exactly", "excellent", "fantastic", "fine", "for", "good", "goodbye",
                                        "got", "great", "haha", "hmm", "i", "indeed", "is", "it", "job",
                                        "just", "k", "kk", "lol", "lot", "lovely", "much", "neat", "needed",
                                        "nice", "oh", "ok", "okay", "okey", "perfect", "please", "right", "s",
                                        "so", "super", "sure", "sweet", "thank", "thanks", "that", "the",
                                        "thx", "ty", "very", "was", "well", "what", "wonderful", "work",
                                        "worked", "works", "wow", "yeah", "yep", "yes", "you", "yup"};

int ta_text_ack(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (is_digit(s[i])) {
            return 0;
        }
    }
    word w;
    for (size_t at = 0; word_from(s, n, at, &w); at = w.e) {
        if (lookup(s, w, ack_words, COUNT(ack_words)) < 0) {
            return 0;
        }
    }
    return 1;
}
