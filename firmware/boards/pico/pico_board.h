/* The Pico SDK HAL's parts that differ between boards: the LED. The project's CMakeLists.txt
 * compiles led_gpio.c (Pico: the LED on PICO_DEFAULT_LED_PIN, GPIO25) or, when the SDK's board has
 * a CYW43 radio (Pico W: the LED hangs off the radio chip), led_cyw43.c. */
#ifndef PICO_BOARD_H
#define PICO_BOARD_H

#include <stdint.h>

void pico_led_init(void);
void pico_led_write(int on);

/* GPIOs the agent may drive: GP2..GP22 and GP26..GP28, the header pins that are free. GP0/GP1 carry
 * the UART console; GP23..GP25 and GP29 are wired on the board (power-supply mode, VBUS sense, LED,
 * VSYS/3). */
#define PICO_PIN_MASK ((((uint32_t)1 << 23) - ((uint32_t)1 << 2)) | ((uint32_t)7 << 26))

static inline int pico_pin_allowed(int pin)
{
    return pin >= 0 && pin < 32 && ((PICO_PIN_MASK >> pin) & 1u) != 0;
}

#endif /* PICO_BOARD_H */
