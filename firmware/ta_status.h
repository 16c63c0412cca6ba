/* tinyagent status codes. Every fallible runtime function returns one; TA_OK is 0.
 *
 * The enum and its name table both come from TA_STATUS_LIST, so they cannot drift apart.
 */
#ifndef TA_STATUS_H
#define TA_STATUS_H

#define TA_STATUS_LIST(X)                                                              \
    X(TA_OK, "ok")                                                                     \
    X(TA_ERR_RANGE, "out of range")        /* token id, position or argument */        \
    X(TA_ERR_TOO_LONG, "too long")         /* input does not fit its buffer or ctx */  \
    X(TA_ERR_PARSE, "parse error")         /* malformed command or number */           \
    X(TA_ERR_TOOL, "tool failed")          /* a tool handler reported a failure */     \
    X(TA_ERR_NO_TOKEN, "no token allowed") /* the grammar masked every token */

#define TA_STATUS_ENUM_ENTRY(id, text) id,
typedef enum { TA_STATUS_LIST(TA_STATUS_ENUM_ENTRY) TA_STATUS_COUNT } ta_status;
#undef TA_STATUS_ENUM_ENTRY

/* A short lower-case description ("out of range"); "unknown status" for a value outside the enum. */
const char *ta_status_name(ta_status status);

#endif /* TA_STATUS_H */
