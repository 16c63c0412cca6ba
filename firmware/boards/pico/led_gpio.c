/* Pico LED: GPIO25 on the Pico, taken from the SDK's board header (PICO_DEFAULT_LED_PIN). */
#include "pico/stdlib.h"

#include "pico_board.h"

#ifndef PICO_DEFAULT_LED_PIN
#error "this PICO_BOARD has no PICO_DEFAULT_LED_PIN; set it, or build for a board with an LED"
#endif

void pico_led_init(void)
{
    gpio_init(PICO_DEFAULT_LED_PIN);
    gpio_set_dir(PICO_DEFAULT_LED_PIN, GPIO_OUT);
}

void pico_led_write(int on)
{
    gpio_put(PICO_DEFAULT_LED_PIN, on != 0);
}
