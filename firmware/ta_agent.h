/* The agent loop (host/tinyagent/agent/conversation.py's run_turn); the tool-call grammar is ta_grammar.h.
 *
 * One turn: the request and '\n' are fed to the model; then tokens are chosen greedily under the
 * grammar of docs/integer-contract.md ("Decoding"). Each complete call `[name args]` is dispatched to
 * its handler through the generated tool table (ta_tools.c), printed as `[call] -> result`, and its
 * result and '\n' are fed back. Answer bytes stream to the console as they are chosen.
 *
 * The safety gate: a call of a tool that acts is not run, and the turn ends with one line saying so,
 * when the grammar had to overrule the model inside it (a value out of range: "Not done: pin must be
 * 0 to 39.") or when its confidence, the smallest lead of the chosen token over the runner-up from
 * '[' to ']', is below ta_agent_data.min_margin, or when the request does not name the tool (its
 * naming words, ta_text_names) and it did not run in the last turn that ran a call (a question too).
 *
 * A conversation: the token ids in the context and the start of each whole turn, in static buffers
 * sized from the model's context (TA_MODEL_CTX); each turn feeds only its own tokens, at the
 * positions after the earlier turns'.
 */
#ifndef TA_AGENT_H
#define TA_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "ta_grammar.h"
#include "ta_status.h"
#include "ta_text.h" /* ta_cat, ta_cat_i32: the result helpers handlers append with */

/* Calls the handler of call->tool: `ta_status ta_tool_<name>(const ta_call *call, char *result,
 * size_t cap)`, which writes one line of result text (at most cap - 1 bytes and a NUL) and returns
 * TA_OK or an error; if it returns an error and wrote nothing, the model is fed "error: <status>".
 * Generated (ta_tools.c) as a switch of direct calls, so the stack analysis sees every handler. */
ta_status ta_tools_dispatch(const ta_call *call, char *result, size_t cap);

/* Runs the next turn of the conversation for request[0..n) (no '\n'), printing call lines and the
 * answer. The request is rewritten in place first, its number words as digits (ta_text_numbers).
 * `ids` is scratch for the request's tokens, then for the line the gate says (cap >= n + 1 and
 * cap > TA_SAID_MAX; a buffer of TA_LINE_MAX + 1 holds both). TA_ERR_TOO_LONG (and a printed
 * error; the conversation is unchanged) if the request leaves fewer than reply_reserve tokens of
 * context. Earlier turns stay in the context (conversation.Conversation, docs/integer-contract.md,
 * "Conversations"): the oldest are dropped when this one would not fit, and a refused turn leaves
 * no trace unless a call of it ran (then it stays through that call, the line said as its answer). */
ta_status ta_agent_turn(uint8_t *request, size_t n, uint16_t *ids, size_t cap);

/* Starts a new conversation: an empty context (the console's !new, and every command that runs the
 * engine outside a conversation). */
void ta_agent_new(void);

/* What the last turn cost (the console's !stats; bench.run_turn_bench), cycles in ta_hal_cycles()
 * units. Tokens fed in blocks by ta_engine_feed (the prompt with the pending '\n', each tool result, a
 * confirmed call) are "fed"; tokens chosen and fed one at a time by ta_engine_step are "chosen". MACs
 * as ModelConfig.macs_per_token counts them at each token's position, the head only where logits are
 * computed (one per feed, every chosen token). */
typedef struct {
    uint32_t fed, fed_macs, fed_cycles;
    uint32_t chosen, chosen_macs, chosen_cycles;
    uint32_t first_cycles; /* from the start of the turn to its first output byte */
    uint32_t cycles;       /* the whole turn, the grammar and the output included */
} ta_turn_stats;

const ta_turn_stats *ta_agent_stats(void);

#endif /* TA_AGENT_H */
