/* Pico SDK HAL (Raspberry Pi Pico, RP2040): ta_hal.h over the SDK.
 *
 * Console: the SDK's stdio, on USB CDC and UART0 (GP0/GP1) at once (pico_enable_stdio_usb/uart in
 * CMakeLists.txt); bytes go out with putchar_raw, so '\n' is not turned into "\r\n", as on the
 * other boards. Temperature: ADC input 4, converted in integers (rp2040_temp.c). ADC channels 0..3
 * are GP26..GP29 (GP29 is VSYS/3 on a Pico), against the 3.3 V reference. Time: the SDK's
 * microsecond timer; the timer slots (hal_timers.c) run on it from ta_hal_getc's wait, never from
 * an interrupt. Pins the agent drives read back the level they drive; a pin that is only read is an
 * input (no pull). The Cortex-M0+ has no cycle counter, so cycles is 0.
 */
#include "pico/stdlib.h"
#include "hardware/adc.h"
#include "hardware/watchdog.h"

#include "pico_board.h"
#include "rp2040_temp.h"
#include "ta_devices.h"
#include "ta_hal.h"

#define CONSOLE_POLL_US 10000u /* how long a waiting read blocks before it runs the due timers */
#define TEMP_ADC_INPUT 4u
#define TEMP_SAMPLES 16u       /* averaged: one reading is noisy by a few LSB */
#define ADC_CHANNELS 4         /* inputs 0..3: GP26..GP29 */
#define ADC_FIRST_GPIO 26u
#define ADC_VREF_MV 3300

static uint32_t t0_ms;
static int led_state;
static uint32_t pins_output; /* bit n: GPn is configured as an output */
static uint32_t pins_input;  /* bit n: GPn is configured as an input */
static uint32_t adc_ready;   /* bit n: ADC input n's pin is set up for the ADC */

void ta_hal_init(void)
{
    stdio_init_all();
    adc_init();
    adc_set_temp_sensor_enabled(true);
    pico_led_init();
    ta_hal_led_set(0);
    t0_ms = to_ms_since_boot(get_absolute_time());
}

void ta_hal_exit(int code)
{
    (void)code; /* a real chip has no one to hand an exit code to: start again */
    watchdog_reboot(0, 0, 0);
    for (;;) {
        tight_loop_contents();
    }
}

int ta_hal_getc(void)
{
    for (;;) {
        ta_hal_poll();
        int c = getchar_timeout_us(CONSOLE_POLL_US);
        if (c >= 0) { /* PICO_ERROR_TIMEOUT is negative */
            return c & 0xFF;
        }
    }
}

void ta_hal_write(const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        putchar_raw(buf[i]);
    }
    stdio_flush();
}

uint32_t ta_hal_millis(void)
{
    return to_ms_since_boot(get_absolute_time()) - t0_ms;
}

uint32_t ta_hal_cycles(void)
{
    return 0;
}

void ta_hal_led_set(int on)
{
    led_state = on != 0;
    pico_led_write(led_state);
}

int ta_hal_led_get(void)
{
    return led_state;
}

int ta_hal_gpio_write(int pin, int level)
{
    if (!pico_pin_allowed(pin)) {
        return -1;
    }
    uint32_t bit = (uint32_t)1 << pin;
    if ((pins_output & bit) == 0) { /* gpio_init drives the pin low: do it only once */
        gpio_init((uint)pin);
        gpio_set_dir((uint)pin, GPIO_OUT);
        pins_output |= bit;
        pins_input &= ~bit;
        if (pin >= (int)ADC_FIRST_GPIO) { /* gpio_init took it back from the ADC */
            adc_ready &= ~((uint32_t)1 << (pin - (int)ADC_FIRST_GPIO));
        }
    }
    gpio_put((uint)pin, level != 0);
    return 0;
}

int ta_hal_gpio_read(int pin)
{
    if (!pico_pin_allowed(pin)) {
        return -1;
    }
    uint32_t bit = (uint32_t)1 << pin;
    if (((pins_output | pins_input) & bit) == 0) {
        gpio_init((uint)pin); /* an input, no pull */
        pins_input |= bit;
    }
    return gpio_get((uint)pin) ? 1 : 0;
}

int32_t ta_hal_temp_decicelsius(void)
{
    adc_select_input(TEMP_ADC_INPUT);
    uint32_t sum = 0;
    for (uint32_t i = 0; i < TEMP_SAMPLES; i++) {
        sum += adc_read();
    }
    return rp2040_temp_decicelsius(sum, TEMP_SAMPLES);
}

int32_t ta_hal_adc_read_raw(int ch)
{
    if (ch < 0 || ch >= ADC_CHANNELS) {
        return -1;
    }
    uint32_t bit = (uint32_t)1 << ch;
    if ((adc_ready & bit) == 0) { /* the pin leaves digital use: no pulls, input buffer off */
        uint pin = ADC_FIRST_GPIO + (uint)ch;
        adc_gpio_init(pin);
        pins_output &= ~((uint32_t)1 << pin);
        pins_input &= ~((uint32_t)1 << pin);
        adc_ready |= bit;
    }
    adc_select_input((uint)ch);
    return (int32_t)adc_read();
}

int32_t ta_hal_adc_read_mv(int ch)
{
    int32_t raw = ta_hal_adc_read_raw(ch);
    return raw < 0 ? -1 : (raw * ADC_VREF_MV + TA_HAL_ADC_MAX / 2) / TA_HAL_ADC_MAX;
}
