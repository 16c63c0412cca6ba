/* The default agent's tool handlers, over the board HAL. They answer as conversation.SimHal does, so the
 * device and the reference agree turn for turn on the host board.
 *
 * A handler reads its arguments parsed (call->arg[i]: an enum word's index, an integer's value, a
 * duration's seconds; call->word[i] has each as text) and writes one line of result. See docs/engine.md to add your own,
 * and docs/real-boards.md for board-specific code in a tools file. Only ta_hal.h is used here, so
 * this file builds unchanged for every board.
 */
#include "ta_agent.h"
#include "ta_devices.h"
#include "ta_hal.h"
#include "ta_tools.h"

#define TIMER_SLOT 0     /* the timer tool's slot (ta_hal.h has TA_HAL_TIMERS); a tools file may use others */
#define MS_PER_S 1000u

/* The led tool's words, in the default agent's order (agents/default.toml: on, off, toggle); a spec
 * whose led tool differs is not built with this file (docs/engine.md, "Adding a tool"). */
enum { LED_ON, LED_OFF, LED_TOGGLE };

static void cat_temp(char *result, size_t cap)
{
    int32_t t = ta_hal_temp_decicelsius();
    if (t == TA_HAL_NO_TEMP) {
        ta_cat(result, cap, "n/a");
        return;
    }
    uint32_t a = t < 0 ? 0u - (uint32_t)t : (uint32_t)t;
    if (t < 0) {
        ta_cat(result, cap, "-");
    }
    ta_cat_i32(result, cap, (int32_t)(a / 10u));
    ta_cat(result, cap, ".");
    ta_cat_i32(result, cap, (int32_t)(a % 10u));
}

static void cat_uptime(char *result, size_t cap)
{
    ta_cat_i32(result, cap, (int32_t)(ta_hal_millis() / 1000u));
}

/* led on|off|toggle -> the LED's state afterwards */
ta_status ta_tool_led(const ta_call *call, char *result, size_t cap)
{
    int32_t action = call->arg[0];
    ta_hal_led_set(action == LED_ON ? 1 : action == LED_OFF ? 0 : !ta_hal_led_get());
    ta_cat(result, cap, ta_hal_led_get() ? "on" : "off");
    return TA_OK;
}

/* gpio PIN LEVEL -> ok */
ta_status ta_tool_gpio(const ta_call *call, char *result, size_t cap)
{
    int32_t pin = call->arg[0];
    if (ta_hal_gpio_write(pin, call->arg[1] != 0) != 0) {
        ta_cat(result, cap, "error: no pin ");
        ta_cat_i32(result, cap, pin);
        return TA_ERR_TOOL;
    }
    ta_cat(result, cap, "ok");
    return TA_OK;
}

/* temp -> degrees Celsius with one decimal */
ta_status ta_tool_temp(const ta_call *call, char *result, size_t cap)
{
    (void)call;
    cat_temp(result, cap);
    return TA_OK;
}

/* uptime -> whole seconds since start */
ta_status ta_tool_uptime(const ta_call *call, char *result, size_t cap)
{
    (void)call;
    cat_uptime(result, cap);
    return TA_OK;
}

/* When the timer tool's time is up: the LED comes on. */
static void timer_expired(void *arg)
{
    (void)arg;
    ta_hal_led_set(1);
}

/* timer SECONDS -> ok; when they have passed, the LED turns on (a new timer replaces the old one) */
ta_status ta_tool_timer(const ta_call *call, char *result, size_t cap)
{
    uint32_t seconds = (uint32_t)call->arg[0]; /* a duration's arg is its seconds */
    if (seconds > TA_HAL_TIMER_MAX_MS / MS_PER_S ||
        ta_hal_timer_start(TIMER_SLOT, seconds * MS_PER_S, timer_expired, 0) != 0) {
        ta_cat(result, cap, "error: no timer");
        return TA_ERR_TOOL;
    }
    ta_cat(result, cap, "ok");
    return TA_OK;
}

/* status -> led=on temp=23.5 up=42 */
ta_status ta_tool_status(const ta_call *call, char *result, size_t cap)
{
    (void)call;
    ta_cat(result, cap, ta_hal_led_get() ? "led=on temp=" : "led=off temp=");
    cat_temp(result, cap);
    ta_cat(result, cap, " up=");
    cat_uptime(result, cap);
    return TA_OK;
}
