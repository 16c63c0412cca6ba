/* The inference engine: one token in, int32 logits out (docs/integer-contract.md, "One token"), or a
 * prompt's tokens in blocks (prefill), the last one's logits out.
 *
 * The model is a const struct of dimensions and pointers, emitted by the generator (ta_model.c), with
 * its weights const so that they stay in flash. All working memory is one static arena whose layout
 * arena.arena_layout computed at generation time; the engine allocates nothing and never exits.
 */
#ifndef TA_ENGINE_H
#define TA_ENGINE_H

#include <stdint.h>

#include "ta_kernels.h"
#include "ta_status.h"

#define TA_ENGINE_VERSION 3 /* bump when the engine's arithmetic or the model struct changes */

/* One linear layer: int8 weights, row-major (out, in), and a multiplier and shift per output row. */
typedef struct {
    const int8_t *w;   /* (out, in) */
    const int32_t *m;  /* (out,) */
    const int8_t *sh;  /* (out,) */
} ta_linear;

typedef struct {
    int32_t attn_norm_k;            /* rmsnorm K, Q16 */
    ta_linear wq;                   /* (a, d) */
    ta_linear wk, wv;               /* (kv, d): kv = n_kv_heads * head_dim */
    int32_t softmax_m, softmax_sh;  /* scores -> exp-table steps */
    int32_t attn_out_m, attn_out_sh;/* Q15 p @ v -> int8 attention output */
    ta_linear wo;                   /* (d, a) */
    int32_t ffn_norm_k;
    ta_linear w1;                   /* (f, d) */
    const int8_t *gelu;             /* (256,) int8 -> int8, indexed by h + 128 */
    ta_linear w2;                   /* (d, f) */
} ta_layer;

/* Working memory: typed views into the one arena (offsets from arena.arena_layout). The
 * activations hold `block` tokens (B, the prefill block): a row per token. */
typedef struct {
    uint8_t *base;     /* the arena itself */
    uint32_t bytes;
    int32_t block;     /* B: tokens per pass of ta_engine_feed (TA_PREFILL_BLOCK; 1 = one at a time) */
    int16_t *x;        /* (B, d) residual stream */
    int8_t *xn;        /* (B, d) norm output */
    ta_kx *xk;         /* (max(B * max(d, a, f), ctx),) matvec/matmat input in the kernel's form */
    int8_t *qo;        /* (B, a) q, overwritten head by head with the attention output */
    int8_t *hg;        /* (B, f) FFN pre-activation, then its GELU in place */
    int32_t *acc;      /* (B, max(d, a, f)) matvec/matmat accumulators */
    int32_t *scores;   /* (ctx,) one head's attention scores (acc holds a prefill quad's), then its weighted values */
    int32_t *probs;    /* (ctx,) their Q15 softmax */
    int32_t *logits;   /* (vocab,) */
    int8_t *k_cache;   /* (layers, ctx, kv): a row per position, as in the reference */
    int8_t *v_cache;   /* (layers, kv, ctx): transposed, so that probabilities @ values is a matvec */
} ta_state;

typedef struct {
    int32_t vocab, ctx, dim, n_layers, n_heads, head_dim, ffn_dim;
    int32_t n_kv_heads;             /* divides n_heads; query head h reads kv head h / (n_heads / n_kv_heads) */
    const int8_t *tok_emb;          /* (vocab, d); also the output head (tied) */
    const int32_t *tok_emb_m;       /* (vocab,) to the residual scale */
    const int8_t *tok_emb_sh;
    const int8_t *pos_emb;          /* (ctx, d) */
    const int32_t *pos_emb_m;       /* (ctx,) */
    const int8_t *pos_emb_sh;
    const uint16_t *exp_table;      /* (256,) softmax, Q15 */
    const ta_layer *layers;         /* (n_layers,) */
    int32_t final_norm_k;
    const int32_t *logits_m;        /* (vocab,) head accumulators -> logits */
    const int8_t *logits_sh;
    const char *hash;               /* sha256 of the integer model, hex */
    ta_state state;
} ta_model;

/* The model of this build, defined by the generated ta_model.c. */
extern const ta_model ta_model_data;

/* Clears the arena (KV cache and all working buffers). Optional between sequences: a step at
 * position p only reads cache rows 0..p, which steps 0..p wrote. */
void ta_engine_reset(void);

/* Runs `token` at position `pos` and returns the logits (vocab int32, valid until the next step), or
 * NULL if token is not in 0..vocab-1 or pos not in 0..ctx-1. Rows 0..pos-1 of the KV cache must hold
 * this sequence's earlier tokens. */
const int32_t *ta_engine_step(int32_t token, int32_t pos);

/* Feeds tokens[0..n) at positions pos .. pos+n-1 (a prompt, a tool result: prefill) and returns the
 * logits of the last one, position pos+n-1 (vocab int32, valid until the next step or feed); the
 * others' logits are not computed. Equal, bit for bit, to ta_engine_step(tokens[i], pos + i) for
 * i = 0 .. n-1 in turn: the same logits and the same KV-cache rows pos .. pos+n-1. The tokens go
 * through the weights in blocks of up to ta_model_data.state.block (TA_PREFILL_BLOCK), each weight
 * row read once per block, with causal attention inside the block. Rows 0..pos-1 of the KV cache
 * must hold this sequence's earlier tokens. Returns NULL, with the cache untouched, if n < 1, pos <
 * 0, pos + n > ctx, or a token is not in 0..vocab-1. */
const int32_t *ta_engine_feed(const uint16_t *tokens, int32_t n, int32_t pos);

#endif /* TA_ENGINE_H */
