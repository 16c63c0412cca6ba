/* The agent loop and the call grammar: run_turn of conversation.py and Grammar of grammar.py, in C. */
#include "ta_agent.h"

#include "ta_console.h"
#include "ta_engine.h"
#include "ta_model.h"
#include "ta_tokenizer.h"

/* ---- the grammar ------------------------------------------------------------------------------- */

static int is_digits(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return 0;
        }
    }
    return 1;
}

/* The value of n digits, or -1 if it exceeds every int32 bound (the caller checked they are digits). */
static int64_t digits_value(const uint8_t *p, size_t n)
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

/* Some integer in lo..hi has the decimal text p as a prefix (grammar._int_prefix_viable). */
static int int_prefix_viable(const uint8_t *p, size_t n, int32_t lo, int32_t hi)
{
    if (n == 0) {
        return 1;
    }
    if (!is_digits(p, n) || (p[0] == '0' && n > 1)) {
        return 0;
    }
    if (n == 1 && p[0] == '0') {
        return lo <= 0;
    }
    int64_t v = digits_value(p, n);
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
    if (n == 0 || !is_digits(p, n) || (p[0] == '0' && n > 1)) {
        return 0;
    }
    int64_t v = digits_value(p, n);
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

static int word_matches(const char *w, const uint8_t *part, size_t n, int partial)
{
    size_t i = 0;
    while (i < n && w[i] != '\0' && (uint8_t)w[i] == part[i]) {
        i++;
    }
    return i == n && (partial || w[i] == '\0');
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
        if (word_matches(words[i], part, n, partial)) {
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

/* ---- result helpers ---------------------------------------------------------------------------- */

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
    char buf[12];
    int i = (int)sizeof buf - 1;
    uint32_t u = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u != 0u);
    if (v < 0) {
        buf[--i] = '-';
    }
    ta_cat(dst, cap, buf + i);
}

/* ---- the turn ---------------------------------------------------------------------------------- */

typedef struct {
    uint16_t open, close, newline;   /* the '[' ']' '\n' byte tokens */
    uint8_t call[TA_CALL_MAX];       /* the call text so far (after '[') */
    size_t call_len;
    int in_call;
    int32_t margin;                  /* the call's confidence so far: its smallest top-1 lead */
    int32_t overruled;               /* -1, or the field (0: the name) where the grammar overruled */
    int32_t best, lead;              /* the last choose(): unconstrained argmax and its lead */
} decoder;

/* A token with none of '[' ']' '\n' in its bytes (conversation.TokenClasses.plain). */
static int is_plain(int32_t t)
{
    size_t n;
    const uint8_t *b = ta_token_bytes(t, &n);
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '[' || b[i] == ']' || b[i] == '\n') {
            return 0;
        }
    }
    return 1;
}

static int allowed_in_call(const decoder *dc, int32_t t)
{
    if (t == dc->close) {
        return ta_call_complete(dc->call, dc->call_len);
    }
    size_t n;
    const uint8_t *b = ta_token_bytes(t, &n);
    if (dc->call_len + n > (size_t)ta_agent_data.max_call_len || !is_plain(t)) {
        return 0;
    }
    uint8_t text[TA_CALL_MAX];
    for (size_t i = 0; i < dc->call_len; i++) {
        text[i] = dc->call[i];
    }
    for (size_t i = 0; i < n; i++) {
        text[dc->call_len + i] = b[i];
    }
    return ta_call_viable(text, dc->call_len + n);
}

/* agent.choose: the allowed token with the largest logit, the lowest index among equals. Only a token
 * that beats the best so far is checked, so the (costlier) grammar runs for few tokens. */
static int32_t choose(decoder *dc, const int32_t *logits, int can_open)
{
    /* agent.top_margin: the unconstrained argmax (lowest index among equals) and its lead */
    int32_t top = 0, second = INT32_MIN;
    for (int32_t t = 1; t < ta_model_data.vocab; t++) {
        if (logits[t] > logits[top]) {
            second = logits[top];
            top = t;
        } else if (logits[t] > second) {
            second = logits[t];
        }
    }
    dc->best = top;
    int64_t lead = ta_model_data.vocab > 1 ? (int64_t)logits[top] - second : 0;
    dc->lead = lead > INT32_MAX ? INT32_MAX : (int32_t)lead; /* agent.top_margin clamps the same way */
    int32_t best = -1;
    for (int32_t t = 0; t < ta_model_data.vocab; t++) {
        if (best >= 0 && logits[t] <= logits[best]) {
            continue;
        }
        int ok = dc->in_call ? allowed_in_call(dc, t) : t != dc->close && (t != dc->open || can_open);
        if (ok) {
            best = t;
        }
    }
    return best;
}

