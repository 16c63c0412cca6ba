/* Simulated devices, for boards that have none of their own (host, riscv32-virt, lx106-sim).
 *
 * The LED and pins 0..39 (the default agent's range) are state in RAM, the temperature sensor reads a
 * steady 23.5 C so runs are reproducible, and a timer is accepted with nothing to fire. The Python
 * side's agent.SimHal behaves the same, so the reference and these boards print the same results.
 * The board's own HAL file has the console, time and exit.
 */
#include "ta_hal.h"

#define SIM_NUM_PINS 40
#define SIM_TEMP_DECICELSIUS 235

static int led_state;
static int pin_state[SIM_NUM_PINS];

void ta_hal_led_set(int on) { led_state = on ? 1 : 0; }

int ta_hal_led_get(void) { return led_state; }

int ta_hal_gpio_write(int pin, int level)
{
    if (pin < 0 || pin >= SIM_NUM_PINS) {
        return -1;
    }
    pin_state[pin] = level ? 1 : 0;
    return 0;
}

int32_t ta_hal_temp_decicelsius(void) { return SIM_TEMP_DECICELSIUS; }

int ta_hal_timer_start(uint32_t seconds)
{
    (void)seconds;
    return 0;
}
