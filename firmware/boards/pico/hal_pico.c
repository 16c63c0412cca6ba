/* Pico SDK HAL (Raspberry Pi Pico, RP2040): ta_hal.h over the SDK.
 *
 * Console: the SDK's stdio, on USB CDC and UART0 (GP0/GP1) at once (pico_enable_stdio_usb/uart in
 * CMakeLists.txt); bytes go out with putchar_raw, so '\n' is not turned into "\r\n", as on the
 * other boards. Temperature: ADC input 4, converted in integers (rp2040_temp.c). Time: the SDK's
 * microsecond timer. The Cortex-M0+ has no cycle counter, so cycles is 0. The one-shot timer is an
 * SDK alarm whose expiry turns the LED on; the alarm runs in an interrupt, so it only sets a flag
 * and the LED is switched on the next console read or write.
 */
#include "pico/stdlib.h"
#include "hardware/adc.h"
#include "hardware/watchdog.h"

#include "pico_board.h"
#include "rp2040_temp.h"
#include "ta_hal.h"

#define CONSOLE_POLL_US 50000u /* how often a waiting read looks at the timer flag */
#define TEMP_ADC_INPUT 4u
#define TEMP_SAMPLES 16u       /* averaged: one reading is noisy by a few LSB */
#define MS_PER_S 1000u

static uint32_t t0_ms;
static int led_state;
static uint32_t pins_ready; /* bit n: GPn is configured as an output */
static alarm_id_t alarm;
static volatile int timer_fired;

static int64_t on_alarm(alarm_id_t id, void *user)
{
    (void)id;
    (void)user;
    timer_fired = 1;
    return 0; /* do not reschedule */
}

static void service_timer(void)
{
    if (timer_fired) {
        timer_fired = 0;
        alarm = 0;
        ta_hal_led_set(1);
    }
}

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
        service_timer();
        int c = getchar_timeout_us(CONSOLE_POLL_US);
        if (c >= 0) { /* PICO_ERROR_TIMEOUT is negative */
            return c & 0xFF;
        }
    }
}

void ta_hal_write(const char *buf, size_t n)
{
    service_timer();
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
    if (((pins_ready >> pin) & 1u) == 0) { /* gpio_init drives the pin low: do it only once */
        gpio_init((uint)pin);
        gpio_set_dir((uint)pin, GPIO_OUT);
        pins_ready |= (uint32_t)1 << pin;
    }
    gpio_put((uint)pin, level != 0);
    return 0;
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

int ta_hal_timer_start(uint32_t seconds)
{
    if (alarm > 0) {
        cancel_alarm(alarm);
    }
    timer_fired = 0;
    alarm = add_alarm_in_ms(seconds * MS_PER_S, on_alarm, NULL, true);
    return alarm < 0 ? -1 : 0;
}
