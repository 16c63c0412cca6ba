/* Pico W LED: wired to the CYW43439 radio chip, not to the RP2040, so it is switched through the
 * radio driver (pico_cyw43_arch_none: the radio without networking). */
#include "pico/cyw43_arch.h"

#include "pico_board.h"

void pico_led_init(void)
{
    if (cyw43_arch_init() != 0) {
        panic("tinyagent: the CYW43 radio (which drives the Pico W's LED) did not start");
    }
}

void pico_led_write(int on)
{
    cyw43_arch_gpio_put(CYW43_WL_GPIO_LED_PIN, on != 0);
}
