/* Simulated devices, for boards that have none of their own (host, riscv32-virt, lx106-sim).
 *
 * The LED and pins 0..39 (the default agent's range) are state in RAM: a pin reads the level last
 * written to it (0 before any write), as a loop-back. The temperature sensor reads a steady 23.5 C
 * and the ADC fixed values per channel (sim_adc.h), so runs are reproducible. Timers are the common
 * slots (../common/hal_timers.c) on the board's own clock. The Python side's conversation.SimHal answers
 * the default agent's tools the same way, so the reference and these boards print the same
 * results. The board's own HAL file has the console, time and exit.
 */
#include "ta_devices.h"
#include "ta_hal.h"

#include "sim_adc.h"

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

int ta_hal_gpio_read(int pin)
{
    return pin >= 0 && pin < SIM_NUM_PINS ? pin_state[pin] : -1;
}

int32_t ta_hal_temp_decicelsius(void) { return SIM_TEMP_DECICELSIUS; }

int32_t ta_hal_adc_read_raw(int ch) { return sim_adc_raw(ch); }

int32_t ta_hal_adc_read_mv(int ch) { return sim_adc_mv(ch); }
