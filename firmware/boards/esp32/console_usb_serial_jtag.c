/* ESP-IDF console on the USB-Serial-JTAG controller (ESP32-S3 and ESP32-C3: the chip's own USB port).
 *
 * Unlike a UART, USB output only drains while a host reads it, so a write gives up after
 * WRITE_TIMEOUT_MS without progress and drops the rest: with nobody listening the program keeps
 * running instead of blocking forever.
 */
#include "esp_board.h"

#include "driver/usb_serial_jtag.h"
#include "driver/usb_serial_jtag_vfs.h"
#include "esp_err.h"
#include "freertos/FreeRTOS.h"

#define RX_BUFFER_BYTES 2048 /* more than the longest console line (TA_LINE_MAX) */
#define WRITE_TIMEOUT_MS 100u

void esp_console_init(void)
{
    usb_serial_jtag_driver_config_t cfg = USB_SERIAL_JTAG_DRIVER_CONFIG_DEFAULT();
    cfg.rx_buffer_size = RX_BUFFER_BYTES;
    ESP_ERROR_CHECK(usb_serial_jtag_driver_install(&cfg));
    usb_serial_jtag_vfs_use_driver(); /* the IDF's own log lines now go through the same driver */
}

int esp_console_read(uint8_t *byte, uint32_t timeout_ms)
{
    return usb_serial_jtag_read_bytes(byte, 1, pdMS_TO_TICKS(timeout_ms)) == 1;
}

void esp_console_write(const char *buf, size_t n)
{
    while (n > 0) {
        int sent = usb_serial_jtag_write_bytes(buf, n, pdMS_TO_TICKS(WRITE_TIMEOUT_MS));
        if (sent <= 0) {
            return; /* no host reading: drop the rest */
        }
        buf += sent;
        n -= (size_t)sent;
    }
}
