/* Test harness HAL: the real firmware (ta_main.c and the whole runtime) with its console on
 * stdin/stdout, for the engine, tokenizer, agent and console tests (tests/test_engine.py ...).
 *
 * It simulates the board agent.SimHal is: a steady 23.5 C, and every pin the default agent can name
 * (0..39), or with TA_TEST_TEMP=none in the environment a board with no temperature sensor. Its
 * clock is frozen at 0 so that `uptime` and `status` answers are reproducible. The
 * device path over a real pseudo-terminal is the host board's (firmware/boards/host/hal_host_sim.c).
 */
#include <stdio.h>
#include <stdlib.h>

#include "ta_hal.h"

#define HARNESS_NUM_PINS 40 /* the default agent's pins 0..39, which agent.SimHal accepts too */
#define HARNESS_TEMP_DECICELSIUS 235

static int led_state;

void ta_hal_init(void) {}

void ta_hal_exit(int code)
{
    fflush(stdout);
    exit(code);
}

int ta_hal_getc(void)
{
    fflush(stdout); /* the other side waits for the answer before it sends more */
    int c = getchar();
    return c == EOF ? -1 : c;
}

void ta_hal_write(const char *buf, size_t n)
{
    fwrite(buf, 1, n, stdout);
}

uint32_t ta_hal_millis(void) { return 0; }

uint32_t ta_hal_cycles(void) { return 0; }

void ta_hal_led_set(int on) { led_state = on ? 1 : 0; }

int ta_hal_led_get(void) { return led_state; }

int ta_hal_gpio_write(int pin, int level)
{
    (void)level;
    return pin >= 0 && pin < HARNESS_NUM_PINS ? 0 : -1;
}

int32_t ta_hal_temp_decicelsius(void)
{
    const char *t = getenv("TA_TEST_TEMP");
    return t != NULL && t[0] == 'n' ? TA_HAL_NO_TEMP : HARNESS_TEMP_DECICELSIUS;
}

int ta_hal_timer_start(uint32_t seconds)
{
    (void)seconds;
    return 0;
}
