/* A stand-in for the Pico HAL, used only by sdk_projects.proxy_compile here, where the Pico SDK is
 * not available: every ta_hal function does nothing, so that arm-none-eabi-gcc and picolibc can
 * link the engine and the model for the RP2040's memory (2 MiB flash, 256 KiB RAM) and report
 * whether they fit. The real HAL is hal_pico.c; this program is never run. The timer slots are the
 * real ones (hal_timers.c). */
#include "ta_devices.h"
#include "ta_hal.h"

void ta_hal_init(void) {}
void ta_hal_exit(int code) { (void)code; for (;;) {} }
int ta_hal_getc(void) { ta_hal_poll(); return -1; }
void ta_hal_write(const char *buf, size_t n) { (void)buf; (void)n; }
uint32_t ta_hal_millis(void) { return 0; }
uint32_t ta_hal_cycles(void) { return 0; }
void ta_hal_led_set(int on) { (void)on; }
int ta_hal_led_get(void) { return 0; }
int ta_hal_gpio_write(int pin, int level) { (void)pin; (void)level; return -1; }
int ta_hal_gpio_read(int pin) { (void)pin; return -1; }
int32_t ta_hal_temp_decicelsius(void) { return 0; }
int32_t ta_hal_adc_read_raw(int ch) { (void)ch; return -1; }
int32_t ta_hal_adc_read_mv(int ch) { (void)ch; return -1; }
