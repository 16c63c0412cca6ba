/* Test program for the plant waterer's tools file (agents/plant_tools.c) over the HAL: the timer slots
 * (firmware/boards/common/hal_timers.c) and the simulated devices (firmware/boards/sim/), on a clock the
 * program sets itself, so the pump's due time is exact (built by tests/test_plant_agent.py with the
 * runtime generated for agents/plant.toml, without ta_main.c). One line per check.
 */
#include <stdio.h>
#include <string.h>

#include "hal_test_clock.h"
#include "ta_hal.h"
#include "ta_tools.h"

/* Runs one call through the dispatcher, as the agent loop does, and prints "<label> <status> <result>". */
static void run(const char *label, int32_t tool, int32_t n_args, int32_t arg0)
{
    ta_call call;
    memset(&call, 0, sizeof call);
    call.tool = tool;
    call.n_args = n_args;
    call.arg[0] = arg0;
    call.word[0] = "";
    char result[TA_RESULT_MAX + 1] = "";
    ta_status st = ta_tools_dispatch(&call, result, sizeof result);
    printf("%s %d %s\n", label, (int)st, result);
}

int main(void)
{
    /* water 90: the pump pin (5) high until 90 s have passed, then low by itself */
    ta_test_now = 1000;
    run("water", TA_TOOL_WATER, 1, 90);
    printf("pump at start %d\n", ta_hal_gpio_read(5));
    ta_test_now = 90999;
    ta_hal_poll();
    printf("pump at 90999 %d\n", ta_hal_gpio_read(5));
    ta_test_now = 91000;
    ta_hal_poll();
    printf("pump at 91000 %d\n", ta_hal_gpio_read(5));

    /* stop before the time is up: off now, and the slot no longer fires */
    ta_test_now = 100000;
    run("water", TA_TOOL_WATER, 1, 600);
    ta_test_now = 100500;
    run("stop", TA_TOOL_STOP, 0, 0);
    printf("pump after stop %d\n", ta_hal_gpio_read(5));
    ta_hal_gpio_write(5, 1); /* someone else drives the pin: the cancelled slot must not switch it off */
    ta_test_now = 800000;
    ta_hal_poll();
    printf("pin after the cancelled time %d\n", ta_hal_gpio_read(5));

    /* the grow light (pin 6), then the readings */
    run("light on", TA_TOOL_LIGHT, 1, 0);
    run("light toggle", TA_TOOL_LIGHT, 1, 2);
    run("light toggle", TA_TOOL_LIGHT, 1, 2);
    run("light off", TA_TOOL_LIGHT, 1, 1);
    run("moisture", TA_TOOL_MOISTURE, 0, 0);
    run("battery", TA_TOOL_BATTERY, 0, 0);
    run("light on", TA_TOOL_LIGHT, 1, 0);
    run("status", TA_TOOL_STATUS, 0, 0);
    return 0;
}
