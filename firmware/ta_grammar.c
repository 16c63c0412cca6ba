/* The tool-call grammar: grammar.Grammar of grammar.py (viable, complete, parse), in C, over the
 * generated tool table (ta_tools.c). */
#include "ta_grammar.h"

#include "ta_text.h"

/* ---- integers ------------------------------------------------------------------------------- */

/* Some integer in lo..hi has the decimal text p as a prefix (grammar._int_prefix_viable). */
static int int_prefix_viable(const uint8_t *p, size_t n, int32_t lo, int32_t hi)
{
    if (n == 0) {
        return 1;
    }
    if (!ta_text_digits(p, n) || (p[0] == '0' && n > 1)) {
        return 0;
    }
    if (n == 1 && p[0] == '0') {
        return lo <= 0;
    }
    int64_t v = ta_text_value(p, n);
    if (v < 0) {
        return 0; /* more than any int32 hi */
    }
    /* some integer in [v * 10^k, (v+1) * 10^k - 1] lies within [lo, hi]; v <= hi keeps it in int64 */
    for (int64_t scale = 1; v * scale <= hi; scale *= 10) {
        if ((v + 1) * scale - 1 >= lo) {
            return 1;
        }
    }
    return 0;
}

static int int_complete(const uint8_t *p, size_t n, int32_t lo, int32_t hi)
{
    if (n == 0 || !ta_text_digits(p, n) || (p[0] == '0' && n > 1)) {
        return 0;
    }
    int64_t v = ta_text_value(p, n);
    return v >= 0 && v >= lo && v <= hi;
}

/* ---- durations: "1h30m" (grammar._dur_scan / _dur_viable / _dur_complete) ---------------------- */

typedef struct {
    int64_t total; /* seconds of the finished parts */
    int64_t v;     /* the open part's number, 0 if none */
    int nxt;       /* index of the next unit allowed: 0 h, 1 m, 2 s, 3 none */
} dur_state;

static const int32_t dur_factor[3] = {3600, 60, 1};

static int dur_unit(uint8_t c)
{
    return c == 'h' ? 0 : c == 'm' ? 1 : c == 's' ? 2 : -1;
}

static int dur_scan(const uint8_t *p, size_t n, dur_state *st)
{
    st->total = 0;
    st->v = 0;
    st->nxt = 0;
    int open = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= '0' && p[i] <= '9') {
            if (!open && p[i] == '0') {
                return 0;
            }
            st->v = st->v * 10 + (p[i] - '0');
            open = 1;
            if (st->v > INT32_MAX) {
                return 0;
            }
            continue;
        }
        int u = dur_unit(p[i]);
        if (u < 0 || !open || u < st->nxt) {
            return 0;
        }
        st->total += st->v * dur_factor[u];
        st->v = 0;
        open = 0;
        st->nxt = u + 1;
        if (st->total > INT32_MAX) {
            return 0;
        }
    }
    return 1;
}

/* int_prefix_viable for a number already read (v >= 1, no leading zero) over [lo, hi] in int64. */
static int number_prefix_viable(int64_t v, int64_t lo, int64_t hi)
{
    for (int64_t scale = 1; v * scale <= hi; scale *= 10) {
        if ((v + 1) * scale - 1 >= lo) {
            return 1;
        }
    }
    return 0;
}

static int dur_viable(const uint8_t *p, size_t n, int32_t lo, int32_t hi)
{
    dur_state st;
    if (!dur_scan(p, n, &st) || st.total > hi) {
        return 0;
    }
    if (st.v == 0) {
        return lo <= st.total || (st.nxt <= 2 && st.total < hi);
    }
    for (int i = st.nxt; i < 3; i++) {
        if (i < 2 && st.total + st.v * dur_factor[i] <= hi) {
            return 1;
        }
        if (i == 2) {
            int64_t from = (int64_t)lo - st.total;
            if (number_prefix_viable(st.v, from > 1 ? from : 1, (int64_t)hi - st.total)) {
                return 1;
            }
        }
    }
    return 0;
}

static int dur_complete(const uint8_t *p, size_t n, int32_t lo, int32_t hi, int64_t *seconds)
{
    dur_state st;
    if (n == 0 || !dur_scan(p, n, &st) || st.v != 0 || st.total < lo || st.total > hi) {
        return 0;
    }
    if (seconds) {
        *seconds = st.total;
    }
    return 1;
}

