/* The forward pass for a block of tokens (one, or a prefill block), in the order of
 * docs/integer-contract.md; reference.py's _forward is its twin (it too runs a block at once). Every
 * row of every step is the arithmetic of one token alone, so a block gives the logits and KV cache
 * of feeding its tokens one by one, bit for bit. Everything reads ta_model_data (generated) and
 * writes its arena. */
#include "ta_engine.h"

#include "ta_intmath.h"

void ta_engine_reset(void)
{
    const ta_state *st = &ta_model_data.state;
    for (uint32_t i = 0; i < st->bytes; i++) {
        st->base[i] = 0;
    }
}

/* out[t * t_step + o * o_step] = requant_i8(acc[t * rows + o], lin.m[o], lin.sh[o]) for the nb
 * tokens of a block (nb = 1 when decoding), then through `lut` (indexed by the value + 128) if it is
 * not null. Row by row, so that each row's multiplier and shift are read, and its rounding term made,
 * once for all the tokens; the restrict pointers let the compiler keep them in registers past the
 * int8 stores. */
static inline void requant_block(int8_t *restrict out, size_t t_step, size_t o_step, const int32_t *restrict acc,
                                 const ta_linear *lin, int rows, int nb, const int8_t *restrict lut)
{
    const int32_t *restrict mv = lin->m;
    const int8_t *restrict shv = lin->sh;
    const size_t a_step = (size_t)rows;
    if (nb == 1) { /* one token (decode): no rows to share, and a loop per row costs more than it saves */
        for (int o = 0; o < rows; o++) {
            const int8_t q = ta_requant_i8(acc[o], mv[o], shv[o]);
            out[(size_t)o * o_step] = lut ? lut[q + 128] : q;
        }
        return;
    }
    for (int o = 0; o < rows; o++) {
        const int32_t m = mv[o];
        const int sh = shv[o];
        const int32_t *a = acc + o, *const a_end = a + (size_t)nb * a_step;
        int8_t *y = out + (size_t)o * o_step;
        if (sh >= 33) { /* nearly every row of a trained model */
            for (; a != a_end; a += a_step, y += t_step) {
                const int32_t q = ta_sat8_32(ta_mul_shift_hi(*a, m, sh));
                *y = lut ? lut[q + 128] : (int8_t)q;
            }
        } else {
            for (; a != a_end; a += a_step, y += t_step) {
                const int8_t q = ta_requant_i8(*a, m, sh);
                *y = lut ? lut[q + 128] : q;
            }
        }
    }
}

/* acc (nb, rows) = lin @ each of the nb inputs prepared in xk (a row of acc per token) */
static void linear_block(const ta_state *st, const ta_linear *lin, int rows, int cols, int nb)
{
    ta_matmat_w(st->acc, (size_t)rows, lin->w, st->xk, rows, cols, nb);
}

/* x[t] = residual_add(x[t], lin @ xk[t]) for the nb tokens, d rows of `cols` inputs; row by row, as
 * requant_block */
static void residual_linear(const ta_state *st, const ta_linear *lin, int d, int cols, int nb)
{
    linear_block(st, lin, d, cols, nb);
    const int32_t *restrict mv = lin->m;
    const int8_t *restrict shv = lin->sh;
    const int32_t *restrict acc = st->acc;
    int16_t *restrict xs = st->x;
    const size_t step = (size_t)d;
    if (nb == 1) {
        for (int o = 0; o < d; o++) {
            xs[o] = ta_residual_add(xs[o], acc[o], mv[o], shv[o]);
        }
        return;
    }
    for (int o = 0; o < d; o++) {
        const int32_t m = mv[o];
        const int sh = shv[o];
        int16_t *x = xs + o, *const x_end = x + (size_t)nb * step;
        const int32_t *a = acc + o;
        if (sh >= 33) {
            for (; x != x_end; x += step, a += step) {
                *x = (int16_t)ta_sat16_32(*x + ta_sat16_32(ta_mul_shift_hi(*a, m, sh)));
            }
        } else {
            for (; x != x_end; x += step, a += step) {
                *x = (int16_t)ta_sat16_32(*x + ta_mul_shift_sat(*a, m, sh, -32768, 32767));
            }
        }
    }
}

/* xn[t] = rmsnorm(x[t]) for the nb tokens, then xn in the kernel's block form in xk */
static void norm_block(const ta_model *m, int32_t k, int nb)
{
    const ta_state *st = &m->state;
    const size_t d = (size_t)m->dim;
    for (int t = 0; t < nb; t++) {
        ta_rmsnorm(st->xn + (size_t)t * d, st->x + (size_t)t * d, m->dim, k);
    }
    ta_kernel_prepare_block(st->xk, st->xn, d, m->dim, nb);
}

/* The probability-weighted sum of one head's cached values: out[c] = sum_j probs[j] * v[c][j].
 * The value cache is transposed (rows are channels, columns positions), so this is one more matvec.
 * A probability of exactly 32768 (one position holds all the weight, the rest are 0) does not fit
 * the kernel's 16-bit input, and needs no sum anyway. */