/* Appends the decimal text of v (>= 0) at dst[*at], within cap bytes. */
static void put_decimal(char *dst, size_t *at, size_t cap, int64_t v)
{
    char buf[20];
    int k = 0;
    do {
        buf[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (k > 0 && *at < cap) {
        dst[(*at)++] = buf[--k];
    }
}

/* Splits the complete call text into a ta_call (fields, parsed arguments); a duration's text becomes
 * its seconds (grammar.Grammar.parse), so handlers and the printed call see "5400". */
static void parse_call(const uint8_t *text, size_t n, ta_call *c)
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
            put_decimal(c->text, &at, TA_CALL_MAX, seconds); /* the generator checked it fits */
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
            c->arg[k] = (int32_t)digits_value((const uint8_t *)p, len);
        } else if (f->kind == TA_FIELD_ENUM) {
            for (int32_t w = 0; w < f->n_words; w++) {
                if (word_matches(f->words[w], (const uint8_t *)p, len, 0)) {
                    c->arg[k] = w;
                    break;
                }
            }
        }
    }
}

/* The parsed call as it is printed: its fields joined by spaces, durations in seconds. */
static void put_call(const ta_call *c)
{
    const char *p = c->text;
    for (int32_t k = 0; k <= c->n_args; k++) {
        if (k > 0) {
            ta_put(" ");
        }
        ta_put(p);
        while (*p != '\0') {
            p++;
        }
        p++;
    }
}

/* conversation.range_text: the answer when the grammar overruled the model inside field f of a write call. */
static void put_range(const ta_field *f)
{
    ta_put("Not done: ");
    ta_put(f->name);
    if (f->kind == TA_FIELD_ENUM) {
        ta_put(" must be one of ");
        for (int32_t w = 0; w < f->n_words; w++) {
            if (w > 0) {
                ta_put(", ");
            }
            ta_put(f->words[w]);
        }
        ta_put(".");
        return;
    }
    ta_put(" must be ");
    ta_put_i32(f->lo);
    ta_put(" to ");
    ta_put_i32(f->hi);
    ta_put(f->kind == TA_FIELD_DUR ? " seconds." : ".");
}

static void run_tool(const ta_call *c, char *result, size_t cap)
{
    result[0] = '\0';
    ta_status st = ta_tools_dispatch(c, result, cap);
    if (st != TA_OK && result[0] == '\0') {
        ta_cat(result, cap, "error: ");
        ta_cat(result, cap, ta_status_name(st));
    }
}

/* ---- the conversation (conversation.Conversation) ---------------------------------------------------- */

/* A kept turn has at least two tokens (its request's '\n' and one chosen token: a request leaves
 * reply_reserve > 0 tokens free), so a full context holds at most ctx / 2 turns. */
#define TURNS_MAX (TA_MODEL_CTX / 2 + 1)

static struct {
    uint16_t ids[TA_MODEL_CTX];  /* (ctx,) the token ids in the context */
    uint16_t starts[TURNS_MAX];  /* (n_turns,) the index of each whole turn's first token */
    int32_t n;                   /* tokens in the context */
    int32_t fed;                 /* ids[0..fed) are in the KV cache; ids[fed..n): the pending '\n' */
    int32_t n_turns;
} conv;

void ta_agent_new(void)
{
    conv.n = 0;
    conv.fed = 0;
    conv.n_turns = 0;
}

/* Drops the fewest oldest turns that leave room for a prompt of n_prompt tokens and the reply, and
 * moves the kept tokens to the front: they are fed again from position 0. */
static void make_room(int32_t n_prompt)
{
    const int32_t room = ta_model_data.ctx - ta_agent_data.reply_reserve - n_prompt;
    if (conv.n <= room) {
        return;
    }
    int32_t k = 1;
    while (k < conv.n_turns && conv.n - conv.starts[k] > room) {
        k++;
    }
    const int32_t cut = k < conv.n_turns ? conv.starts[k] : conv.n;
    for (int32_t i = cut; i < conv.n; i++) {
        conv.ids[i - cut] = conv.ids[i];
    }
    for (int32_t t = k; t < conv.n_turns; t++) {
        conv.starts[t - k] = (uint16_t)(conv.starts[t] - cut);
    }
    conv.n -= cut;
    conv.n_turns -= k;
    conv.fed = 0;
    ta_engine_reset();
}

/* Feeds one token at the next position (the context's end) and keeps it. */
static const int32_t *feed(uint16_t tok)
{
    const int32_t *logits = ta_engine_step(tok, conv.n);
    conv.ids[conv.n++] = tok;
    conv.fed = conv.n;
    return logits;
}

/* A refused turn leaves no trace: the context is cut back to where it started. */
static void roll_back(int32_t start)
{
    conv.n = start;
    conv.fed = start;
    conv.n_turns--;
}

