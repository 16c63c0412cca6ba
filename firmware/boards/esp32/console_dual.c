/* ESP-IDF console on both of the ESP32-S3's / ESP32-C3's serial ports: the console UART (UART0,
 * behind the USB-UART bridge of the Espressif DevKits) and the USB-Serial-JTAG controller (the
 * chip's own USB port, the only one on many small boards). The IDF's own output (boot log,
 * warnings) stays on UART0.
 *
 * A read takes a byte from whichever port has one. Replies go to the ports that have sent
 * something, so an idle USB port (plugged in, not opened) never holds up the answer.
 */
#include "esp_board.h"

#include "driver/uart.h"
#include "driver/usb_serial_jtag.h"
#include "esp_err.h"
#include "freertos/FreeRTOS.h"
#include "sdkconfig.h"

#define CONSOLE_UART CONFIG_ESP_CONSOLE_UART_NUM
#define RX_BUFFER_BYTES 2048 /* more than the longest console line (TA_LINE_MAX) */
#define USJ_WRITE_TIMEOUT_MS 100u

static int heard_uart, heard_usj;

void esp_console_init(void)
{
    ESP_ERROR_CHECK(uart_driver_install(CONSOLE_UART, RX_BUFFER_BYTES, 0, 0, NULL, 0));
    usb_serial_jtag_driver_config_t cfg = USB_SERIAL_JTAG_DRIVER_CONFIG_DEFAULT();
    cfg.rx_buffer_size = RX_BUFFER_BYTES;
    ESP_ERROR_CHECK(usb_serial_jtag_driver_install(&cfg));
}

int esp_console_read(uint8_t *byte, uint32_t timeout_ms)
{
    const TickType_t half = pdMS_TO_TICKS(timeout_ms / 2u);
    /* first without waiting, so that a line arriving on either port is read at full speed */
    for (int pass = 0; pass < 2; pass++) {
        const TickType_t wait = pass == 0 ? 0 : half;
        if (usb_serial_jtag_read_bytes(byte, 1, wait) == 1) {
            heard_usj = 1;
            return 1;
        }
        if (uart_read_bytes(CONSOLE_UART, byte, 1, wait) == 1) {
            heard_uart = 1;
            return 1;
        }
    }
    return 0;
}

void esp_console_write(const char *buf, size_t n)
{
    if (heard_uart || !heard_usj) {
        uart_write_bytes(CONSOLE_UART, buf, n);
    }
    while (heard_usj && n > 0) {
        int sent = usb_serial_jtag_write_bytes(buf, n, pdMS_TO_TICKS(USJ_WRITE_TIMEOUT_MS));
        if (sent <= 0) {
            return; /* the host stopped reading: drop the rest */
        }
        buf += sent;
        n -= (size_t)sent;
    }
}
