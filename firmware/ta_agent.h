/* The agent loop (host/tinyagent/agent/conversation.py's run_turn) and the tool-call grammar (grammar.py).
 *
 * One turn: the request and '\n' are fed to the model; then tokens are chosen greedily under the
 * grammar of docs/integer-contract.md ("Decoding"). Each complete call `[name args]` is dispatched to
 * its handler through the generated tool table (ta_tools.c), printed as `[call] -> result`, and its
 * result and '\n' are fed back. Answer bytes stream to the console as they are chosen.
 *
 * The safety gate: a call of a tool that acts is not run, and the turn ends with one line saying so,
 * when the grammar had to overrule the model inside it (a value out of range: "Not done: pin must be
 * 0 to 39.") or when its confidence, the smallest lead of the chosen token over the runner-up from
 * '[' to ']', is below ta_agent_data.min_margin (a clarifying question).
 *
 * A conversation: the token ids in the context and the start of each whole turn, in static buffers
 * sized from the model's context (TA_MODEL_CTX); each turn feeds only its own tokens, at the
 * positions after the earlier turns'.
 */
#ifndef TA_AGENT_H
#define TA_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "ta_status.h"

#define TA_CALL_MAX 64    /* longest call text (name and arguments); the generator checks the spec */
#define TA_MAX_FIELDS 8   /* fields after the tool name */
#define TA_RESULT_MAX 63  /* longest tool result, in bytes (one line, no '\n') */

typedef enum { TA_FIELD_LIT, TA_FIELD_ENUM, TA_FIELD_INT, TA_FIELD_DUR } ta_field_kind;

/* One field of a call after the tool's name. */
typedef struct {
    int32_t kind;              /* ta_field_kind */
    int32_t n_words;           /* lit: 1; enum: its words; int: 0 */
    const char *const *words;
    int32_t lo, hi;            /* int: the allowed range (decimal, no sign); dur: in seconds */
    const char *name;          /* the arg's name in the spec ("" for a literal word) */
} ta_field;

/* A parsed call, as its handler sees it. */
typedef struct {
    int32_t tool;                    /* index into ta_agent_data.tools (TA_TOOL_<NAME>) */
    int32_t n_args;                  /* fields after the name */
    int32_t arg[TA_MAX_FIELDS];      /* enum: index of the word; int: the value; dur: seconds; literal: 0 */
    const char *word[TA_MAX_FIELDS]; /* each field's text, NUL-terminated */
    char text[TA_CALL_MAX + 1];      /* the fields, NUL-separated (word[] points in here); a duration
                                      * as its seconds ("5400" for the model's "1h30m") */
} ta_call;

typedef struct {
    const char *name;
    int32_t n_fields;
    const ta_field *fields;    /* (n_fields,) */
    int32_t acts;              /* 1: the tool changes the world (spec effect "write"), gated */
} ta_tool_def;

typedef struct {
    int32_t n_tools;
    const ta_tool_def *tools;  /* (n_tools,) */
    int32_t max_call_len;      /* grammar.Grammar.max_len: no valid call is longer */
    int32_t max_calls;         /* agent.MAX_CALLS: tool calls per turn */
    int32_t reply_reserve;     /* agent.REPLY_RESERVE: tokens a request must leave free */
    int32_t min_margin;        /* the confidence gate's threshold, in logit units (int8/gate.json);
                                * negative: no gate (tests of the bare grammar only) */
} ta_agent_def;

/* The agent of this build, defined by the generated ta_tools.c. */
extern const ta_agent_def ta_agent_data;

/* Calls the handler of call->tool: `ta_status ta_tool_<name>(const ta_call *call, char *result,
 * size_t cap)`, which writes one line of result text (at most cap - 1 bytes and a NUL) and returns
 * TA_OK or an error; if it returns an error and wrote nothing, the model is fed "error: <status>".
 * Generated (ta_tools.c) as a switch of direct calls, so the stack analysis sees every handler. */
ta_status ta_tools_dispatch(const ta_call *call, char *result, size_t cap);

/* Runs the next turn of the conversation for request[0..n) (no '\n'), printing call lines and the
 * answer. `ids` is scratch for the request's tokens (cap >= n + 1). TA_ERR_TOO_LONG (and a printed
 * error; the conversation is unchanged) if the request leaves fewer than reply_reserve tokens of
 * context. Earlier turns stay in the context (conversation.Conversation, docs/integer-contract.md,
 * "Conversations"): the oldest are dropped when this one would not fit, and a refused turn leaves
 * no trace. */
ta_status ta_agent_turn(const uint8_t *request, size_t n, uint16_t *ids, size_t cap);

/* Starts a new conversation: an empty context (the console's !new, and every command that runs the
 * engine outside a conversation). */
void ta_agent_new(void);

/* grammar.Grammar.viable / complete over call text (bytes). */
int ta_call_viable(const uint8_t *text, size_t n);
int ta_call_complete(const uint8_t *text, size_t n);

/* Result helpers for handlers: append to the NUL-terminated dst of capacity cap, truncating. */
void ta_cat(char *dst, size_t cap, const char *s);
void ta_cat_i32(char *dst, size_t cap, int32_t v);

#endif /* TA_AGENT_H */
