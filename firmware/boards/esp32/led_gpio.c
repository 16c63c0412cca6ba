/* ESP-IDF LED: a plain LED on TA_ESP_LED_GPIO, lit when the pin is high (GPIO2 on ESP32 DevKits). */
#include "esp_board.h"
#include "ta_board_config.h"

#include "driver/gpio.h"

void esp_led_init(void)
{
    gpio_reset_pin(TA_ESP_LED_GPIO);
    gpio_set_direction(TA_ESP_LED_GPIO, GPIO_MODE_OUTPUT);
}

void esp_led_write(int on)
{
    gpio_set_level(TA_ESP_LED_GPIO, on != 0);
}
