/* ESP-IDF temperature on the original ESP32: it has no documented on-chip sensor in ESP-IDF v5, so
 * every reading is "not available" (ta_hal_temp_decicelsius returns TA_HAL_NO_TEMP). */
#include "esp_board.h"

void esp_temp_init(void)
{
}

int esp_temp_read(int32_t *decicelsius)
{
    (void)decicelsius;
    return -1;
}
