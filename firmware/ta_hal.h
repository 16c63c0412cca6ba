/* tinyagent board HAL: the only thing a board provides to the portable runtime.
 *
 * Each board implements these in firmware/boards/<board>/ (startup code, linker script and one
 * hal_*.c). The timer slots are the same on every board (firmware/boards/common/hal_timers.c, over
 * ta_hal_millis). The portable core (engine, console, agent loop) includes no board headers and has
 * no board #ifdefs. All functions are called from one thread (the main loop); none may allocate.
 * docs/boards.md lists what each board's devices are, and what the simulated ones return. The
 * default agent's own devices (the LED, the temperature sensor) are ta_devices.h.
 */
#ifndef TA_HAL_H
#define TA_HAL_H

#include <stddef.h>
#include <stdint.h>

/* ---- life cycle ---- */
void ta_hal_init(void);          /* clocks, console, LED, timers; called once before anything else */
void ta_hal_exit(int code);      /* end the program: emulators exit with `code`, real chips reset */

/* ---- console (UART, USB CDC or the host board's pseudo-terminal) ---- */
/* Blocking read of one byte (0..255); -1 when the console is gone. While it waits it calls
 * ta_hal_poll() over and over, so due timers run while the console is idle: the console's wait for
 * input is the main loop. */
int  ta_hal_getc(void);
void ta_hal_write(const char *buf, size_t n);  /* blocking write of n bytes */

/* ---- time ---- */
uint32_t ta_hal_millis(void);    /* milliseconds since ta_hal_init, wraps at 2^32 */
uint32_t ta_hal_cycles(void);    /* a free-running cycle or instruction counter, 0 if the board has none */

/* ---- digital pins ---- */
int ta_hal_gpio_write(int pin, int level); /* drive pin high (level != 0) or low; 0 ok, -1 no such pin */
int ta_hal_gpio_read(int pin);             /* its level, 0 or 1 (a pin being driven reads back what it
                                              drives); -1 no such pin */

/* ---- analog input ---- */
#define TA_HAL_ADC_MAX 4095                /* every board's reading is 12 bits: 0..4095 */
int32_t ta_hal_adc_read_raw(int ch);       /* one reading of ADC channel ch, 0..TA_HAL_ADC_MAX; -1 no such channel */
int32_t ta_hal_adc_read_mv(int ch);        /* the same reading in millivolts; -1 no such channel */

/* ---- timers: a callback, run by the main loop, when a slot's time is up ---- */
#define TA_HAL_TIMERS 4                    /* slots 0..3; the default agent's timer tool uses slot 0 */
#define TA_HAL_TIMER_MAX_MS 0x7FFFFFFFu    /* longest delay (24.8 days): due times compare across the wrap */
typedef void (*ta_hal_timer_fn)(void *arg);
/* Arm slot id to call fn(arg) once, ms milliseconds from now (ta_hal_millis); a running slot is
 * re-armed. 0 ok, -1 for an id outside 0..TA_HAL_TIMERS-1, a null fn or ms > TA_HAL_TIMER_MAX_MS. */
int  ta_hal_timer_start(int id, uint32_t ms, ta_hal_timer_fn fn, void *arg);
int  ta_hal_timer_cancel(int id);          /* 0 (whether or not it was armed), -1 for a bad id */
/* Run the callbacks of the slots that are due, in slot order, each once (a slot is free again when
 * its callback runs, so the callback may re-arm it). Never from an interrupt: ta_hal_getc calls it
 * while it waits, and a tool that waits for something may call it too. A callback must not write
 * to the console or call ta_hal_getc; a nested ta_hal_poll returns at once. */
void ta_hal_poll(void);

#endif /* TA_HAL_H */