static void weighted_values(const ta_model *m, const int8_t *v_head, int n, int whole, int32_t *out)
{
    const ta_state *st = &m->state;
    for (int j = 0; whole && j < n; j++) { /* whole: the softmax found a 32768 */
        if (st->probs[j] == 32768) {
            for (int c = 0; c < m->head_dim; c++) {
                out[c] = 32768 * (int32_t)v_head[(size_t)c * (size_t)m->ctx + (size_t)j];
            }
            return;
        }
    }
    /* Padded with zero probabilities to the kernel's column multiple (ta_kernel_cols, a power of two)
     * where the cache row has the room, so that it runs no column tail: a zero times whatever the
     * cache holds there adds 0. */
    int cols = (n + ta_kernel_cols - 1) & ~(ta_kernel_cols - 1);
    if (cols > m->ctx) {
        cols = n;
    }
    for (int j = n; j < cols; j++) {
        st->probs[j] = 0;
    }
    ta_kernel_prepare_q15(st->xk, st->probs, cols);
    ta_matvec_i8(out, v_head, (size_t)m->ctx, st->xk, m->head_dim, cols);
}

/* One query head of one token, given its n scores (over cache positions 0 .. n-1): the softmax, the
 * probability-weighted values of its kv head (v_head), requantised into qh (the head's q, which
 * was consumed, prepared, before the scores). scores may be st->scores: the probabilities are
 * read from it before the values are written there. */
static void head_output(const ta_model *m, const ta_layer *ly, const int8_t *v_head, const int32_t *scores, int n,
                        int8_t *qh)
{
    const ta_state *st = &m->state;
    const int whole = ta_softmax_q15(st->probs, scores, n, ly->softmax_m, (int)ly->softmax_sh, m->exp_table);
    weighted_values(m, v_head, n, whole, st->scores);
    for (int c = 0; c < m->head_dim; c++) {
        qh[c] = ta_requant_i8(st->scores[c], ly->attn_out_m, (int)ly->attn_out_sh);
    }
}

/* Attention for the nb tokens at positions pos0 .. pos0+nb-1. k_cache (ctx, kv) and v_cache (kv, ctx)
 * are this layer's; kv = n_kv_heads * head_dim, and query head h reads kv head h / (n_heads /
 * n_kv_heads) (grouped-query attention; 1 query head per kv head is multi-head attention). The block's
 * keys and values are all written first; token t then reads cache rows 0 .. pos0+t only (causal),
 * so each token sees exactly what it would have seen fed alone. */
static void attention(const ta_model *m, const ta_layer *ly, int8_t *k_cache, int8_t *v_cache, int pos0, int nb)
{
    const ta_state *st = &m->state;
    const int d = m->dim, hd = m->head_dim, a = m->n_heads * m->head_dim, kv = m->n_kv_heads * m->head_dim;
    const int group = m->n_heads / m->n_kv_heads;
    const size_t ctx = (size_t)m->ctx;

    norm_block(m, ly->attn_norm_k, nb);
    linear_block(st, &ly->wq, a, d, nb);
    requant_block(st->qo, (size_t)a, 1, st->acc, &ly->wq, a, nb, 0);
    linear_block(st, &ly->wk, kv, d, nb);
    requant_block(k_cache + (size_t)pos0 * (size_t)kv, (size_t)kv, 1, st->acc, &ly->wk, kv, nb, 0);
    linear_block(st, &ly->wv, kv, d, nb);
    requant_block(v_cache + (size_t)pos0, 1, ctx, st->acc, &ly->wv, kv, nb, 0); /* transposed: (kv, ctx) */

    /* The scores of several query vectors against the same key rows at once, as a matmat (each key
     * row read once for them), where acc has room for their rows of scores: in a block, one query
     * head's q for up to four tokens, over the key rows up to the last one's position (token t's
     * row of acc is then its scores over rows 0 .. pos0+t; the rows past that, computed for a later
     * token, it does not read); for one token (decode) with grouped-query attention, the `group`
     * query heads that share a kv head (by_heads). Otherwise a matvec each. */
    const int rows_max = pos0 + nb;
    const int acc_len = st->block * (d > a ? (d > m->ffn_dim ? d : m->ffn_dim) : (a > m->ffn_dim ? a : m->ffn_dim));
    const int by_heads = nb == 1 && group > 1 && acc_len / rows_max >= group;
    int quad = acc_len / rows_max;
    quad = quad > 4 ? 4 : quad;
    for (int h = 0; h < m->n_heads; h += by_heads ? group : 1) {
        const int kh = (h / group) * hd; /* this head's kv columns */
        for (int t0 = 0; t0 < nb;) {
            const int k = by_heads ? group : nb > 1 && quad >= 2 ? (nb - t0 < quad ? nb - t0 : quad) : 1;
            const int rows = pos0 + t0 + (by_heads ? 1 : k); /* key rows 0 .. the last token's position */
            const size_t q_step = by_heads ? (size_t)hd : (size_t)a; /* from one of the k q vectors to the next */
            int8_t *q0 = st->qo + (size_t)t0 * (size_t)a + (size_t)(h * hd);
            const int32_t *scores = st->acc;
            if (k == 1) {
                ta_kernel_prepare(st->xk, q0, hd);
                ta_matvec_i8(st->scores, k_cache + kh, (size_t)kv, st->xk, rows, hd);
                scores = st->scores;
            } else {
                ta_kernel_prepare_block(st->xk, q0, q_step, hd, k);
                ta_matmat_i8(st->acc, (size_t)rows, k_cache + kh, (size_t)kv, st->xk, rows, hd, k);
            }
            for (int j = 0; j < k; j++) {
                head_output(m, ly, v_cache + (size_t)kh * ctx, scores + (size_t)j * (size_t)rows,
                            by_heads ? rows : pos0 + t0 + j + 1, q0 + (size_t)j * q_step);
            }
            t0 += by_heads ? 1 : k;
        }
    }
    ta_kernel_prepare_block(st->xk, st->qo, (size_t)a, a, nb);
    residual_linear(st, &ly->wo, d, a, nb);
}

