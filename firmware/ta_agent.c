/* The agent loop: run_turn and Conversation of conversation.py, in C (the call grammar is ta_grammar.c). */
#include "ta_agent.h"

#include "ta_output.h"
#include "ta_engine.h"
#include "ta_hal.h"
#include "ta_model.h"
#include "ta_tokenizer.h"

/* ---- what a turn costs (ta_turn_stats) ---------------------------------------------------------------- */

static ta_turn_stats stats;
static uint32_t turn_t0;
static int turn_output; /* 1 once the turn printed a byte */

const ta_turn_stats *ta_agent_stats(void)
{
    return &stats;
}

/* ModelConfig.macs_per_token at position pos, the head (vocab x dim) only if with_head. */
static uint32_t macs_at(int32_t pos, int with_head)
{
    const ta_model *m = &ta_model_data;
    const uint32_t d = (uint32_t)m->dim, a = (uint32_t)(m->n_heads * m->head_dim);
    const uint32_t kv = (uint32_t)(m->n_kv_heads * m->head_dim), f = (uint32_t)m->ffn_dim;
    const uint32_t layer = 2u * d * a + 2u * d * kv + 2u * d * f + 2u * (uint32_t)(pos + 1) * a;
    return (uint32_t)m->n_layers * layer + (with_head ? (uint32_t)m->vocab * d : 0u);
}

/* Before the turn's first output byte: how long it took to get there. */
static void mark_output(void)
{
    if (!turn_output) {
        turn_output = 1;
        stats.first_cycles = ta_hal_cycles() - turn_t0;
    }
}

