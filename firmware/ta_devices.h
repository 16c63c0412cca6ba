/* The default agent's devices: the on-board LED and the temperature sensor. Every board provides
 * them, beside the platform interface of ta_hal.h (life cycle, console, time, pins, ADC, timers),
 * so that the default tools (ta_tools_default.c) build everywhere; a user's tools may use them too.
 */
#ifndef TA_DEVICES_H
#define TA_DEVICES_H

#include <stdint.h>

void    ta_hal_led_set(int on);          /* 1 = on, 0 = off */
int     ta_hal_led_get(void);
int32_t ta_hal_temp_decicelsius(void);   /* on-chip (or simulated) temperature in 0.1 C, or: */
#define TA_HAL_NO_TEMP INT32_MIN         /* the board has no sensor (the tool then reports "n/a") */

#endif /* TA_DEVICES_H */