static int field_ok(int32_t kind, const char *const *words, int32_t n_words, int32_t lo, int32_t hi,
                    const uint8_t *part, size_t n, int partial)
{
    if (kind == TA_FIELD_INT) {
        return partial ? int_prefix_viable(part, n, lo, hi) : int_complete(part, n, lo, hi);
    }
    if (kind == TA_FIELD_DUR) {
        return partial ? dur_viable(part, n, lo, hi) : dur_complete(part, n, lo, hi, 0);
    }
    for (int32_t i = 0; i < n_words; i++) {
        if (ta_text_match(words[i], part, n, partial)) {
            return 1;
        }
    }
    return 0;
}

/* grammar.Grammar._match: text split at every ' ' must match the tool's name and fields. */
static int match(const ta_tool_def *t, const uint8_t *text, size_t n, int partial)
{
    size_t n_parts = 1;
    for (size_t i = 0; i < n; i++) {
        n_parts += text[i] == ' ';
    }
    size_t n_fields = 1 + (size_t)t->n_fields;
    if (n_parts > n_fields || (!partial && n_parts != n_fields)) {
        return 0;
    }
    size_t start = 0;
    for (size_t k = 0; k < n_parts; k++) {
        size_t end = start;
        while (end < n && text[end] != ' ') {
            end++;
        }
        int last = k + 1 == n_parts;
        int ok;
        if (k == 0) {
            ok = field_ok(TA_FIELD_LIT, &t->name, 1, 0, 0, text, end, partial && last);
        } else {
            const ta_field *f = &t->fields[k - 1];
            ok = field_ok(f->kind, f->words, f->n_words, f->lo, f->hi, text + start, end - start, partial && last);
        }
        if (!ok) {
            return 0;
        }
        start = end + 1;
    }
    return 1;
}

int ta_call_viable(const uint8_t *text, size_t n)
{
    const ta_agent_def *ag = &ta_agent_data;
    if (n > (size_t)ag->max_call_len) {
        return 0;
    }
    for (int32_t i = 0; i < ag->n_tools; i++) {
        if (match(&ag->tools[i], text, n, 1)) {
            return 1;
        }
    }
    return 0;
}

int ta_call_complete(const uint8_t *text, size_t n)
{
    const ta_agent_def *ag = &ta_agent_data;
    for (int32_t i = 0; i < ag->n_tools; i++) {
        if (match(&ag->tools[i], text, n, 0)) {
            return 1;
        }
    }
    return 0;
}

/* ---- parsing ---------------------------------------------------------------------------------- */

/* Splits the complete call text into a ta_call (fields, parsed arguments); a duration's text becomes
 * its seconds (grammar.Grammar.parse), so handlers and the printed call see "5400". */
void ta_call_parse(const uint8_t *text, size_t n, ta_call *c)
{
    const ta_agent_def *ag = &ta_agent_data;
    c->tool = 0;
    for (int32_t i = 0; i < ag->n_tools; i++) {
        if (match(&ag->tools[i], text, n, 0)) {
            c->tool = i;
            break;
        }
    }
    const ta_tool_def *t = &ag->tools[c->tool];
    size_t at = 0, start = 0;
    for (int32_t k = 0; k <= t->n_fields; k++) {
        size_t end = start;
        while (end < n && text[end] != ' ') {
            end++;
        }
        int64_t seconds = 0;
        if (k > 0 && t->fields[k - 1].kind == TA_FIELD_DUR &&
            dur_complete(text + start, end - start, t->fields[k - 1].lo, t->fields[k - 1].hi, &seconds)) {
            char digits[TA_TEXT_U64_MAX];
            size_t k = ta_text_u64(digits, (uint64_t)seconds); /* the generator checked it fits */
            for (size_t i = 0; i < k && at < TA_CALL_MAX; i++) {
                c->text[at++] = digits[i];
            }
        } else {
            for (size_t i = start; i < end && at < TA_CALL_MAX; i++) {
                c->text[at++] = (char)text[i];
            }
        }
        if (at <= TA_CALL_MAX) {
            c->text[at++] = '\0';
        }
        start = end + 1;
    }
    const char *p = c->text;
    c->n_args = t->n_fields;
    for (int32_t k = 0; k < t->n_fields; k++) {
        while (*p != '\0') { /* skip the previous field */
            p++;
        }
        p++;
        const ta_field *f = &t->fields[k];
        size_t len = 0;
        while (p[len] != '\0') {
            len++;
        }
        c->word[k] = p;
        c->arg[k] = 0;
        if (f->kind == TA_FIELD_INT || f->kind == TA_FIELD_DUR) {
            c->arg[k] = (int32_t)ta_text_value((const uint8_t *)p, len);
        } else if (f->kind == TA_FIELD_ENUM) {
            for (int32_t w = 0; w < f->n_words; w++) {
                if (ta_text_match(f->words[w], (const uint8_t *)p, len, 0)) {
                    c->arg[k] = w;
                    break;
                }
            }
        }
    }
}
