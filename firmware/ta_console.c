/* The console: line editing, the '!' protocol, chat turns. Protocol in docs/engine.md. */
#include "ta_console.h"

#include "ta_agent.h"
#include "ta_engine.h"
#include "ta_hal.h"
#include "ta_intmath.h"
#include "ta_output.h"
#include "ta_text.h"
#include "ta_tokenizer.h"

#define KEY_BACKSPACE 0x08
#define KEY_DEL 0x7F
#define KEY_ESC 0x1B

/* ---- input: one line at a time ----------------------------------------------------------------- */

enum { LINE_GONE = -1, LINE_TOO_LONG = -2 };
enum { ESC_NONE, ESC_START, ESC_CSI, ESC_SS3 };

static uint8_t line[TA_LINE_MAX + 1];
static uint16_t ids[TA_LINE_MAX + 1]; /* tokens of one line: never more than its bytes, plus '\n' */
typedef char ta_ids_hold_the_gate_line[TA_LINE_MAX >= TA_SAID_MAX ? 1 : -1]; /* ta_agent_turn's cap */
static int prev_cr;                  /* the last byte ended a line with CR: swallow a following LF */

/* Removes the last character: one UTF-8 sequence, or one stray byte. */
static size_t erase_last(size_t len)
{
    size_t k = len;
    int cont = 0;
    while (k > 0 && cont < 3 && (line[k - 1] & 0xC0) == 0x80) {
        k--;
        cont++;
    }
    if (k > 0 && (cont == 0 || line[k - 1] >= 0xC0)) {
        return k - 1;
    }
    return len > 0 ? len - 1 : 0;
}

/* Reads one line into `line` (without its end). Returns its length, LINE_TOO_LONG (the line was
 * discarded), or LINE_GONE. CR, LF and CRLF end a line; BS and DEL erase; escape sequences (CSI up
 * to its final byte, SS3 and its byte, ESC and one byte) and NUL are ignored. */
static int read_line(void)
{
    size_t len = 0;
    int overflow = 0, esc = ESC_NONE;
    for (;;) {
        ta_flush();
        int c = ta_hal_getc();
        if (c < 0) {
            return LINE_GONE;
        }
        int was_cr = prev_cr;
        prev_cr = 0;
        if (c == '\r' || c == '\n') {
            if (c == '\n' && was_cr) {
                continue;
            }
            prev_cr = c == '\r';
            return overflow ? LINE_TOO_LONG : (int)len;
        }
        if (esc == ESC_START) {
            esc = c == '[' ? ESC_CSI : c == 'O' ? ESC_SS3 : c == KEY_ESC ? ESC_START : ESC_NONE;
            continue;
        }
        if (esc == ESC_CSI) {
            if (c >= 0x20 && c <= 0x3F) {
                continue; /* parameter and intermediate bytes */
            }
            esc = ESC_NONE;
            if (c >= 0x40 && c <= 0x7E) {
                continue; /* final byte */
            }
        } else if (esc == ESC_SS3) {
            esc = ESC_NONE;
            continue;
        }
        if (c == 0) {
            continue;
        }
        if (c == KEY_ESC) {
            esc = ESC_START;
            continue;
        }
        if (c == KEY_BACKSPACE || c == KEY_DEL) {
            len = erase_last(len);
            continue;
        }
        if (len == TA_LINE_MAX) {
            overflow = 1;
            continue;
        }
        line[len++] = (uint8_t)c;
    }
}

/* Strict UTF-8 (as Python decodes it): no overlong forms, no surrogates, nothing above U+10FFFF. */
static int valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            lo = c == 0xE0 ? 0xA0 : 0x80;
            hi = c == 0xED ? 0x9F : 0xBF;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF;
        } else {
            return 0;
        }
        if (n - i <= need || s[i + 1] < lo || s[i + 1] > hi) {
            return 0;
        }
        for (size_t k = 2; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return 0;
            }
        }
        i += need + 1;
    }
    return 1;
}

/* ---- commands ---------------------------------------------------------------------------------- */

static void cmd_info(void)
{
    const ta_model *m = &ta_model_data;
    ta_put("version=");
    ta_put(ta_build.tool_version);
    ta_put(" engine=");
    ta_put_u32(TA_ENGINE_VERSION);
    ta_put(" model=");
    ta_put(m->hash);
    ta_put(" board=");
    ta_put(ta_build.board);
    ta_put(" arena=");
    ta_put_u32(m->state.bytes);
    ta_put(" vocab=");
    ta_put_i32(m->vocab);
    ta_put(" ctx=");
    ta_put_i32(m->ctx);
    ta_put(" dim=");
    ta_put_i32(m->dim);
    ta_put(" layers=");
    ta_put_i32(m->n_layers);
    ta_put(" heads=");
    ta_put_i32(m->n_heads);
    ta_put(" head_dim=");
    ta_put_i32(m->head_dim);
    ta_put(" ffn=");
    ta_put_i32(m->ffn_dim);
    ta_put(" tools=");
    ta_put_i32(ta_agent_data.n_tools);
    ta_put("\n");
}

