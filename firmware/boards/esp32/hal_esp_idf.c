/* ESP-IDF HAL (ESP32, ESP32-S3, ESP32-C3): ta_hal.h over IDF drivers.
 *
 * The console, LED and temperature sensor differ between the chips and live in their own files
 * (esp_board.h says which); so does the ADC (adc_oneshot.c). Time is esp_timer (microseconds since
 * boot); the timer slots (hal_timers.c) run on it from the main task, at each pass of ta_hal_getc's
 * wait, so a callback may use any driver. Pins the agent drives are push-pull outputs with their
 * input enabled, so they read back the level they drive; a pin that is only read is an input with
 * the IDF's reset pull-up.
 */
#include "esp_board.h"
#include "ta_board_config.h"
#include "ta_devices.h"
#include "ta_hal.h"

#include "driver/gpio.h"
#include "esp_cpu.h"
#include "esp_err.h"
#include "esp_system.h"
#include "esp_timer.h"

#define CONSOLE_POLL_MS 10u /* how long a waiting read blocks before it runs the due timers */

static int64_t t0_us;
static int led_state;
static uint64_t pins_output; /* bit n: GPIO n is configured as an output (with its input on) */
static uint64_t pins_input;  /* bit n: GPIO n is configured as an input */

void ta_hal_init(void)
{
    t0_us = esp_timer_get_time();
    esp_console_init();
    esp_led_init();
    ta_hal_led_set(0);
    esp_temp_init();
    esp_adc_init();
}

void ta_hal_exit(int code)
{
    (void)code; /* a real chip has no one to hand an exit code to: start again */
    esp_restart();
}

int ta_hal_getc(void)
{
    uint8_t byte;
    for (;;) {
        ta_hal_poll();
        if (esp_console_read(&byte, CONSOLE_POLL_MS) == 1) {
            return byte;
        }
    }
}

void ta_hal_write(const char *buf, size_t n)
{
    esp_console_write(buf, n);
}

uint32_t ta_hal_millis(void)
{
    return (uint32_t)((esp_timer_get_time() - t0_us) / 1000);
}

uint32_t ta_hal_cycles(void)
{
    return (uint32_t)esp_cpu_get_cycle_count();
}

void ta_hal_led_set(int on)
{
    led_state = on != 0;
    esp_led_write(led_state);
}

int ta_hal_led_get(void)
{
    return led_state;
}

int ta_hal_gpio_write(int pin, int level)
{
    if (!esp_pin_allowed(TA_ESP_PIN_MASK, pin)) {
        return -1;
    }
    if (((pins_output >> pin) & 1u) == 0) { /* configure once: a reset would glitch the pin low */
        gpio_reset_pin((gpio_num_t)pin);
        gpio_set_direction((gpio_num_t)pin, GPIO_MODE_INPUT_OUTPUT);
        pins_output |= 1ull << pin;
        pins_input &= ~(1ull << pin);
    }
    gpio_set_level((gpio_num_t)pin, level != 0);
    return 0;
}

int ta_hal_gpio_read(int pin)
{
    if (!esp_pin_allowed(TA_ESP_INPUT_PIN_MASK, pin)) {
        return -1;
    }
    if ((((pins_output | pins_input) >> pin) & 1u) == 0) {
        gpio_reset_pin((gpio_num_t)pin);
        gpio_set_direction((gpio_num_t)pin, GPIO_MODE_INPUT);
        pins_input |= 1ull << pin;
    }
    return gpio_get_level((gpio_num_t)pin) != 0;
}

int32_t ta_hal_temp_decicelsius(void)
{
    int32_t t;
    return esp_temp_read(&t) == 0 ? t : TA_HAL_NO_TEMP;
}

int32_t ta_hal_adc_read_raw(int ch)
{
    int32_t raw;
    return esp_adc_read(ch, &raw, 0) == 0 ? raw : -1;
}

int32_t ta_hal_adc_read_mv(int ch)
{
    int32_t mv;
    return esp_adc_read(ch, 0, &mv) == 0 ? mv : -1;
}
