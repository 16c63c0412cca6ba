/* The ESP-IDF HAL's parts that differ between the ESP32, ESP32-S3 and ESP32-C3.
 *
 * hal_esp_idf.c implements ta_hal.h over these. Each part has one source per variant, and the
 * project's components/tinyagent_hal/CMakeLists.txt compiles one of each, chosen by data rather than
 * #ifdefs: the console by the sdkconfig and the chip's capabilities (UART only on the ESP32, UART and
 * USB-Serial-JTAG together on the S3 and C3, or USB-Serial-JTAG alone when that is the IDF console),
 * the temperature by SOC_TEMP_SENSOR_SUPPORTED, and the LED kind by tinyagent's chip table
 * (host/tinyagent/targets/sdk_projects.py), which also writes the pin numbers into ta_board_config.h.
 */
#ifndef ESP_BOARD_H
#define ESP_BOARD_H

#include <stddef.h>
#include <stdint.h>

/* ---- console: console_uart.c | console_dual.c | console_usb_serial_jtag.c ---- */
void esp_console_init(void);
int esp_console_read(uint8_t *byte, uint32_t timeout_ms); /* 1 = a byte arrived, 0 = timed out */
void esp_console_write(const char *buf, size_t n);

/* ---- LED: led_gpio.c (a plain LED) | led_ws2812.c (one addressable RGB LED) ---- */
void esp_led_init(void);
void esp_led_write(int on);

/* ---- temperature: temp_tsens.c (on-chip sensor) | temp_none.c (the ESP32 has none) ---- */
void esp_temp_init(void);
int esp_temp_read(int32_t *decicelsius); /* 0 ok, -1 no sensor or no reading */

/* ---- ADC: adc_oneshot.c (ADC1, every chip) ---- */
void esp_adc_init(void);
/* One reading of ADC1 channel ch: raw (0..4095) and/or millivolts (either pointer may be 0);
 * 0 ok, -1 no such channel or no reading. */
int esp_adc_read(int ch, int32_t *raw, int32_t *mv);

/* Is `pin` in `mask` (bit n set for GPIO n): TA_ESP_PIN_MASK (pins the agent may drive) or
 * TA_ESP_INPUT_PIN_MASK (pins it may read)? */
static inline int esp_pin_allowed(uint64_t mask, int pin)
{
    return pin >= 0 && pin < 64 && ((mask >> pin) & 1u) != 0;
}

#endif /* ESP_BOARD_H */
