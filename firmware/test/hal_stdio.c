/* Test harness HAL: the real firmware (ta_main.c and the whole runtime) with its console on
 * stdin/stdout, for the engine, tokenizer, agent and console tests (tests/test_engine.py ...).
 *
 * It simulates the board conversation.SimHal is: a steady 23.5 C, and every pin the default agent can name
 * (0..39), or with TA_TEST_TEMP=none in the environment a board with no temperature sensor; pins
 * and the ADC are the simulated boards' (../boards/sim/). Its clock is frozen at 0 so that `uptime`
 * and `status` answers are reproducible (a timer slot armed for 0 ms fires at the next read; any
 * other never does). Link it with ../boards/common/hal_timers.c. The
 * device path over a real pseudo-terminal is the host board's (firmware/boards/host/hal_host_sim.c).
 */
#include <stdio.h>
#include <stdlib.h>

#include "ta_devices.h"
#include "ta_hal.h"

#include "../boards/sim/sim_adc.h"

#define HARNESS_NUM_PINS 40 /* the default agent's pins 0..39, which conversation.SimHal accepts too */
#define HARNESS_TEMP_DECICELSIUS 235

static int led_state;
static int pin_state[HARNESS_NUM_PINS];

void ta_hal_init(void) {}

void ta_hal_exit(int code)
{
    fflush(stdout);
    exit(code);
}

int ta_hal_getc(void)
{
    fflush(stdout); /* the other side waits for the answer before it sends more */
    ta_hal_poll();
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
    if (pin < 0 || pin >= HARNESS_NUM_PINS) {
        return -1;
    }
    pin_state[pin] = level ? 1 : 0;
    return 0;
}

int ta_hal_gpio_read(int pin) { return pin >= 0 && pin < HARNESS_NUM_PINS ? pin_state[pin] : -1; }

int32_t ta_hal_temp_decicelsius(void)
{
    const char *t = getenv("TA_TEST_TEMP");
    return t != NULL && t[0] == 'n' ? TA_HAL_NO_TEMP : HARNESS_TEMP_DECICELSIUS;
}

int32_t ta_hal_adc_read_raw(int ch) { return sim_adc_raw(ch); }

int32_t ta_hal_adc_read_mv(int ch) { return sim_adc_mv(ch); }
