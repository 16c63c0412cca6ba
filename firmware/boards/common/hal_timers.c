/* The timer slots of ta_hal.h, the same on every board: due times in ta_hal_millis, and callbacks
 * run by ta_hal_poll from the main loop (never from an interrupt), so a callback may use any HAL
 * function. On the emulated boards ta_hal_millis is the board's own clock (instruction time under
 * QEMU's -icount), so a timer fires in simulated time.
 */
#include "ta_hal.h"

typedef struct {
    ta_hal_timer_fn fn; /* 0: the slot is free */
    void *arg;
    uint32_t due;       /* ta_hal_millis() at which fn runs */
} timer_slot;

static timer_slot slots[TA_HAL_TIMERS];
static int polling; /* ta_hal_poll is running (a callback called it again) */

int ta_hal_timer_start(int id, uint32_t ms, ta_hal_timer_fn fn, void *arg)
{
    if (id < 0 || id >= TA_HAL_TIMERS || fn == 0 || ms > TA_HAL_TIMER_MAX_MS) {
        return -1;
    }
    slots[id].fn = 0; /* re-arming: never half old, half new */
    slots[id].arg = arg;
    slots[id].due = ta_hal_millis() + ms;
    slots[id].fn = fn;
    return 0;
}

int ta_hal_timer_cancel(int id)
{
    if (id < 0 || id >= TA_HAL_TIMERS) {
        return -1;
    }
    slots[id].fn = 0;
    return 0;
}

void ta_hal_poll(void)
{
    if (polling) {
        return;
    }
    polling = 1;
    int armed = 0;
    uint32_t now = 0;
    for (int i = 0; i < TA_HAL_TIMERS; i++) {
        if (slots[i].fn == 0) {
            continue;
        }
        if (!armed) { /* read the clock only when a slot is armed: on QEMU every device read is slow */
            now = ta_hal_millis();
            armed = 1;
        }
        /* the signed difference is right across the clock's wrap for delays up to 2^31 - 1 ms */
        if ((int32_t)(now - slots[i].due) >= 0) {
            ta_hal_timer_fn fn = slots[i].fn;
            slots[i].fn = 0;
            fn(slots[i].arg);
        }
    }
    polling = 0;
}