static void print_ids(const char *label, const uint16_t *v, size_t n)
{
    ta_put(label);
    for (size_t i = 0; i < n; i++) {
        ta_put(" ");
        ta_put_u32(v[i]);
    }
    ta_put("\n");
}

static void cmd_tok(const uint8_t *text, size_t n)
{
    size_t n_ids;
    ta_tokenize(text, n, ids, TA_LINE_MAX, &n_ids); /* n <= TA_LINE_MAX: always fits */
    print_ids("tok", ids, n_ids);
}

static int hex_value(uint8_t c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* !tokx 68690a: tokenises raw bytes given in hex, so that any byte string (newlines too) can be tested. */
static void cmd_tokx(uint8_t *hex, size_t n)
{
    if (n % 2 != 0) {
        ta_put("error: !tokx needs an even number of hex digits (e.g. !tokx 68690a)\n");
        return;
    }
    for (size_t i = 0; i < n; i += 2) {
        int hi = hex_value(hex[i]), lo = hex_value(hex[i + 1]);
        if (hi < 0 || lo < 0) {
            ta_put("error: !tokx needs hex digits 0-9 a-f (e.g. !tokx 68690a)\n");
            return;
        }
        hex[i / 2] = (uint8_t)(hi << 4 | lo); /* in place: the bytes trail the digits */
    }
    cmd_tok(hex, n / 2);
}

/* Parses space-separated token ids into `ids`; prints an error and returns 0 if they are not valid. */
static size_t parse_ids(const uint8_t *s, size_t n, const char *cmd)
{
    const ta_model *m = &ta_model_data;
    size_t count = 0, i = 0;
    while (i < n) {
        if (s[i] == ' ') {
            i++;
            continue;
        }
        uint32_t v = 0;
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            /* saturate instead of wrapping; leading zeros add nothing, so 0000000001 is 1 */
            v = v <= (UINT32_MAX - 9u) / 10u ? v * 10u + (uint32_t)(s[i] - '0') : UINT32_MAX;
            i++;
        }
        size_t digits = i - start;
        if (digits == 0 || (i < n && s[i] != ' ')) {
            ta_put("error: ");
            ta_put(cmd);
            ta_put(" needs token ids separated by spaces (e.g. ");
            ta_put(cmd);
            ta_put(" 12 7 301)\n");
            return 0;
        }
        if (v >= (uint32_t)m->vocab) {
            ta_put("error: token ");
            ta_put_bytes(s + start, digits); /* as typed: a saturated value is not what was asked */
            ta_put(" is out of range (vocab ");
            ta_put_i32(m->vocab);
            ta_put(")\n");
            return 0;
        }
        ids[count++] = (uint16_t)v;
    }
    if (count == 0 || count > (size_t)m->ctx) {
        ta_put("error: ");
        ta_put(cmd);
        ta_put(" needs 1 to ");
        ta_put_i32(m->ctx);
        ta_put(" token ids (the context), got ");
        ta_put_u32((uint32_t)count);
        ta_put("\n");
        return 0;
    }
    return count;
}

/* !run: one line per step, `step <i> <argmax> <fnv1a of the logits>`. !logits: the last step's logits. */
static void cmd_run(const uint8_t *args, size_t n, int full_logits)
{
    const ta_model *m = &ta_model_data;
    size_t count = parse_ids(args, n, full_logits ? "!logits" : "!run");
    if (count == 0) {
        return;
    }
    ta_engine_reset();
    ta_agent_new(); /* the steps overwrite the conversation's cache */
    const int32_t *logits = 0;
    for (size_t i = 0; i < count; i++) {
        logits = ta_engine_step(ids[i], (int32_t)i);
        if (!full_logits) {
            ta_put("step ");
            ta_put_u32((uint32_t)i);
            ta_put(" ");
            ta_put_i32(ta_argmax_i32(logits, m->vocab));
            ta_put(" ");
            ta_put_hex32(ta_fnv1a_i32(logits, m->vocab));
            ta_put("\n");
            ta_flush(); /* each step as it is done: the host can time the first token */
        }
    }
    if (full_logits) {
        ta_put("logits");
        for (int32_t v = 0; v < m->vocab; v++) {
            ta_put(" ");
            ta_put_i32(logits[v]);
        }
        ta_put("\n");
    }
}

/* !bench <ids>: the steps of !run without their lines, timed with ta_hal_cycles() (whose unit is the
 * board's: boards/<board>.toml [run] counter). The last step's argmax and hash let the host check that
 * the same work was done as by !run. */
