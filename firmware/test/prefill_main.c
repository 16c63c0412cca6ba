/* The engine alone, for the prefill tests and the prefill benchmark (tests/test_prefill.py,
 * tinyagent.bench): ta_engine_step and ta_engine_feed driven line by line over the board's console
 * (ta_hal.h only, so the same program runs on the host with test/hal_stdio.c and on an emulated
 * board with its HAL). Link it with the generated ta_model.c, ta_engine.c and one kernel file.
 *
 *   r                  ta_engine_reset; "ok"
 *   s POS T1 T2 ...    ta_engine_step(Ti, POS + i - 1) in turn; "logits ARGMAX HASH" of the last
 *   f POS T1 T2 ...    ta_engine_feed(T, n, POS); the same, or "null" when it refuses
 *   l                  "full V0 V1 ..." the last logits (every int32)
 *   k P                "kv KHASH VHASH": FNV-1a 32 of the KV cache's rows 0..P-1, every layer, K as
 *                      (layer, pos, kv) and V as (layer, kv, pos)
 *   b s|f POS T1 ...   as s or f, timed: "cycles N" (ta_hal_cycles units, the board's counter)
 *   i                  "block B vocab V ctx C"
 * An unknown or malformed line answers "error".
 */
#include "ta_engine.h"
#include "ta_hal.h"
#include "ta_intmath.h"
#include "ta_model.h"

#define LINE_MAX 4096

static uint16_t ids[TA_MODEL_CTX];
static const int32_t *last;

static void put(const char *s)
{
    size_t n = 0;
    while (s[n]) {
        n++;
    }
    ta_hal_write(s, n);
}

static void put_u32(uint32_t v)
{
    char buf[12];
    int i = 11;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(buf + i);
}

static void put_i32(int32_t v)
{
    if (v < 0) {
        put("-");
        put_u32(0u - (uint32_t)v);
    } else {
        put_u32((uint32_t)v);
    }
}

static void put_hex32(uint32_t v)
{
    char buf[9];
    for (int i = 7; i >= 0; i--, v >>= 4) {
        buf[i] = "0123456789abcdef"[v & 15];
    }
    buf[8] = 0;
    put(buf);
}

static uint32_t fnv_bytes(uint32_t h, const int8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (uint8_t)p[i]) * 0x01000193u;
    }
    return h;
}

/* Reads one line (without its end) into buf; -1 when the console is gone. */
static int read_line(char *buf, int cap)
{
    int n = 0;
    for (;;) {
        int c = ta_hal_getc();
        if (c < 0) {
            return -1;
        }
        if (c == '\n' || c == '\r') {
            if (n == 0) {
                continue;
            }
            buf[n] = 0;
            return n;
        }
        if (n < cap - 1) {
            buf[n++] = (char)c;
        }
    }
}

/* The next unsigned number at *p (after spaces); -1 if there is none. */
static int32_t next_num(const char **p)
{
    const char *s = *p;
    while (*s == ' ') {
        s++;
    }
    if (*s < '0' || *s > '9') {
        return -1;
    }
    int32_t v = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s++ - '0');
        if (v > 1000000) {
            return -1;
        }
    }
    *p = s;
    return v;
}

static void put_logits(void)
{
    if (!last) {
        put("null\n");
        return;
    }
    put("logits ");
    put_i32(ta_argmax_i32(last, TA_MODEL_VOCAB));
    put(" ");
    put_hex32(ta_fnv1a_i32(last, TA_MODEL_VOCAB));
    put("\n");
}

/* POS T1 T2 ... at p into *pos and ids; the count, 0 if the line is malformed. */
static int32_t parse(const char *p, int32_t *pos)
{
    int32_t n = 0, t;
    *pos = next_num(&p);
    if (*pos < 0) {
        return 0;
    }
    while ((t = next_num(&p)) >= 0) {
        if (n == TA_MODEL_CTX || t > 65535) {
            return 0;
        }
        ids[n++] = (uint16_t)t;
    }
    return n;
}

/* ids[0..n) at pos, by steps ('s') or one feed ('f'). */
static void run(char what, int32_t pos, int32_t n)
{
    if (what == 's') {
        for (int32_t i = 0; i < n; i++) {
            last = ta_engine_step(ids[i], pos + i);
        }
    } else {
        last = ta_engine_feed(ids, n, pos);
    }
}

int main(void)
{
    static char line[LINE_MAX];
    const ta_state *st = &ta_model_data.state;
    const size_t kv = (size_t)TA_MODEL_N_KV_HEADS * TA_MODEL_HEAD_DIM, ctx = TA_MODEL_CTX;
    ta_hal_init();
    while (read_line(line, LINE_MAX) >= 0) {
        const char *p = line + 1;
        int32_t pos = 0, n = 0;
        if (line[0] == 'r') {
            ta_engine_reset();
            last = 0;
            put("ok\n");
        } else if ((line[0] == 's' || line[0] == 'f') && (n = parse(p, &pos)) > 0) {
            run(line[0], pos, n);
            put_logits();
        } else if (line[0] == 'l' && last) {
            put("full");
            for (int v = 0; v < TA_MODEL_VOCAB; v++) {
                put(" ");
                put_i32(last[v]);
            }
            put("\n");
        } else if (line[0] == 'k') {
            n = next_num(&p);
            if (n < 0 || n > TA_MODEL_CTX) {
                put("error\n");
                continue;
            }
            uint32_t hk = 0x811C9DC5u, hv = 0x811C9DC5u;
            for (int l = 0; l < TA_MODEL_N_LAYERS; l++) {
                hk = fnv_bytes(hk, st->k_cache + (size_t)l * ctx * kv, (size_t)n * kv);
                for (size_t c = 0; c < kv; c++) {
                    hv = fnv_bytes(hv, st->v_cache + ((size_t)l * kv + c) * ctx, (size_t)n);
                }
            }
            put("kv ");
            put_hex32(hk);
            put(" ");
            put_hex32(hv);
            put("\n");
        } else if (line[0] == 'b' && (line[2] == 's' || line[2] == 'f') && (n = parse(line + 3, &pos)) > 0) {
            uint32_t t0 = ta_hal_cycles();
            run(line[2], pos, n);
            uint32_t cycles = ta_hal_cycles() - t0; /* unsigned: right across one wrap */
            put("cycles ");
            put_u32(cycles);
            put("\n");
        } else if (line[0] == 'i') {
            put("block ");
            put_i32(st->block);
            put(" vocab ");
            put_i32(TA_MODEL_VOCAB);
            put(" ctx ");
            put_i32(TA_MODEL_CTX);
            put("\n");
        } else {
            put("error\n");
        }
    }
    ta_hal_exit(0);
    return 0;
}
