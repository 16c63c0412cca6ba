/* ESP-IDF temperature: the on-chip sensor of the ESP32-S3 and ESP32-C3 (driver/temperature_sensor.h).
 *
 * The driver hands out degrees as a float and has no integer call, so this file holds the HAL's one
 * float: it is turned into tenths of a degree at once, and nothing else sees it.
 */
#include "esp_board.h"

#include "driver/temperature_sensor.h"
#include "esp_err.h"

#define RANGE_MIN_C (-10) /* one of the sensor's predefined ranges: -10..80 C, error < 1 C */
#define RANGE_MAX_C 80

static temperature_sensor_handle_t sensor;

void esp_temp_init(void)
{
    const temperature_sensor_config_t cfg = TEMPERATURE_SENSOR_CONFIG_DEFAULT(RANGE_MIN_C, RANGE_MAX_C);
    ESP_ERROR_CHECK(temperature_sensor_install(&cfg, &sensor));
    ESP_ERROR_CHECK(temperature_sensor_enable(sensor));
}

int esp_temp_read(int32_t *decicelsius)
{
    float celsius;
    if (temperature_sensor_get_celsius(sensor, &celsius) != ESP_OK) {
        return -1;
    }
    *decicelsius = (int32_t)(celsius * 10.0f + (celsius < 0.0f ? -0.5f : 0.5f));
    return 0;
}
