/* The compute side of tinyagent's MicroPython module: one agent turn with its console output
 * captured. Includes no MicroPython headers; modtinyagent.c is the only file that does.
 */
#ifndef TA_MP_BRIDGE_H
#define TA_MP_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include "ta_agent.h"
#include "ta_status.h"

#define TA_MP_OUTPUT_MAX 2048 /* bytes of one turn's output kept (call lines and answer) */

/* Runs one turn for request[0..n): one line, no '\n' or '\r'. TA_ERR_PARSE for a request with a
 * line break, TA_ERR_TOO_LONG for one that does not fit; either way the reason is the answer. */
ta_status ta_mp_turn(const uint8_t *request, size_t n);

/* After ta_mp_turn, NUL-terminated and valid UTF-8 (invalid bytes become '?'):
 * everything the turn printed, without the final '\n' ... */
const char *ta_mp_transcript(size_t *n);
/* ... and its last line: the agent's answer (or the error message). */
const char *ta_mp_answer(size_t *n);
int ta_mp_truncated(void); /* the turn printed more than TA_MP_OUTPUT_MAX bytes */

/* A tool handler in C: the tools file's, under the name ta_c_tool_<name> (ta_tools_mp.c). */
typedef ta_status (*ta_mp_c_tool)(const ta_call *call, char *result, size_t cap);

/* Defined by the binding (modtinyagent.c): runs the Python callable registered for call's tool and
 * writes its str() as the result; with none registered, runs `c_tool` (0: there is none, and the
 * result says so). Every generated ta_tool_<name> handler forwards here. */
ta_status ta_mp_tool(const ta_call *call, char *result, size_t cap, ta_mp_c_tool c_tool);

#endif /* TA_MP_BRIDGE_H */
