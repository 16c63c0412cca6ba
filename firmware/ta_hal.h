/* tinyagent board HAL: the only thing a board provides to the portable runtime.
 *
 * Each board implements these in firmware/boards/<board>/ (startup code, linker script and one
 * hal_*.c). The portable core (engine, console, agent loop) includes no board headers and has no
 * board #ifdefs. All functions are called from one thread; none may allocate.
 */
#ifndef TA_HAL_H
#define TA_HAL_H

#include <stddef.h>
#include <stdint.h>

/* ---- life cycle ---- */
void ta_hal_init(void);          /* clocks, console, LED, timers; called once before anything else */
void ta_hal_exit(int code);      /* end the program: emulators exit with `code`, real chips reset */

/* ---- console (UART, USB CDC or the host board's pseudo-terminal) ---- */
int  ta_hal_getc(void);          /* blocking read of one byte (0..255); -1 when the console is gone */
void ta_hal_write(const char *buf, size_t n);  /* blocking write of n bytes */

/* ---- time ---- */
uint32_t ta_hal_millis(void);    /* milliseconds since ta_hal_init, wraps at 2^32 */
uint32_t ta_hal_cycles(void);    /* a free-running cycle or instruction counter, 0 if the board has none */

/* ---- the default agent's devices ---- */
void    ta_hal_led_set(int on);          /* 1 = on, 0 = off */
int     ta_hal_led_get(void);
int     ta_hal_gpio_write(int pin, int level); /* 0 ok, -1 the pin does not exist on this board */
int32_t ta_hal_temp_decicelsius(void);   /* on-chip (or simulated) temperature in 0.1 C, or: */
#define TA_HAL_NO_TEMP INT32_MIN         /* the board has no sensor (the tool then reports "n/a") */
int     ta_hal_timer_start(uint32_t seconds); /* one-shot timer; 0 ok, -1 unavailable */

#endif /* TA_HAL_H */
