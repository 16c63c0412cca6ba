/* ESP-IDF HAL (ESP32, ESP32-S3, ESP32-C3): ta_hal.h over IDF drivers.
 *
 * The console, LED and temperature sensor differ between the chips and live in their own files
 * (esp_board.h says which). Time is esp_timer (microseconds since boot); the one-shot timer is an
 * esp_timer whose expiry turns the LED on. Its callback runs in the esp_timer task, so it only
 * sets a flag: the LED is switched by the main task the next time it reads or writes the console,
 * and the LED driver is never used from two tasks at once.
 */
#include "esp_board.h"
#include "ta_board_config.h"
#include "ta_hal.h"

#include "driver/gpio.h"
#include "esp_cpu.h"
#include "esp_err.h"
#include "esp_system.h"
#include "esp_timer.h"


#define CONSOLE_POLL_MS 50u /* how often a waiting read looks at the timer flag */
#define US_PER_S 1000000ull

static int64_t t0_us;
static int led_state;
static uint64_t pins_ready; /* bit n: GPIO n is configured as an output */
static esp_timer_handle_t one_shot;
static volatile int timer_fired;

static void on_timer(void *arg)
{
    (void)arg;
    timer_fired = 1;
}

static void service_timer(void)
{
    if (timer_fired) {
        timer_fired = 0;
        ta_hal_led_set(1);
    }
}

void ta_hal_init(void)
{
    t0_us = esp_timer_get_time();
    esp_console_init();
    esp_led_init();
    ta_hal_led_set(0);
    esp_temp_init();
    const esp_timer_create_args_t args = { .callback = on_timer, .name = "ta_timer" };
    ESP_ERROR_CHECK(esp_timer_create(&args, &one_shot));
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
        service_timer();
        if (esp_console_read(&byte, CONSOLE_POLL_MS) == 1) {
            return byte;
        }
    }
}

void ta_hal_write(const char *buf, size_t n)
{
    service_timer();
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
    if (((pins_ready >> pin) & 1u) == 0) { /* configure once: a reset would glitch the pin low */
        gpio_reset_pin((gpio_num_t)pin);
        gpio_set_direction((gpio_num_t)pin, GPIO_MODE_OUTPUT);
        pins_ready |= 1ull << pin;
    }
    gpio_set_level((gpio_num_t)pin, level != 0);
    return 0;
}

int32_t ta_hal_temp_decicelsius(void)
{
    int32_t t;
    return esp_temp_read(&t) == 0 ? t : TA_HAL_NO_TEMP;
}

int ta_hal_timer_start(uint32_t seconds)
{
    esp_timer_stop(one_shot); /* ESP_ERR_INVALID_STATE when it was not running: nothing to stop */
    timer_fired = 0;
    return esp_timer_start_once(one_shot, (uint64_t)seconds * US_PER_S) == ESP_OK ? 0 : -1;
}
