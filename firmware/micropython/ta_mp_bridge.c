/* The compute side of the MicroPython module (no MicroPython headers).
 *
 * The runtime prints through ta_output.h, which flushes to ta_hal_write: this board's console is a
 * buffer (ta_hal_write below collects into it) instead of a serial port, so one call to ta_mp_turn
 * runs the same turn as the firmware's console and the binding hands its text back to Python. The console is all this file
 * has of ta_hal.h: the devices (machine.Pin, machine.ADC) and the clock are the binding's, since
 * they need MicroPython, and the timer slots are hal_timers.c's, run by ta_hal_poll at each ask()
 * and from tinyagent.poll().
 */
#include "ta_mp_bridge.h"

#include "ta_console.h"
#include "ta_hal.h"
#include "ta_output.h"

#include <string.h>

static char output[TA_MP_OUTPUT_MAX + 1];
static size_t output_len;
static size_t answer_start;
static int truncated;
static uint16_t ids[TA_LINE_MAX + 1]; /* a request's tokens: never more than its bytes, plus '\n' */
typedef char ta_ids_hold_the_gate_line[TA_LINE_MAX >= TA_SAID_MAX ? 1 : -1]; /* ta_agent_turn's cap */
static uint8_t line[TA_LINE_MAX];     /* the request, which the turn rewrites (its numbers as digits) */

/* The console of this board: the turn's output buffer. */
void ta_hal_write(const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (output_len == TA_MP_OUTPUT_MAX) {
            truncated = 1;
            return;
        }
        output[output_len++] = buf[i];
    }
}

int ta_hal_getc(void)
{
    return -1; /* there is no console to read: Python passes each request to ta_mp_turn */
}

void ta_hal_init(void) {}
void ta_hal_exit(int code) { (void)code; }
uint32_t ta_hal_cycles(void) { return 0; }

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
    size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3
               : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || len > n) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return len;
}

/* Python strings must be UTF-8; a model can emit half of a character. */
static void make_utf8(void)
{
    size_t i = 0;
    while (i < output_len) {
        size_t len = utf8_seq((const uint8_t *)output + i, output_len - i);
        if (len == 0) {
            output[i] = '?';
            len = 1;
        }
        i += len;
    }
}

ta_status ta_mp_turn(const uint8_t *request, size_t n)
{
    ta_status st = TA_OK;
    output_len = 0;
    truncated = 0;
    for (size_t i = 0; i < n && st == TA_OK; i++) {
        if (request[i] == '\n' || request[i] == '\r') {
            ta_put("error: a request is one line (no line breaks)\n");
            st = TA_ERR_PARSE;
        }
    }
    if (st == TA_OK && n > TA_LINE_MAX) {
        ta_put("error: the request is ");
        ta_put_u32((uint32_t)n);
        ta_put(" bytes; at most ");
        ta_put_u32(TA_LINE_MAX);
        ta_put(" fit\n");
        st = TA_ERR_TOO_LONG;
    }
    if (st == TA_OK) {
        memcpy(line, request, n);
        st = ta_agent_turn(line, n, ids, sizeof ids / sizeof ids[0]);
    }
    ta_flush();
    if (output_len > 0 && output[output_len - 1] == '\n') {
        output_len--; /* every turn ends with one */
    }
    output[output_len] = '\0';
    make_utf8();
    answer_start = output_len;
    while (answer_start > 0 && output[answer_start - 1] != '\n') {
        answer_start--;
    }
    return st;
}

const char *ta_mp_transcript(size_t *n)
{
    *n = output_len;
    return output;
}

const char *ta_mp_answer(size_t *n)
{
    *n = output_len - answer_start;
    return output + answer_start;
}

int ta_mp_truncated(void)
{
    return truncated;
}
