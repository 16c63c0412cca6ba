/* Test program for the timer slots (firmware/boards/common/hal_timers.c), the simulated devices
 * (firmware/boards/sim/hal_sim_devices.c) and the default agent's timer tool, on a clock the
 * program sets itself (built by tests/test_hal.py with the generated runtime, without ta_main.c).
 *
 * It prints one line per check, "<name> <value> ...", which the test compares with what ta_hal.h
 * promises. `ta_test_now` (hal_test_clock.c) is the whole clock: ta_hal_millis() returns it.
 */
#include <stdio.h>

#include "hal_test_clock.h"
#include "ta_devices.h"
#include "ta_hal.h"
#include "ta_tools.h"

static int calls[TA_HAL_TIMERS]; /* callback runs per slot */
static int order[8], n_order;    /* the slots in the order their callbacks ran */

static void count(void *arg)
{
    int slot = *(const int *)arg;
    calls[slot]++;
    if (n_order < 8) {
        order[n_order++] = slot;
    }
}

/* a pump: pin 5 on now, off when the slot runs */
static int pump_pin = 5;
static void pump_off(void *arg) { ta_hal_gpio_write(*(const int *)arg, 0); }

/* re-arms itself twice: a periodic timer made of one-shots */
static int ticks;
static void tick(void *arg)
{
    (void)arg;
    if (++ticks < 3) {
        ta_hal_timer_start(2, 10, tick, 0);
    }
}

static void nested(void *arg)
{
    (void)arg;
    ta_hal_poll(); /* returns at once: nothing runs twice */
    calls[3]++;
}

static const int slot_ids[TA_HAL_TIMERS] = {0, 1, 2, 3};

int main(void)
{
    /* a pump switches itself off after 3 s */
    ta_test_now = 1000;
    ta_hal_gpio_write(pump_pin, 1);
    printf("start %d\n", ta_hal_timer_start(1, 3000, pump_off, &pump_pin));
    ta_test_now = 3999;
    ta_hal_poll();
    printf("pump at 3999 %d\n", ta_hal_gpio_read(pump_pin));
    ta_test_now = 4000;
    ta_hal_poll();
    printf("pump at 4000 %d\n", ta_hal_gpio_read(pump_pin));

    /* bad arguments */
    printf("bad %d %d %d %d %d %d\n", ta_hal_timer_start(-1, 1, count, 0), ta_hal_timer_start(TA_HAL_TIMERS, 1, count, 0),
           ta_hal_timer_start(0, 1, 0, 0), ta_hal_timer_start(0, TA_HAL_TIMER_MAX_MS + 1u, count, 0),
           ta_hal_timer_cancel(-1), ta_hal_timer_cancel(TA_HAL_TIMERS));

    /* cancel, re-arm, order of slots due together, callbacks run once */
    ta_test_now = 10000;
    ta_hal_timer_start(0, 50, count, (void *)&slot_ids[0]);
    ta_hal_timer_cancel(0);
    ta_hal_timer_start(1, 100, count, (void *)&slot_ids[1]);
    ta_hal_timer_start(1, 500, count, (void *)&slot_ids[1]); /* replaces the 100 ms one */
    ta_hal_timer_start(3, 500, count, (void *)&slot_ids[3]);
    ta_hal_timer_start(2, 300, count, (void *)&slot_ids[2]);
    ta_test_now = 10100;
    ta_hal_poll();
    printf("at 100 %d %d %d %d\n", calls[0], calls[1], calls[2], calls[3]);
    ta_test_now = 10600;
    ta_hal_poll();
    ta_hal_poll();
    printf("at 600 %d %d %d %d order %d %d %d\n", calls[0], calls[1], calls[2], calls[3], order[0], order[1],
           order[2]);
    printf("cancel idle %d\n", ta_hal_timer_cancel(0));

    /* across the wrap of the 32-bit clock */
    ta_test_now = 0xFFFFFF00u;
    calls[0] = 0;
    ta_hal_timer_start(0, 0x200u, count, (void *)&slot_ids[0]);
    ta_test_now = 0xFFFFFFFFu;
    ta_hal_poll();
    printf("wrap before %d\n", calls[0]);
    ta_test_now = 0x100u;
    ta_hal_poll();
    printf("wrap after %d\n", calls[0]);

    /* a callback that re-arms its own slot, and one that polls */
    ta_test_now = 0;
    ta_hal_timer_start(2, 10, tick, 0);
    for (ta_test_now = 0; ta_test_now <= 100; ta_test_now++) {
        ta_hal_poll();
    }
    calls[3] = 0;
    ta_hal_timer_start(3, 0, nested, 0);
    ta_hal_poll();
    printf("ticks %d nested %d\n", ticks, calls[3]);

    /* the simulated devices: pins read back what was written, the ADC its fixed values */
    int unwritten = ta_hal_gpio_read(7);
    int written = ta_hal_gpio_write(7, 1);
    printf("pins %d %d %d %d\n", unwritten, written, ta_hal_gpio_read(7), ta_hal_gpio_read(40));
    printf("adc");
    for (int ch = -1; ch <= 4; ch++) {
        printf(" %d:%d:%d", ch, (int)ta_hal_adc_read_raw(ch), (int)ta_hal_adc_read_mv(ch));
    }
    printf("\n");

    /* the default agent's timer tool: slot 0, the LED comes on when its seconds have passed */
    ta_call call = {0};
    char result[TA_RESULT_MAX + 1] = "";
    call.tool = TA_TOOL_TIMER;
    call.n_args = 1;
    call.arg[0] = 2;
    call.word[0] = "2";
    ta_hal_led_set(0);
    ta_test_now = 50000;
    ta_status st = ta_tools_dispatch(&call, result, sizeof result);
    ta_test_now = 51999;
    ta_hal_poll();
    int before = ta_hal_led_get();
    ta_test_now = 52000;
    ta_hal_poll();
    printf("timer tool %d %s %d %d\n", (int)st, result, before, ta_hal_led_get());
    return 0;
}
