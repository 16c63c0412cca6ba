/* Echo test program: exercises one board's HAL through the console, using ta_hal.h only.
 *
 * It stays silent until the first line arrives (so nothing is lost before the host has opened the
 * port), then prints a banner and answers every line:
 *   <text>      -> "echo: <text>"
 *   !led 1|0    -> "led: 1|0" (read back through ta_hal_led_get)
 *   !millis     -> "millis: <n>"
 *   !cycles     -> "cycles: <n>"
 *   !temp       -> "temp: <decicelsius>"
 *   !adc <ch>   -> "adc <ch>: <raw> <mV>" (-1 -1 for a channel the board does not have)
 *   !pin <p>    -> "pin <p>: <level> at <millis>" (ta_hal_gpio_read; -1 for no such pin)
 *   !pump <p> <ms> -> "pump <p>: on at <millis>": pin p high, and a timer slot that drives it low
 *                  after <ms> ms, from the console's wait (ta_hal_poll), as a tool file would
 *   !pumped     -> "pumped: off at <millis>" once that timer has run, else "pumped: running"
 *   !exit       -> "bye", then ta_hal_exit(0)
 *   !exit <n>   -> "bye", then ta_hal_exit(n), n in 0..255 (checks that exit codes get through)
 */
#include "ta_devices.h"
#include "ta_hal.h"

#ifndef TA_BOARD_NAME
#define TA_BOARD_NAME "unknown"
#endif

#define LINE_MAX_CHARS 120  /* longer lines are cut; the rest of the line is dropped */
#define EXIT_CONSOLE_GONE 3 /* ta_hal_getc reported that the other side went away */
#define PUMP_TIMER 1        /* the timer slot of !pump */

static int pump_pin;
static int pump_done;
static uint32_t pump_off_ms;

static void put(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    ta_hal_write(s, n);
}

static void put_i32(int32_t v)
{
    char buf[12];
    int i = (int)sizeof buf;
    uint32_t u = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
    do {
        buf[--i] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u != 0u);
    if (v < 0) {
        buf[--i] = '-';
    }
    ta_hal_write(buf + i, sizeof buf - (size_t)i);
}

static void put_u32(uint32_t u)
{
    char buf[10];
    int i = (int)sizeof buf;
    do {
        buf[--i] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u != 0u);
    ta_hal_write(buf + i, sizeof buf - (size_t)i);
}

/* Reads one line without its terminator; returns its length, or -1 when the console is gone. */
static int read_line(char *line)
{
    int n = 0;
    for (;;) {
        int c = ta_hal_getc();
        if (c < 0) {
            return -1;
        }
        if (c == '\n') {
            line[n] = '\0';
            return n;
        }
        if (c != '\r' && n < LINE_MAX_CHARS) {
            line[n++] = (char)c;
        }
    }
}

/* The value of s if it is 1 to 3 decimal digits and nothing else; -1 otherwise. */
static int parse_small(const char *s)
{
    int v = 0, digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 3) {
        v = v * 10 + (*s++ - '0');
        digits++;
    }
    return digits > 0 && *s == '\0' ? v : -1;
}

/* The rest of `line` after `prefix`, or NULL if line does not start with it. */
static const char *after(const char *line, const char *prefix)
{
    while (*prefix != '\0') {
        if (*line++ != *prefix++) {
            return 0;
        }
    }
    return line;
}

/* Two small numbers "<a> <b>" into a and b; 0 ok, -1 otherwise. */
static int parse_pair(const char *s, int *a, int *b)
{
    char first[4];
    int n = 0;
    while (*s >= '0' && *s <= '9' && n < 3) {
        first[n++] = *s++;
    }
    first[n] = '\0';
    if (*s++ != ' ') {
        return -1;
    }
    *a = parse_small(first);
    *b = parse_small(s);
    return *a >= 0 && *b >= 0 ? 0 : -1;
}

/* The !pump timer's callback: runs from ta_hal_poll in the console's wait, never from an interrupt. */
static void pump_off(void *arg)
{
    ta_hal_gpio_write(*(const int *)arg, 0);
    pump_off_ms = ta_hal_millis();
    pump_done = 1;
}

static int equals(const char *a, const char *b)
{
    const char *rest = after(a, b);
    return rest != 0 && *rest == '\0';
}

int main(void)
{
    char line[LINE_MAX_CHARS + 1];
    const char *arg;
    int code, a, b;
    int greeted = 0;

    ta_hal_init();
    for (;;) {
        if (read_line(line) < 0) {
            ta_hal_exit(EXIT_CONSOLE_GONE);
        }
        if (!greeted) {
            put("tinyagent echo test on " TA_BOARD_NAME "\n");
            greeted = 1;
        }
        if (equals(line, "!exit")) {
            put("bye\n");
            ta_hal_exit(0);
        } else if ((arg = after(line, "!exit ")) != 0 && (code = parse_small(arg)) >= 0 &&
                   code <= 255) {
            put("bye\n");
            ta_hal_exit(code);
        } else if (equals(line, "!led 1") || equals(line, "!led 0")) {
            ta_hal_led_set(line[5] == '1');
            put("led: ");
            put_i32(ta_hal_led_get());
            put("\n");
        } else if (equals(line, "!millis")) {
            put("millis: ");
            put_u32(ta_hal_millis());
            put("\n");
        } else if (equals(line, "!cycles")) {
            put("cycles: ");
            put_u32(ta_hal_cycles());
            put("\n");
        } else if (equals(line, "!temp")) {
            put("temp: ");
            put_i32(ta_hal_temp_decicelsius());
            put("\n");
        } else if ((arg = after(line, "!adc ")) != 0 && (a = parse_small(arg)) >= 0) {
            put("adc ");
            put_i32(a);
            put(": ");
            put_i32(ta_hal_adc_read_raw(a));
            put(" ");
            put_i32(ta_hal_adc_read_mv(a));
            put("\n");
        } else if ((arg = after(line, "!pin ")) != 0 && (a = parse_small(arg)) >= 0) {
            put("pin ");
            put_i32(a);
            put(": ");
            put_i32(ta_hal_gpio_read(a));
            put(" at ");
            put_u32(ta_hal_millis());
            put("\n");
        } else if ((arg = after(line, "!pump ")) != 0 && parse_pair(arg, &a, &b) == 0) {
            uint32_t start = ta_hal_millis(); /* before arming: the slot is due at start + b or later */
            pump_pin = a;
            pump_done = 0;
            if (ta_hal_gpio_write(a, 1) != 0 ||
                ta_hal_timer_start(PUMP_TIMER, (uint32_t)b, pump_off, &pump_pin) != 0) {
                put("pump: error\n");
            } else {
                put("pump ");
                put_i32(a);
                put(": on at ");
                put_u32(start);
                put("\n");
            }
        } else if (equals(line, "!pumped")) {
            if (pump_done) {
                put("pumped: off at ");
                put_u32(pump_off_ms);
                put("\n");
            } else {
                put("pumped: running\n");
            }
        } else {
            put("echo: ");
            put(line);
            put("\n");
        }
    }
}
