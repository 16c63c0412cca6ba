/* Tool handlers for the plant waterer (agents/plant.toml), over the board HAL (firmware/ta_hal.h), so
 * the same file runs on every board: the simulated ones here (host, QEMU, rp2040js) and the ESP-IDF,
 * pico-sdk and MicroPython projects. Started from `tinyagent new plant --tools-only`, then each stand-in
 * replaced by the device code below.
 *
 * Wiring (change the four defines for yours):
 *   PUMP_PIN       a relay or MOSFET for the pump: high runs it. A HAL timer slot switches it off
 *                  when the call's time is up, whatever the console is doing (ta_hal_poll runs due
 *                  timers while the console waits for input).
 *   LIGHT_PIN      the grow light's relay: high is on.
 *   MOISTURE_ADC   a resistive soil probe: 0 mV dry, the ADC's full scale soaked (calibrate
 *                  MOISTURE_DRY_RAW / MOISTURE_WET_RAW for a capacitive one, which reads the other way).
 *   BATTERY_ADC    the battery through a 1:2 divider (two equal resistors), so the ADC sees half.
 * On the simulated boards the ADC reads steady values (docs/boards.md): channel 0 620 raw, so 15%;
 * channel 2 1500 mV, so 3.00 V.
 *
 * A handler reads field i of its call (counted after the tool's name) as call->arg[i] and writes one
 * line of result, at most TA_RESULT_MAX bytes, with ta_cat and ta_cat_i32 (docs/engine.md, "Adding a
 * tool"). Build:
 *     tinyagent build --board mps2-an386 --run models/plant --tools agents/plant_tools.c
 */
#include "ta_agent.h"
#include "ta_hal.h"
#include "ta_tools.h"

#define PUMP_PIN 5
#define LIGHT_PIN 6
#define MOISTURE_ADC 0
#define BATTERY_ADC 2
#define PUMP_SLOT 1 /* a HAL timer slot of its own (the default agent's timer tool uses slot 0) */
#define MOISTURE_DRY_RAW 0
#define MOISTURE_WET_RAW TA_HAL_ADC_MAX
#define BATTERY_DIVIDER 2

/* value / scale as text with one digit per power of ten in scale: (-5, 10) -> "-0.5" */
static void cat_fixed(char *result, size_t cap, int32_t value, uint32_t scale)
{
    uint32_t a = value < 0 ? 0u - (uint32_t)value : (uint32_t)value;
    if (value < 0) {
        ta_cat(result, cap, "-");
    }
    ta_cat_i32(result, cap, (int32_t)(a / scale));
    ta_cat(result, cap, ".");
    for (uint32_t d = scale / 10u; d > 1u && a % scale < d; d /= 10u) {
        ta_cat(result, cap, "0");
    }
    ta_cat_i32(result, cap, (int32_t)(a % scale));
}

/* Soil moisture in percent, 0..100, or -1 if the ADC has no such channel. */
static int32_t moisture_percent(void)
{
    int32_t raw = ta_hal_adc_read_raw(MOISTURE_ADC);
    if (raw < 0) {
        return -1;
    }
    int32_t p = (raw - MOISTURE_DRY_RAW) * 100 / (MOISTURE_WET_RAW - MOISTURE_DRY_RAW);
    return p < 0 ? 0 : p > 100 ? 100 : p;
}

/* The battery in hundredths of a volt, or -1. */
static int32_t battery_centivolts(void)
{
    int32_t mv = ta_hal_adc_read_mv(BATTERY_ADC);
    return mv < 0 ? -1 : (mv * BATTERY_DIVIDER + 5) / 10;
}

// ---- water --------------------------------------------------------------------------------------

/* The pump's timer slot ran out: the pump stops by itself. */
static void pump_off(void *arg)
{
    (void)arg;
    ta_hal_gpio_write(PUMP_PIN, 0);
}

/* water {seconds} -> ok: Run the pump for up to 10 minutes; it switches itself off when the time is up. */
ta_status ta_tool_water(const ta_call *call, char *result, size_t cap)
{
    /* call->arg[0]: seconds, 1..600 (the call's parts, such as 1m30s, added up) */
    if (ta_hal_gpio_write(PUMP_PIN, 1) != 0 ||
        ta_hal_timer_start(PUMP_SLOT, (uint32_t)call->arg[0] * 1000u, pump_off, NULL) != 0) {
        ta_hal_gpio_write(PUMP_PIN, 0);
        return TA_ERR_TOOL;
    }
    ta_cat(result, cap, "ok");
    return TA_OK;
}

// ---- stop ---------------------------------------------------------------------------------------

/* stop -> ok: Switch the pump off now, before its time is up. */
ta_status ta_tool_stop(const ta_call *call, char *result, size_t cap)
{
    (void)call;
    ta_hal_timer_cancel(PUMP_SLOT);
    if (ta_hal_gpio_write(PUMP_PIN, 0) != 0) {
        return TA_ERR_TOOL;
    }
    ta_cat(result, cap, "ok");
    return TA_OK;
}

// ---- light --------------------------------------------------------------------------------------

/* light {action} -> {state}: Switch the grow light on, off, or toggle it. The result is its state after the call. */
ta_status ta_tool_light(const ta_call *call, char *result, size_t cap)
{
    /* call->arg[0]: action: 0 "on", 1 "off", 2 "toggle" */
    int level = call->arg[0] == 0 ? 1 : call->arg[0] == 1 ? 0 : !ta_hal_gpio_read(LIGHT_PIN);
    if (ta_hal_gpio_write(LIGHT_PIN, level) != 0) {
        return TA_ERR_TOOL;
    }
    ta_cat(result, cap, ta_hal_gpio_read(LIGHT_PIN) == 1 ? "on" : "off");
    return TA_OK;
}

// ---- moisture -----------------------------------------------------------------------------------

/* moisture -> {percent}: Read the soil moisture, in percent: 0 is dry, 100 is soaked. */
ta_status ta_tool_moisture(const ta_call *call, char *result, size_t cap)
{
    (void)call;
    int32_t p = moisture_percent();
    if (p < 0) {
        return TA_ERR_TOOL;
    }
    ta_cat_i32(result, cap, p);
    return TA_OK;
}

// ---- battery ------------------------------------------------------------------------------------

/* battery -> {volts}: Read the battery voltage, in volts. */
ta_status ta_tool_battery(const ta_call *call, char *result, size_t cap)
{
    (void)call;
    int32_t cv = battery_centivolts();
    if (cv < 0) {
        return TA_ERR_TOOL;
    }
    cat_fixed(result, cap, cv, 100u);
    return TA_OK;
}

// ---- status -------------------------------------------------------------------------------------

/* status -> light={light} moisture={moisture} battery={battery}: The grow light, the soil moisture and the battery in one line. */
ta_status ta_tool_status(const ta_call *call, char *result, size_t cap)
{
    (void)call;
    int32_t p = moisture_percent(), cv = battery_centivolts();
    if (p < 0 || cv < 0) {
        return TA_ERR_TOOL;
    }
    ta_cat(result, cap, "light=");
    ta_cat(result, cap, ta_hal_gpio_read(LIGHT_PIN) == 1 ? "on" : "off");
    ta_cat(result, cap, " moisture=");
    ta_cat_i32(result, cap, p);
    ta_cat(result, cap, " battery=");
    cat_fixed(result, cap, cv, 100u);
    return TA_OK;
}