static void feed_forward(const ta_model *m, const ta_layer *ly, int nb)
{
    const ta_state *st = &m->state;
    const int d = m->dim, f = m->ffn_dim;

    norm_block(m, ly->ffn_norm_k, nb);
    linear_block(st, &ly->w1, f, d, nb);
    requant_block(st->hg, (size_t)f, 1, st->acc, &ly->w1, f, nb, ly->gelu);
    ta_kernel_prepare_block(st->xk, st->hg, (size_t)f, f, nb);
    residual_linear(st, &ly->w2, d, f, nb);
}

/* The nb (1 .. block) tokens at positions pos0 .. pos0+nb-1 (all checked): every layer for all of
 * them, then, if `logits`, the last one's logits. */
static void forward_block(const uint16_t *tokens, int nb, int pos0, int logits)
{
    const ta_model *m = &ta_model_data;
    const ta_state *st = &m->state;
    const int d = m->dim;
    const size_t cache_layer = (size_t)m->ctx * (size_t)(m->n_kv_heads * m->head_dim);

    /* ---- embedding: token and position terms each requantised to the residual scale, then added */
    for (int t = 0; t < nb; t++) {
        const int token = tokens[t], pos = pos0 + t;
        const int8_t *p = m->pos_emb + (size_t)pos * (size_t)d;
        int16_t *x = st->x + (size_t)t * (size_t)d;
        int8_t *e = st->xn; /* free until the first norm: the token's row of the head's matrix */
        ta_weight_row(e, m->tok_emb, m->vocab, d, token);
        for (int c = 0; c < d; c++) {
            int16_t te = ta_requant_i16(e[c], m->tok_emb_m[token], m->tok_emb_sh[token]);
            int16_t pe = ta_requant_i16(p[c], m->pos_emb_m[pos], m->pos_emb_sh[pos]);
            x[c] = (int16_t)ta_sat16_32((int32_t)te + pe);
        }
    }

    for (int l = 0; l < m->n_layers; l++) {
        const ta_layer *ly = &m->layers[l];
        attention(m, ly, st->k_cache + (size_t)l * cache_layer, st->v_cache + (size_t)l * cache_layer, pos0, nb);
        feed_forward(m, ly, nb);
    }
    if (!logits) {
        return;
    }

    /* ---- logits: the head is tied to the token embedding and its per-row scales */
    ta_rmsnorm(st->xn, st->x + (size_t)(nb - 1) * (size_t)d, d, m->final_norm_k);
    ta_kernel_prepare(st->xk, st->xn, d);
    ta_matvec_w(st->logits, m->tok_emb, st->xk, m->vocab, d);
    for (int v = 0; v < m->vocab; v++) {
        st->logits[v] = ta_mul_shift_clamp(st->logits[v], m->logits_m[v], m->logits_sh[v], INT32_MIN, INT32_MAX);
    }
}

const int32_t *ta_engine_step(int32_t token, int32_t pos)
{
    const ta_model *m = &ta_model_data;
    if (token < 0 || token >= m->vocab || pos < 0 || pos >= m->ctx) {
        return 0;
    }
    const uint16_t t = (uint16_t)token; /* the generator allows at most 65535 tokens */
    forward_block(&t, 1, pos, 1);
    return m->state.logits;
}

const int32_t *ta_engine_feed(const uint16_t *tokens, int32_t n, int32_t pos)
{
    const ta_model *m = &ta_model_data;
    if (tokens == 0 || n < 1 || pos < 0 || pos >= m->ctx || n > m->ctx - pos) {
        return 0;
    }
    for (int32_t i = 0; i < n; i++) { /* all checked before the cache is touched */
        if (tokens[i] >= m->vocab) {
            return 0;
        }
    }
    const int32_t block = m->state.block > 0 ? m->state.block : 1;
    for (int32_t done = 0; done < n;) {
        const int32_t nb = n - done < block ? n - done : block;
        forward_block(tokens + done, (int)nb, (int)(pos + done), done + nb == n);
        done += nb;
    }
    return m->state.logits;
}