ta_status ta_agent_turn(const uint8_t *request, size_t n, uint16_t *ids, size_t cap)
{
    const ta_agent_def *ag = &ta_agent_data;
    const int32_t ctx = ta_model_data.ctx;
    const int32_t limit = ctx - ag->reply_reserve;
    decoder dc;
    dc.open = ta_byte_token('[');
    dc.close = ta_byte_token(']');
    dc.newline = ta_byte_token('\n');
    dc.call_len = 0;
    dc.in_call = 0;
    dc.margin = 0;
    dc.overruled = -1;

    size_t n_ids = 0;
    ta_status st = cap > 0 ? ta_tokenize(request, n, ids, cap - 1, &n_ids) : TA_ERR_TOO_LONG;
    if (st == TA_OK) {
        ids[n_ids++] = dc.newline;
    }
    if (st != TA_OK || n_ids > (size_t)(limit > 0 ? limit : 0)) {
        ta_put("error: request is too long (");
        ta_put_u32((uint32_t)n_ids);
        ta_put(" tokens; at most ");
        ta_put_i32(limit);
        ta_put(" fit)\n");
        return TA_ERR_TOO_LONG;
    }

    make_room((int32_t)n_ids);
    const int32_t start = conv.n;
    conv.starts[conv.n_turns++] = (uint16_t)start;
    for (size_t i = 0; i < n_ids; i++) {
        conv.ids[conv.n++] = ids[i];
    }
    /* the last turn's pending '\n', then the prompt (or, after a drop, all that was kept): one batched
     * prefill, bit-exact with feeding them one at a time */
    const int32_t *logits = ta_engine_feed(conv.ids + conv.fed, conv.n - conv.fed, conv.fed);
    conv.fed = conv.n;
    int line_start = 1, n_calls = 0;
    char result[TA_RESULT_MAX + 1];
    uint16_t result_ids[TA_RESULT_MAX + 1];
    while (conv.n < ctx) { /* a full context ends the turn; it stays in the conversation */
        int32_t tok = choose(&dc, logits, line_start && n_calls < ag->max_calls);
        if (tok < 0) {
            roll_back(start);
            st = TA_ERR_NO_TOKEN; /* cannot happen with a valid grammar: ']' or a byte always fits */
            break;
        }
        if (dc.in_call) { /* conversation.run_turn: the call's confidence, and where the grammar overruled */
            if (dc.lead < dc.margin) {
                dc.margin = dc.lead;
            }
            if (dc.best != tok && dc.overruled < 0) {
                int32_t field = 0;
                for (size_t i = 0; i < dc.call_len; i++) {
                    field += dc.call[i] == ' ';
                }
                dc.overruled = field;
            }
        } else if (tok == dc.open) {
            dc.margin = dc.lead;
            dc.overruled = -1;
        }
        if (!dc.in_call && tok == dc.newline) {
            conv.ids[conv.n++] = (uint16_t)tok; /* the end of the answer: pending, the next turn feeds it */
            break;
        }
        logits = feed((uint16_t)tok);
        size_t tn;
        const uint8_t *tb = ta_token_bytes(tok, &tn);
        if (dc.in_call && tok == dc.close) {
            ta_call call;
            parse_call(dc.call, dc.call_len, &call);
            const ta_tool_def *tool = &ag->tools[call.tool];
            if (tool->acts && ag->min_margin >= 0 && (dc.overruled >= 0 || dc.margin < ag->min_margin)) {
                if (dc.overruled >= 1 && tool->fields[dc.overruled - 1].kind != TA_FIELD_LIT) {
                    put_range(&tool->fields[dc.overruled - 1]);
                } else {
                    ta_put("Sorry, I'm not sure what you want: did you mean [");
                    put_call(&call);
                    ta_put("]? I did nothing.");
                }
                ta_put("\n");
                roll_back(start);
                return st; /* nothing runs, nothing more is decoded */
            }
            run_tool(&call, result, sizeof result);
            n_calls++;
            ta_put("[");
            put_call(&call);
            ta_put("] -> ");
            ta_put(result);
            ta_put("\n");
            ta_flush();
            size_t rn = 0, n_res = 0;
            while (result[rn] != '\0') {
                rn++;
            }
            if (ta_tokenize((const uint8_t *)result, rn, result_ids, TA_RESULT_MAX, &n_res) == TA_OK) {
                result_ids[n_res++] = dc.newline;
            }
            int32_t fit = 0; /* the result is cut where the context ends */
            for (size_t i = 0; i < n_res && conv.n < ctx; i++, fit++) {
                conv.ids[conv.n++] = result_ids[i];
            }
            if (fit > 0) {
                logits = ta_engine_feed(conv.ids + conv.fed, fit, conv.fed);
                conv.fed = conv.n;
            }
            dc.in_call = 0;
            dc.call_len = 0;
            line_start = 1;
        } else if (dc.in_call) {
            for (size_t i = 0; i < tn; i++) { /* fits: allowed_in_call checked max_call_len */
                dc.call[dc.call_len++] = tb[i];
            }
        } else if (tok == dc.open) {
            dc.in_call = 1;
        } else {
            line_start = 0;
            ta_put_bytes(tb, tn);
            ta_flush();
        }
    }
    ta_put("\n");
    return st;
}