/* ta_engine_feed, counted as fed: n tokens at positions pos.. */
static const int32_t *feed_block(const uint16_t *tokens, int32_t n, int32_t pos)
{
    const uint32_t t = ta_hal_cycles();
    const int32_t *logits = ta_engine_feed(tokens, n, pos);
    stats.fed_cycles += ta_hal_cycles() - t;
    stats.fed += (uint32_t)n;
    for (int32_t i = 0; i < n; i++) {
        stats.fed_macs += macs_at(pos + i, i == n - 1);
    }
    return logits;
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

/* conversation.choose: the allowed token with the largest logit, the lowest index among equals. Only a token
 * that beats the best so far is checked, so the (costlier) grammar runs for few tokens. */
static int32_t choose(decoder *dc, const int32_t *logits, int can_open)
{
    /* conversation.top_margin: the unconstrained argmax (lowest index among equals) and its lead */
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
    dc->lead = lead > INT32_MAX ? INT32_MAX : (int32_t)lead; /* conversation.top_margin clamps the same way */
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

/* The parsed call as it is printed: its fields joined by spaces, durations in seconds. */
static void cat_call(char *dst, size_t cap, const ta_call *c)
{
    const char *p = c->text;
    for (int32_t k = 0; k <= c->n_args; k++) {
        if (k > 0) {
            ta_cat(dst, cap, " ");
        }
        ta_cat(dst, cap, p);
        while (*p != '\0') {
            p++;
        }
        p++;
    }
}

/* conversation.range_text: the answer when the grammar overruled the model inside field f of a write call. */
static void cat_range(char *dst, size_t cap, const ta_field *f)
{
    ta_cat(dst, cap, "Not done: ");
    ta_cat(dst, cap, f->name);
    if (f->kind == TA_FIELD_ENUM) {
        ta_cat(dst, cap, " must be one of ");
        for (int32_t w = 0; w < f->n_words; w++) {
            if (w > 0) {
                ta_cat(dst, cap, ", ");
            }
            ta_cat(dst, cap, f->words[w]);
        }
        ta_cat(dst, cap, ".");
        return;
    }
    ta_cat(dst, cap, " must be ");
    ta_cat_i32(dst, cap, f->lo);
    ta_cat(dst, cap, " to ");
    ta_cat_i32(dst, cap, f->hi);
    ta_cat(dst, cap, f->kind == TA_FIELD_DUR ? " seconds." : ".");
}

/* Its own frame, off the engine's deeper path (the stack plan adds the deepest one). */
#if defined(__GNUC__)
#define TA_NOINLINE __attribute__((noinline))
#else
#define TA_NOINLINE
#endif

/* "[call] -> result" */
static TA_NOINLINE void put_ran(const ta_call *c, const char *result)
{
    char shown[TA_CALL_MAX + 1];
    shown[0] = '\0';
    cat_call(shown, sizeof shown, c);
    mark_output();
    ta_put("[");
    ta_put(shown);
    ta_put("] -> ");
    ta_put(result);
    ta_put("\n");
    ta_flush();
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

/* the words that name a tool are checked against this build's buffer (ta_text_names) */
typedef char ta_name_max_matches[TA_NAME_MAX == TA_TEXT_NAME_MAX ? 1 : -1];

/* ---- the conversation (conversation.Conversation) ---------------------------------------------------- */

/* A kept turn has at least two tokens (its request's '\n' and one chosen token: a request leaves
 * reply_reserve > 0 tokens free), so a full context holds at most ctx / 2 turns. */
#define TURNS_MAX (TA_MODEL_CTX / 2 + 1)

static struct {
    uint16_t ids[TA_MODEL_CTX];  /* (ctx,) the token ids in the context */
    uint16_t starts[TURNS_MAX];  /* (n_turns,) the index of each whole turn's first token */
    int32_t n;                   /* tokens in the context */
    int32_t fed;                 /* ids[0..fed) are in the KV cache; ids[fed..n): pending, the last
                                  * answer's '\n' (after a refusal, the line said and its '\n') */
    int32_t n_turns;
} conv;

/* The tools that ran in the last turn that ran a call (conversation.Conversation.recent), as bits. */
static uint32_t recent;

/* The gate's open question (conversation.Conversation.asked): how to resume the refused turn when the
 * next request confirms it. The call's tokens ('[' to ']'); the turn's first token and its '[' stay
 * in conv.ids (after a roll back, past conv.n: nothing writes there before the next request). */
static struct {
    int active;
    int32_t start, open, n;
    uint16_t ids[TA_CALL_MAX + 2]; /* each token of a call adds at least one byte of its text */
} asked;

void ta_agent_new(void)
{
    asked.active = 0;
    recent = 0;
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
    const uint32_t t = ta_hal_cycles();
    const int32_t *logits = ta_engine_step(tok, conv.n);
    stats.chosen_cycles += ta_hal_cycles() - t;
    stats.chosen++;
    stats.chosen_macs += macs_at(conv.n, 1);
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

/* The gate refuses a write call: its line is said, and nothing more is decoded. The call's tokens
 * are taken back to `kept`, the end of the last call of the turn that ran; if none ran the turn
 * leaves no trace (roll_back), else the line said stays as the turn's answer, pending (fed with the
 * next turn), cut where the context ends. */
static TA_NOINLINE void refuse(const ta_call *call, const ta_field *overruled, int32_t start, int32_t kept,
                               int32_t open, int n_calls, uint16_t *ids, size_t cap)
{
    char said[TA_SAID_MAX + 1];
    said[0] = '\0';
    if (overruled != 0) {
        cat_range(said, sizeof said, overruled);
    } else {
        ta_cat(said, sizeof said, "Sorry, I'm not sure what you want: did you mean [");
        cat_call(said, sizeof said, call);
        /* earlier calls of the turn, printed above, did run */
        ta_cat(said, sizeof said, "]? I did not run it. Say yes to run it.");
        asked.active = 1; /* a question: a confirmation next resumes the turn from here */
        asked.start = start;
        asked.open = open;
        asked.n = conv.n - open;
        for (int32_t i = 0; i < asked.n; i++) {
            asked.ids[i] = conv.ids[open + i];
        }
    }
    mark_output();
    ta_put(said);
    ta_put("\n");
    if (n_calls == 0) {
        roll_back(start);
        return;
    }
    conv.n = kept;
    conv.fed = kept;
    size_t n_ids = 0, len = 0; /* tokenized into ids, the request's scratch (free by now) */
    while (said[len] != '\0') {
        len++;
    }
    if (ta_tokenize((const uint8_t *)said, len, ids, cap, &n_ids) != TA_OK) {
        n_ids = 0; /* cannot happen: a byte is a token, and cap > TA_SAID_MAX (ta_agent_turn) */
    }
    const int32_t ctx = ta_model_data.ctx;
    for (size_t i = 0; i < n_ids && conv.n < ctx - 1; i++) {
        conv.ids[conv.n++] = ids[i];
    }
    conv.ids[conv.n++] = ta_byte_token('\n');
}

/* conversation.is_confirmation: ASCII letters lower-cased, in words split by ' ' ',' '.' '!', one of
 * conversation.CONFIRMATIONS; any other byte: not one. */
static int is_confirmation(const uint8_t *s, size_t n)
{
    static const char *const yes[] = {"yes", "y", "yeah", "yep", "yup", "sure", "yes please", "please do",
                                      "do it", "yes do it", "go ahead", "confirm"};
    char words[16]; /* the longest confirmation is 10 bytes */
    size_t len = 0;
    int gap = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c >= 'A' && c <= 'Z') {
            c = (uint8_t)(c - 'A' + 'a');
        }
        if (c >= 'a' && c <= 'z') {
            if (gap && len > 0) {
                if (len + 1 >= sizeof words) {
                    return 0;
                }
                words[len++] = ' ';
            }
            gap = 0;
            if (len + 1 >= sizeof words) {
                return 0;
            }
            words[len++] = (char)c;
        } else if (c == ' ' || c == ',' || c == '.' || c == '!') {
            gap = 1;
        } else {
            return 0;
        }
    }
    for (size_t k = 0; k < sizeof yes / sizeof yes[0]; k++) {
        size_t j = 0;
        while (j < len && yes[k][j] == words[j]) {
            j++;
        }
        if (j == len && yes[k][j] == '\0') {
            return 1;
        }
    }
    return 0;
}

/* The confirmed call's turn, as it was when its ']' was fed: the refused turn back in the context
 * (without the line said, if a call of it ran and it stayed), the call's tokens after its '['. */
static const int32_t *resume(void)
{
    if (conv.n_turns > 0 && conv.starts[conv.n_turns - 1] == asked.start) {
        conv.n = asked.open; /* it stayed: the line said goes */
    } else {
        conv.starts[conv.n_turns++] = (uint16_t)asked.start;
        conv.n = asked.open; /* the request's tokens are still there, past the rolled-back end */
    }
    for (int32_t i = 0; i < asked.n; i++) {
        conv.ids[conv.n++] = asked.ids[i];
    }
    if (conv.fed > asked.open) {
        conv.fed = asked.open;
    }
    const int32_t *logits = feed_block(conv.ids + conv.fed, conv.n - conv.fed, conv.fed);
    conv.fed = conv.n;
    return logits;
}

/* The request's tokens appended as a new turn (the oldest dropped if it would not fit) and fed with
 * what was pending; TA_ERR_TOO_LONG, printed, and nothing changed if it leaves no room to reply. */
static ta_status prompt_turn(uint8_t *request, size_t *request_n, uint16_t *ids, size_t cap, int32_t limit,
                             const int32_t **logits)
{
    size_t n_ids = 0;
    const size_t n = *request_n = ta_text_numbers(request, *request_n);
    ta_status st = cap > 0 ? ta_tokenize(request, n, ids, cap - 1, &n_ids) : TA_ERR_TOO_LONG;
    if (st == TA_OK) {
        ids[n_ids++] = ta_byte_token('\n');
    }
    if (st != TA_OK || n_ids > (size_t)(limit > 0 ? limit : 0)) {
        mark_output();
        ta_put("error: request is too long (");
        ta_put_u32((uint32_t)n_ids);
        ta_put(" tokens; at most ");
        ta_put_i32(limit);
        ta_put(" fit)\n");
        return TA_ERR_TOO_LONG;
    }
    make_room((int32_t)n_ids);
    conv.starts[conv.n_turns++] = (uint16_t)conv.n;
    for (size_t i = 0; i < n_ids; i++) {
        conv.ids[conv.n++] = ids[i];
    }
    /* the last turn's pending '\n', then the prompt (or, after a drop, all that was kept): one batched
     * prefill, bit-exact with feeding them one at a time */
    *logits = feed_block(conv.ids + conv.fed, conv.n - conv.fed, conv.fed);
    conv.fed = conv.n;
    return TA_OK;
}

static ta_status turn(uint8_t *request, size_t n, uint16_t *ids, size_t cap)
{
    const ta_agent_def *ag = &ta_agent_data;
    const int32_t ctx = ta_model_data.ctx;
    decoder dc;
    dc.open = ta_byte_token('[');
    dc.close = ta_byte_token(']');
    dc.newline = ta_byte_token('\n');
    dc.call_len = 0;
    dc.in_call = 0;
    dc.margin = 0;
    dc.overruled = -1;

    const int confirm = asked.active && is_confirmation(request, n);
    asked.active = 0; /* any other request forgets the question */
    int32_t start, kept; /* kept: the context's end after the last call that ran (its result fed) */
    const int32_t *logits;
    int confirmed = 0; /* 1: the call whose ']' was just fed runs first, without the gate */
    if (confirm) {
        start = asked.start;
        kept = asked.open;
        logits = resume();
        for (int32_t i = 1; i + 1 < asked.n; i++) { /* the call's text, between '[' and ']' */
            size_t tn;
            const uint8_t *tb = ta_token_bytes(asked.ids[i], &tn);
            for (size_t b = 0; b < tn; b++) {
                dc.call[dc.call_len++] = tb[b];
            }
        }
        dc.in_call = 1;
        confirmed = 1;
    } else {
        const ta_status too_long = prompt_turn(request, &n, ids, cap, ctx - ag->reply_reserve, &logits);
        if (too_long != TA_OK) {
            return too_long;
        }
        start = kept = conv.starts[conv.n_turns - 1];
    }
    ta_status st = TA_OK;
    int line_start = 1, n_calls = 0;
    uint32_t ran = 0; /* the tools that ran in this turn */
    int32_t open = conv.n; /* where the call being decoded starts: its '[' */
    char result[TA_RESULT_MAX + 1];
    uint16_t result_ids[TA_RESULT_MAX + 1];
    while (confirmed || conv.n < ctx) { /* a full context ends the turn; it stays in the conversation */
        int32_t tok = dc.close; /* confirmed: its ']' is fed already */
        if (!confirmed) {
            tok = choose(&dc, logits, line_start && n_calls < ag->max_calls);
            if (tok < 0) {
                roll_back(start);
                st = TA_ERR_NO_TOKEN; /* cannot happen with a valid grammar: ']' or a byte always fits */
                break;
            }
            if (dc.in_call) { /* conversation: the call's confidence, and where the grammar overruled */
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
                open = conv.n;
            }
            if (!dc.in_call && tok == dc.newline) {
                conv.ids[conv.n++] = (uint16_t)tok; /* the end of the answer: pending, the next turn feeds it */
                break;
            }
            logits = feed((uint16_t)tok);
        }
        size_t tn;
        const uint8_t *tb = ta_token_bytes(tok, &tn);
        if (dc.in_call && tok == dc.close) {
            ta_call call;
            ta_call_parse(dc.call, dc.call_len, &call);
            const ta_tool_def *tool = &ag->tools[call.tool];
            if (!confirmed && tool->acts && ag->min_margin >= 0 &&
                (dc.overruled >= 0 || dc.margin < ag->min_margin ||
                 !(((recent >> call.tool) & 1u && !ta_text_ack(request, n)) ||
                   ta_text_names(request, n, tool->names, tool->n_names, tool->units)))) {
                const int range = dc.overruled >= 1 && tool->fields[dc.overruled - 1].kind != TA_FIELD_LIT;
                refuse(&call, range ? &tool->fields[dc.overruled - 1] : 0, start, kept, open, n_calls, ids, cap);
                if (ran != 0) {
                    recent = ran;
                }
                return st; /* nothing runs, nothing more is decoded */
            }
            confirmed = 0;
            ran |= 1u << call.tool;
            run_tool(&call, result, sizeof result);
            n_calls++;
            put_ran(&call, result);
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
                logits = feed_block(conv.ids + conv.fed, fit, conv.fed);
                conv.fed = conv.n;
            }
            kept = conv.n;
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
            mark_output();
            ta_put_bytes(tb, tn);
            ta_flush();
        }
    }
    if (ran != 0) {
        recent = ran;
    }
    mark_output();
    ta_put("\n");
    return st;
}

ta_status ta_agent_turn(uint8_t *request, size_t n, uint16_t *ids, size_t cap)
{
    const ta_turn_stats none = {0, 0, 0, 0, 0, 0, 0, 0};
    stats = none;
    turn_output = 0;
    turn_t0 = ta_hal_cycles();
    const ta_status st = turn(request, n, ids, cap);
    stats.cycles = ta_hal_cycles() - turn_t0;
    return st;
}
