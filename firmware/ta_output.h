/* The runtime's output: everything the console and the agent print goes through here, into a small
 * buffer flushed to the board's console (ta_hal_write, a direct call, so the stack analysis sees the
 * whole path; the MicroPython module's ta_hal_write collects a turn's text). ta_flush runs before
 * every read, after each `!run` step and each answer token (so the host sees them as they are made),
 * and when full.
 */
#ifndef TA_OUTPUT_H
#define TA_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

void ta_put(const char *s);
void ta_put_bytes(const void *p, size_t n);
void ta_put_i32(int32_t v);
void ta_put_u32(uint32_t v);
void ta_put_hex32(uint32_t v); /* 8 lower-case hex digits */
void ta_flush(void);

#endif /* TA_OUTPUT_H */
