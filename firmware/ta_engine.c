/* The forward pass for one token, in the order of docs/integer-contract.md; reference.py's _forward
 * is its twin. Everything reads ta_model_data (generated) and writes its arena. */
#include "ta_engine.h"

#include "ta_intmath.h"

void ta_engine_reset(void)
{
    const ta_state *st = &ta_model_data.state;
    for (uint32_t i = 0; i < st->bytes; i++) {
        st->base[i] = 0;
    }
}

/* out[o] = requant_i8(acc[o], lin.m[o], lin.sh[o]) */
static void requant_rows(int8_t *out, const int32_t *acc, const ta_linear *lin, int rows)
{
    for (int o = 0; o < rows; o++) {
        out[o] = ta_requant_i8(acc[o], lin->m[o], lin->sh[o]);
    }
}

/* x = residual_add(x, lin @ xk) over d rows of `cols` inputs */
static void residual_linear(const ta_state *st, const ta_linear *lin, int d, int cols)
{
    ta_matvec_i8(st->acc, lin->w, (size_t)cols, st->xk, d, cols);
    for (int o = 0; o < d; o++) {
        st->x[o] = ta_residual_add(st->x[o], st->acc[o], lin->m[o], lin->sh[o]);
    }
}

/* The probability-weighted sum of one head's cached values: acc[c] = sum_j probs[j] * v[c][j].
 * The value cache is transposed (rows are channels, columns positions), so this is one more matvec.
 * A probability of exactly 32768 (one position holds all the weight, the rest are 0) does not fit
 * the kernel's 16-bit input, and needs no sum anyway. */
static void weighted_values(const ta_model *m, const int8_t *v_head, int n)
{
    const ta_state *st = &m->state;
    for (int j = 0; j < n; j++) {
        if (st->probs[j] == 32768) {
            for (int c = 0; c < m->head_dim; c++) {
                st->acc[c] = 32768 * (int32_t)v_head[(size_t)c * (size_t)m->ctx + (size_t)j];
            }
            return;
        }
    }
    ta_kernel_prepare_q15(st->xk, st->probs, n);
    ta_matvec_i8(st->acc, v_head, (size_t)m->ctx, st->xk, m->head_dim, n);
}

/* k_cache (ctx, kv) and v_cache (kv, ctx) are this layer's; kv = n_kv_heads * head_dim, and query
 * head h reads kv head h / (n_heads / n_kv_heads) (grouped-query attention; 1 query head per kv head
 * is multi-head attention). */
static void attention(const ta_model *m, const ta_layer *ly, int8_t *k_cache, int8_t *v_cache, int pos)
{
    const ta_state *st = &m->state;
    const int d = m->dim, hd = m->head_dim, a = m->n_heads * m->head_dim, kv = m->n_kv_heads * m->head_dim;
    const int group = m->n_heads / m->n_kv_heads;
    const size_t ctx = (size_t)m->ctx;

    ta_rmsnorm(st->xn, st->x, d, ly->attn_norm_k);
    ta_kernel_prepare(st->xk, st->xn, d);
    ta_matvec_i8(st->acc, ly->wq.w, (size_t)d, st->xk, a, d);
    requant_rows(st->qo, st->acc, &ly->wq, a);
    ta_matvec_i8(st->acc, ly->wk.w, (size_t)d, st->xk, kv, d);
    requant_rows(k_cache + (size_t)pos * (size_t)kv, st->acc, &ly->wk, kv);
    ta_matvec_i8(st->acc, ly->wv.w, (size_t)d, st->xk, kv, d);
    for (int o = 0; o < kv; o++) {
        v_cache[(size_t)o * ctx + (size_t)pos] = ta_requant_i8(st->acc[o], ly->wv.m[o], ly->wv.sh[o]);
    }

    for (int h = 0; h < m->n_heads; h++) {
        int8_t *qh = st->qo + h * hd;
        const int kh = (h / group) * hd; /* this head's kv columns */
        ta_kernel_prepare(st->xk, qh, hd);
        /* scores over cache rows 0..pos of its kv head's columns */
        ta_matvec_i8(st->scores, k_cache + kh, (size_t)kv, st->xk, pos + 1, hd);
        ta_softmax_q15(st->probs, st->scores, pos + 1, ly->softmax_m, (int)ly->softmax_sh, m->exp_table);
        weighted_values(m, v_cache + (size_t)kh * ctx, pos + 1);
        for (int c = 0; c < hd; c++) { /* q_h was consumed (prepared) above: write o_h over it */
            qh[c] = ta_requant_i8(st->acc[c], ly->attn_out_m, (int)ly->attn_out_sh);
        }
    }
    ta_kernel_prepare(st->xk, st->qo, a);
    residual_linear(st, &ly->wo, d, a);
}

static void feed_forward(const ta_model *m, const ta_layer *ly)
{
    const ta_state *st = &m->state;
    const int d = m->dim, f = m->ffn_dim;

    ta_rmsnorm(st->xn, st->x, d, ly->ffn_norm_k);
    ta_kernel_prepare(st->xk, st->xn, d);
    ta_matvec_i8(st->acc, ly->w1.w, (size_t)d, st->xk, f, d);
    for (int o = 0; o < f; o++) {
        int8_t h = ta_requant_i8(st->acc[o], ly->w1.m[o], ly->w1.sh[o]);
        st->hg[o] = ly->gelu[h + 128];
    }
    ta_kernel_prepare(st->xk, st->hg, f);
    residual_linear(st, &ly->w2, d, f);
}

const int32_t *ta_engine_step(int32_t token, int32_t pos)
{
    const ta_model *m = &ta_model_data;
    const ta_state *st = &m->state;
    if (token < 0 || token >= m->vocab || pos < 0 || pos >= m->ctx) {
        return 0;
    }
    const int d = m->dim;
    const size_t cache_layer = (size_t)m->ctx * (size_t)(m->n_kv_heads * m->head_dim);

    /* ---- embedding: token and position terms each requantised to the residual scale, then added */
    const int8_t *e = m->tok_emb + (size_t)token * (size_t)d;
    const int8_t *p = m->pos_emb + (size_t)pos * (size_t)d;
    for (int c = 0; c < d; c++) {
        int16_t te = ta_sat16(ta_mul_shift(e[c], m->tok_emb_m[token], m->tok_emb_sh[token]));
        int16_t pe = ta_sat16(ta_mul_shift(p[c], m->pos_emb_m[pos], m->pos_emb_sh[pos]));
        st->x[c] = ta_sat16((int32_t)te + pe);
    }

    for (int l = 0; l < m->n_layers; l++) {
        const ta_layer *ly = &m->layers[l];
        attention(m, ly, st->k_cache + (size_t)l * cache_layer, st->v_cache + (size_t)l * cache_layer, pos);
        feed_forward(m, ly);
    }

    /* ---- logits: the head is tied to the token embedding and its per-row scales */
    ta_rmsnorm(st->xn, st->x, d, m->final_norm_k);
    ta_kernel_prepare(st->xk, st->xn, d);
    ta_matvec_i8(st->logits, m->tok_emb, (size_t)d, st->xk, m->vocab, d);
    for (int v = 0; v < m->vocab; v++) {
        st->logits[v] = ta_sat32(ta_mul_shift(st->logits[v], m->logits_m[v], m->logits_sh[v]));
    }
    return st->logits;
}
