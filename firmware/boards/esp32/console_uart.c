/* ESP-IDF console on the console UART (UART0 on the dev kits' USB-UART bridge).
 *
 * The IDF has already set the pins and the baud rate (CONFIG_ESP_CONSOLE_UART_BAUDRATE) for its
 * own boot output; installing the driver adds an interrupt-driven receive buffer, so input that
 * arrives while the model is thinking waits there.
 */
#include "esp_board.h"

#include "driver/uart.h"
#include "esp_err.h"
#include "freertos/FreeRTOS.h"
#include "sdkconfig.h"

#define CONSOLE_UART CONFIG_ESP_CONSOLE_UART_NUM
#define RX_BUFFER_BYTES 2048 /* more than the longest console line (TA_LINE_MAX) */

void esp_console_init(void)
{
    /* tx buffer 0: writes block until the bytes are in the hardware FIFO */
    ESP_ERROR_CHECK(uart_driver_install(CONSOLE_UART, RX_BUFFER_BYTES, 0, 0, NULL, 0));
}

int esp_console_read(uint8_t *byte, uint32_t timeout_ms)
{
    return uart_read_bytes(CONSOLE_UART, byte, 1, pdMS_TO_TICKS(timeout_ms)) == 1;
}

void esp_console_write(const char *buf, size_t n)
{
    uart_write_bytes(CONSOLE_UART, buf, n);
}