static void cmd_bench(const uint8_t *args, size_t n)
{
    const ta_model *m = &ta_model_data;
    size_t count = parse_ids(args, n, "!bench");
    if (count == 0) {
        return;
    }
    ta_engine_reset();
    ta_agent_new(); /* the steps overwrite the conversation's cache */
    const int32_t *logits = 0;
    uint32_t start = ta_hal_cycles();
    for (size_t i = 0; i < count; i++) {
        logits = ta_engine_step(ids[i], (int32_t)i);
    }
    uint32_t cycles = ta_hal_cycles() - start; /* unsigned: right across one wrap of the counter */
    ta_put("bench steps=");
    ta_put_u32((uint32_t)count);
    ta_put(" cycles=");
    ta_put_u32(cycles);
    ta_put(" argmax=");
    ta_put_i32(ta_argmax_i32(logits, m->vocab));
    ta_put(" hash=");
    ta_put_hex32(ta_fnv1a_i32(logits, m->vocab));
    ta_put("\n");
}

/* !stats: what the last turn cost (ta_agent_stats), cycles in ta_hal_cycles() units. */
static void cmd_stats(void)
{
    const ta_turn_stats *s = ta_agent_stats();
    ta_put("stats fed=");
    ta_put_u32(s->fed);
    ta_put(" fed_macs=");
    ta_put_u32(s->fed_macs);
    ta_put(" fed_cycles=");
    ta_put_u32(s->fed_cycles);
    ta_put(" chosen=");
    ta_put_u32(s->chosen);
    ta_put(" chosen_macs=");
    ta_put_u32(s->chosen_macs);
    ta_put(" chosen_cycles=");
    ta_put_u32(s->chosen_cycles);
    ta_put(" first_cycles=");
    ta_put_u32(s->first_cycles);
    ta_put(" cycles=");
    ta_put_u32(s->cycles);
    ta_put("\n");
}

/* !call <text>: whether the call text (no brackets) is a viable prefix, and a complete call. */
static void cmd_call(const uint8_t *text, size_t n)
{
    ta_put(ta_call_viable(text, n) ? "call viable=1" : "call viable=0");
    ta_put(ta_call_complete(text, n) ? " complete=1\n" : " complete=0\n");
}

static void command(uint8_t *s, size_t n)
{
    size_t w = 1;
    while (w < n && s[w] != ' ') {
        w++;
    }
    uint8_t *arg = s + (w < n ? w + 1 : n);
    size_t arg_n = w < n ? n - w - 1 : 0;
    const uint8_t *name = s + 1;
    size_t name_n = w - 1;
    if (ta_text_match("ping", name, name_n, 0)) {
        ta_put(arg_n > 0 ? "pong " : "pong");
        ta_put_bytes(arg, arg_n);
        ta_put("\n");
    } else if (ta_text_match("info", name, name_n, 0)) {
        cmd_info();
    } else if (ta_text_match("new", name, name_n, 0)) {
        ta_agent_new();
        ta_put("ok\n");
    } else if (ta_text_match("reset", name, name_n, 0)) {
        ta_engine_reset();
        ta_agent_new();
        ta_put("ok\n");
    } else if (ta_text_match("tok", name, name_n, 0)) {
        cmd_tok(arg, arg_n);
    } else if (ta_text_match("tokx", name, name_n, 0)) {
        cmd_tokx(arg, arg_n);
    } else if (ta_text_match("run", name, name_n, 0)) {
        cmd_run(arg, arg_n, 0);
    } else if (ta_text_match("logits", name, name_n, 0)) {
        cmd_run(arg, arg_n, 1);
    } else if (ta_text_match("call", name, name_n, 0)) {
        cmd_call(arg, arg_n);
    } else if (ta_text_match("bench", name, name_n, 0)) {
        cmd_bench(arg, arg_n);
    } else if (ta_text_match("stats", name, name_n, 0)) {
        cmd_stats();
    } else {
        ta_put("error: unknown command !");
        ta_put_bytes(name, name_n);
        ta_put(" (commands: !ping !info !new !reset !tok !tokx !run !logits !call !bench !stats)\n");
    }
}

/* ---- the loop ---------------------------------------------------------------------------------- */

static void banner(void)
{
    ta_put("tinyagent ");
    ta_put(ta_build.tool_version);
    ta_put(" on ");
    ta_put(ta_build.board);
    ta_put(", model ");
    size_t n = 0;
    while (n < 12 && ta_model_data.hash[n] != '\0') { /* a short hash is enough to tell models apart */
        n++;
    }
    ta_put_bytes(ta_model_data.hash, n);
    ta_put(": type a request, or !info\n");
}

void ta_console_run(void)
{
    int greeted = 0;
    for (;;) {
        int n = read_line();
        if (n == LINE_GONE) {
            ta_flush();
            return;
        }
        if (!greeted) { /* only now: nothing written before the host opened the port is lost */
            banner();
            greeted = 1;
        }
        if (n == LINE_TOO_LONG) {
            ta_put("error: line too long (max ");
            ta_put_u32(TA_LINE_MAX);
            ta_put(" bytes)\n");
        } else if (!valid_utf8(line, (size_t)n)) {
            ta_put("error: input is not valid UTF-8\n");
        } else if (n > 0 && line[0] == '!') {
            command(line, (size_t)n);
        } else if (n > 0) {
            ta_agent_turn(line, (size_t)n, ids, TA_LINE_MAX + 1);
        }
        ta_put("> ");
    }
}
