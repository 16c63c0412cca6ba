/* The tool-call grammar (host/tinyagent/agent/grammar.py): the generated table of this build's tools
 * and their fields (ta_tools.c), which call texts are valid, which prefixes can still become one,
 * and a complete call parsed into what its handler sees.
 */
#ifndef TA_GRAMMAR_H
#define TA_GRAMMAR_H

#include <stddef.h>
#include <stdint.h>

#define TA_CALL_MAX 64    /* longest call text (name and arguments); the generator checks the spec */
#define TA_MAX_FIELDS 8   /* fields after the tool name */
#define TA_RESULT_MAX 63  /* longest tool result, in bytes (one line, no '\n') */
#define TA_SAID_MAX 191   /* longest line the safety gate says, in bytes; the generator checks the spec */
#define TA_MAX_TOOLS 32   /* tools of one agent (ta_agent.c keeps the last turn's as bits) */
#define TA_NAME_MAX 32    /* letters in a word that names a tool (agent/naming.py); the generator checks */

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
    int32_t n_names;           /* a write tool: the request words that name it (agent/naming.py) */
    const char *const *names;  /* (n_names,) lower-case letters */
    int32_t units;             /* 1: it takes a duration, so h, m, s right after a digit name it too */
} ta_tool_def;

typedef struct {
    int32_t n_tools;
    const ta_tool_def *tools;  /* (n_tools,) */
    int32_t max_call_len;      /* grammar.Grammar.max_len: no valid call is longer */
    int32_t max_calls;         /* conversation.MAX_CALLS: tool calls per turn */
    int32_t reply_reserve;     /* conversation.REPLY_RESERVE: tokens a request must leave free */
    int32_t min_margin;        /* the confidence gate's threshold, in logit units (int8/gate.json);
                                * negative: no gate (tests of the bare grammar only) */
} ta_agent_def;

/* The agent of this build, defined by the generated ta_tools.c. */
extern const ta_agent_def ta_agent_data;

/* grammar.Grammar.viable / complete over call text (bytes). */
int ta_call_viable(const uint8_t *text, size_t n);
int ta_call_complete(const uint8_t *text, size_t n);

/* Splits a complete call text into a ta_call (fields, parsed arguments); a duration's text becomes
 * its seconds (grammar.Grammar.parse), so handlers and the printed call see "5400". */
void ta_call_parse(const uint8_t *text, size_t n, ta_call *c);

#endif /* TA_GRAMMAR_H */
