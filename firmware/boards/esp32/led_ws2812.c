/* ESP-IDF LED: the one addressable WS2812 RGB LED of the ESP32-S3 and ESP32-C3 DevKits, driven by
 * the RMT peripheral through Espressif's led_strip component (2.x API; idf_component.yml pins it).
 * "On" is a dim white, so the LED is visible without being glaring.
 */
#include "esp_board.h"
#include "ta_board_config.h"

#include "esp_err.h"
#include "led_strip.h"

#define ON_LEVEL 24u              /* 0..255 per colour */
#define RMT_RESOLUTION_HZ 10000000u /* 0.1 us steps: enough for the WS2812's 0.4/0.8 us pulses */

static led_strip_handle_t strip;

void esp_led_init(void)
{
    const led_strip_config_t strip_cfg = {
        .strip_gpio_num = TA_ESP_LED_GPIO,
        .max_leds = 1,
        .led_pixel_format = LED_PIXEL_FORMAT_GRB,
        .led_model = LED_MODEL_WS2812,
    };
    const led_strip_rmt_config_t rmt_cfg = { .resolution_hz = RMT_RESOLUTION_HZ };
    ESP_ERROR_CHECK(led_strip_new_rmt_device(&strip_cfg, &rmt_cfg, &strip));
}

void esp_led_write(int on)
{
    if (on) {
        led_strip_set_pixel(strip, 0, ON_LEVEL, ON_LEVEL, ON_LEVEL);
        led_strip_refresh(strip);
    } else {
        led_strip_clear(strip);
    }
}
