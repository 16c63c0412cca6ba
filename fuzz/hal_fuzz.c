/* Fuzzing HAL: the console reads the fuzzer's input bytes, output is discarded (kept as a length so
 * that nothing optimises the writes away). No board, no clock: every run is reproducible. The timer
 * slots are the real ones (firmware/boards/common/hal_timers.c). */
#include "hal_fuzz.h"

#include "ta_hal.h"

static const uint8_t *in_data;
static size_t in_len, in_pos;
static int led_state;
size_t fuzz_out_bytes;

void fuzz_set_input(const uint8_t *data, size_t n)
{
    in_data = data;
    in_len = n;
    in_pos = 0;
    fuzz_out_bytes = 0;
}

void ta_hal_init(void) {}

void ta_hal_exit(int code) { (void)code; }

int ta_hal_getc(void)
{
    ta_hal_poll();
    return in_pos < in_len ? in_data[in_pos++] : -1;
}

void ta_hal_write(const char *buf, size_t n)
{
    (void)buf;
    fuzz_out_bytes += n;
}

uint32_t ta_hal_millis(void) { return 0; }

uint32_t ta_hal_cycles(void) { return 0; }

void ta_hal_led_set(int on) { led_state = on ? 1 : 0; }

int ta_hal_led_get(void) { return led_state; }

int ta_hal_gpio_write(int pin, int level)
{
    (void)level;
    return pin >= 0 && pin < 40 ? 0 : -1;
}

int ta_hal_gpio_read(int pin) { return pin >= 0 && pin < 40 ? 0 : -1; }

int32_t ta_hal_temp_decicelsius(void) { return 235; }

int32_t ta_hal_adc_read_raw(int ch) { return ch >= 0 && ch < 4 ? 2048 : -1; }

int32_t ta_hal_adc_read_mv(int ch) { return ch >= 0 && ch < 4 ? 1650 : -1; }
