/* The console: a line reader over ta_hal_getc, the '!' protocol and chat turns (docs/engine.md).
 * What it prints goes through ta_output.h.
 */
#ifndef TA_CONSOLE_H
#define TA_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#ifndef TA_LINE_MAX
#define TA_LINE_MAX 1280 /* longest input line in bytes: a !run of 256 ids below 1000 needs 1029 */
#endif

/* What the generator knows about this build (defined in the generated ta_model.c). */
typedef struct {
    const char *tool_version; /* tinyagent's version */
    const char *board;        /* the board name it was generated for */
} ta_build_info;

extern const ta_build_info ta_build;

/* Reads and answers lines until ta_hal_getc reports the console gone (-1), then returns. */
void ta_console_run(void);

#endif /* TA_CONSOLE_H */
