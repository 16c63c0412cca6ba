/* tinyagent for MicroPython: the binding (the only file of the module that includes MicroPython).
 *
 *   import tinyagent
 *   tinyagent.register("led", lambda action: "on")   # one Python callable per tool
 *   tinyagent.ask("turn on the light")               # -> "The light is on."
 *   tinyagent.transcript()                           # -> "[led on] -> on\nThe light is on."
 *   tinyagent.tools()                                # -> ["led", "gpio", ...]
 *   tinyagent.poll()                                 # runs the C timers that are due
 *   tinyagent.new()                                  # forgets the conversation (the console's !new)
 *
 * A tool's callable gets the call's arguments (an enum word as str, a number as int; literal
 * words are left out) and returns its result; str() of it is fed back to the model. An exception
 * in a tool ends its call with "error: <type>" and is raised again when ask() returns. A tool with
 * no callable runs the tools file's C handler, over ta_hal.h, whose devices this file implements
 * with the port's machine.Pin and machine.ADC. tinyagent.poll() (and every ask()) runs the C
 * timers that are due. The engine (ta_mp_bridge.c and the generated sources) includes no
 * MicroPython headers.
 */
#include <string.h>

#include "py/mphal.h"
#include "py/obj.h"
#include "py/runtime.h"

#include "ta_agent.h"
#include "ta_devices.h"
#include "ta_hal.h"
#include "ta_mp_board.h"
#include "ta_mp_bridge.h"

#define U16_TO_12_BITS 4      /* machine.ADC.read_u16 scales every port's reading to 16 bits */
#define ADC_VREF_MV 3300      /* for ports whose ADC has no read_uv (rp2) */

/* Held as root pointers so the garbage collector sees them (a plain static would not be scanned). */
MP_REGISTER_ROOT_POINTER(mp_obj_t tinyagent_tools);      /* dict: tool name -> callable */
MP_REGISTER_ROOT_POINTER(mp_obj_t tinyagent_tool_error); /* an exception a tool raised during ask() */

static int busy; /* ask() is running: the engine's buffers are in use */
static int led_state;

/* ---- ta_hal.h: the clock and the devices (the console is ta_mp_bridge.c's) ------------------------
 * Every call into MicroPython runs under nlr_push: a port without machine.Pin (unix), a pin or
 * channel it does not have, or no memory, raises, and the HAL answers -1 ("no such pin") instead
 * of jumping out of a tool handler. */

uint32_t ta_hal_millis(void)
{
    return (uint32_t)mp_hal_ticks_ms();
}

static mp_obj_t machine_attr(qstr name)
{
    mp_obj_t machine = mp_import_name(MP_QSTR_machine, mp_const_none, MP_OBJ_NEW_SMALL_INT(0));
    return mp_load_attr(machine, name);
}

/* machine.Pin(name or number[, machine.Pin.OUT]) */
static mp_obj_t make_pin(const char *name, int number, int output)
{
    mp_obj_t pin_type = machine_attr(MP_QSTR_Pin);
    mp_obj_t args[2] = { name ? mp_obj_new_str(name, strlen(name)) : MP_OBJ_NEW_SMALL_INT(number), mp_const_none };
    if (output) {
        args[1] = mp_load_attr(pin_type, MP_QSTR_OUT);
    }
    return mp_call_function_n_kw(pin_type, output ? 2 : 1, 0, args);
}

static int pin_write(const char *name, int number, int level)
{
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_obj_t pin = make_pin(name, number, 1);
        mp_call_function_1(mp_load_attr(pin, MP_QSTR_value), MP_OBJ_NEW_SMALL_INT(level != 0));
        nlr_pop();
        return 0;
    }
    return -1;
}

void ta_hal_led_set(int on)
{
    led_state = on != 0;
#ifdef TA_MP_LED_PIN_NAME
    (void)pin_write(TA_MP_LED_PIN_NAME, 0, led_state); /* a port without the pin keeps the state only */
#else
    (void)pin_write(0, TA_MP_LED_PIN_NUMBER, led_state);
#endif
}

int ta_hal_led_get(void)
{
    return led_state;
}

int ta_hal_gpio_write(int pin, int level)
{
    return pin < 0 ? -1 : pin_write(0, pin, level);
}

/* machine.Pin(pin).value(): a pin made an output reads back its level; the mode is left alone. */
int ta_hal_gpio_read(int pin)
{
    nlr_buf_t nlr;
    if (pin >= 0 && nlr_push(&nlr) == 0) {
        mp_obj_t p = make_pin(0, pin, 0);
        int level = mp_obj_get_int(mp_call_function_0(mp_load_attr(p, MP_QSTR_value))) != 0;
        nlr_pop();
        return level;
    }
    return -1;
}

/* The sensor is Python's to read: register a `temp` function (tinyagent_helper's reads it). */
int32_t ta_hal_temp_decicelsius(void)
{
    return TA_HAL_NO_TEMP;
}

/* machine.ADC(ch), or machine.ADC(machine.Pin(ch)) on ports that take a pin (esp32): one reading as
 * 12 bits, and in millivolts from read_uv where the port calibrates (esp32), else against 3.3 V. */
static int adc_read(int ch, int32_t *raw, int32_t *mv)
{
    nlr_buf_t nlr;
    if (ch < 0) {
        return -1;
    }
    mp_obj_t adc = MP_OBJ_NULL;
    if (nlr_push(&nlr) == 0) {
        adc = mp_call_function_1(machine_attr(MP_QSTR_ADC), MP_OBJ_NEW_SMALL_INT(ch));
        nlr_pop();
    } else if (nlr_push(&nlr) == 0) {
        adc = mp_call_function_1(machine_attr(MP_QSTR_ADC), make_pin(0, ch, 0));
        nlr_pop();
    } else {
        return -1;
    }
    if (nlr_push(&nlr) == 0) {
        mp_int_t u16 = mp_obj_get_int(mp_call_function_0(mp_load_attr(adc, MP_QSTR_read_u16)));
        *raw = (int32_t)(u16 >> U16_TO_12_BITS);
        mp_obj_t read_uv[2];
        mp_load_method_maybe(adc, MP_QSTR_read_uv, read_uv);
        *mv = read_uv[0] != MP_OBJ_NULL
            ? (int32_t)((mp_obj_get_int(mp_call_method_n_kw(0, 0, read_uv)) + 500) / 1000)
            : (*raw * ADC_VREF_MV + TA_HAL_ADC_MAX / 2) / TA_HAL_ADC_MAX;
        nlr_pop();
        return 0;
    }
    return -1;
}

int32_t ta_hal_adc_read_raw(int ch)
{
    int32_t raw, mv;
    return adc_read(ch, &raw, &mv) == 0 ? raw : -1;
}

int32_t ta_hal_adc_read_mv(int ch)
{
    int32_t raw, mv;
    return adc_read(ch, &raw, &mv) == 0 ? mv : -1;
}

static mp_obj_t tool_table(void)
{
    mp_obj_t table = MP_STATE_VM(tinyagent_tools);
    if (table == MP_OBJ_NULL || !mp_obj_is_type(table, &mp_type_dict)) {
        table = mp_obj_new_dict(0);
        MP_STATE_VM(tinyagent_tools) = table;
    }
    return table;
}

static int tool_index(const char *name, size_t n)
{
    for (int32_t i = 0; i < ta_agent_data.n_tools; i++) {
        const char *t = ta_agent_data.tools[i].name;
        if (strlen(t) == n && memcmp(t, name, n) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Copies text into result (at most cap - 1 bytes and a NUL), one line: line breaks become spaces. */
static void put_result(char *result, size_t cap, const char *text, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++) {
        result[k++] = text[i] == '\n' || text[i] == '\r' ? ' ' : text[i];
    }
    result[k] = '\0';
}

/* Everything that can raise (allocation included) runs under nlr_push: an exception must not jump
 * out of the engine, which would leave ask() marked as running. */
ta_status ta_mp_tool(const ta_call *call, char *result, size_t cap, ta_mp_c_tool c_tool)
{
    const ta_tool_def *def = &ta_agent_data.tools[call->tool];
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_obj_t key = mp_obj_new_str(def->name, strlen(def->name));
        mp_map_elem_t *entry = mp_map_lookup(mp_obj_dict_get_map(tool_table()), key, MP_MAP_LOOKUP);
        if (entry == NULL) {
            nlr_pop();
            if (c_tool != 0) { /* the tools file's handler; its HAL calls guard themselves */
                return c_tool(call, result, cap);
            }
            static const char missing[] = "error: no Python function registered";
            put_result(result, cap, missing, sizeof missing - 1);
            return TA_ERR_TOOL;
        }
        mp_obj_t args[TA_MAX_FIELDS];
        size_t n_args = 0;
        for (int32_t i = 0; i < call->n_args && i < def->n_fields; i++) {
            if (def->fields[i].kind == TA_FIELD_INT) {
                args[n_args++] = mp_obj_new_int(call->arg[i]);
            } else if (def->fields[i].kind == TA_FIELD_ENUM) {
                args[n_args++] = mp_obj_new_str(call->word[i], strlen(call->word[i]));
            }
        }
        mp_obj_t ret = mp_call_function_n_kw(entry->value, n_args, 0, args);
        mp_obj_t text = mp_obj_is_str(ret) ? ret : mp_call_function_1(MP_OBJ_FROM_PTR(&mp_type_str), ret);
        size_t n;
        const char *s = mp_obj_str_get_data(text, &n);
        put_result(result, cap, s, n);
        nlr_pop();
        return TA_OK;
    }
    mp_obj_t exc = MP_OBJ_FROM_PTR(nlr.ret_val);
    if (MP_STATE_VM(tinyagent_tool_error) == MP_OBJ_NULL) {
        MP_STATE_VM(tinyagent_tool_error) = exc; /* the first one is raised when ask() returns */
    }
    result[0] = '\0';
    ta_cat(result, cap, "error: ");
    ta_cat(result, cap, mp_obj_get_type_str(exc));
    return TA_ERR_TOOL;
}

/* tinyagent.ask(request) -> the agent's answer. */
static mp_obj_t tinyagent_ask(mp_obj_t request_in)
{
    size_t n;
    const char *request = mp_obj_str_get_data(request_in, &n);
    if (busy) {
        mp_raise_msg(&mp_type_RuntimeError, MP_ERROR_TEXT("tinyagent.ask is already running (a tool called it)"));
    }
    busy = 1;
    MP_STATE_VM(tinyagent_tool_error) = MP_OBJ_NULL;
    ta_hal_poll();
    ta_status st = ta_mp_turn((const uint8_t *)request, n);
    busy = 0;
    mp_obj_t exc = MP_STATE_VM(tinyagent_tool_error);
    if (exc != MP_OBJ_NULL) {
        MP_STATE_VM(tinyagent_tool_error) = MP_OBJ_NULL;
        nlr_raise(exc);
    }
    size_t answer_n;
    const char *answer = ta_mp_answer(&answer_n);
    if (st == TA_ERR_PARSE || st == TA_ERR_TOO_LONG) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("%s"), answer);
    }
    if (st != TA_OK && st != TA_ERR_TOOL) {
        mp_raise_msg_varg(&mp_type_RuntimeError, MP_ERROR_TEXT("tinyagent: %s"), ta_status_name(st));
    }
    return mp_obj_new_str(answer, answer_n);
}
static MP_DEFINE_CONST_FUN_OBJ_1(tinyagent_ask_obj, tinyagent_ask);

/* tinyagent.transcript() -> the last turn as the console prints it: call lines, then the answer. */
static mp_obj_t tinyagent_transcript(void)
{
    size_t n;
    const char *text = ta_mp_transcript(&n);
    return mp_obj_new_str(text, n);
}
static MP_DEFINE_CONST_FUN_OBJ_0(tinyagent_transcript_obj, tinyagent_transcript);

/* tinyagent.register(name, fn): fn runs the tool `name`. */
static mp_obj_t tinyagent_register(mp_obj_t name_in, mp_obj_t fn)
{
    size_t n;
    const char *name = mp_obj_str_get_data(name_in, &n);
    if (tool_index(name, n) < 0) {
        mp_raise_msg_varg(&mp_type_ValueError,
                          MP_ERROR_TEXT("this agent has no tool '%s' (tinyagent.tools() lists them)"), name);
    }
    if (!mp_obj_is_callable(fn)) {
        mp_raise_TypeError(MP_ERROR_TEXT("register(name, fn): fn must be callable"));
    }
    mp_obj_dict_store(tool_table(), name_in, fn);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(tinyagent_register_obj, tinyagent_register);

/* tinyagent.poll(): run the C timers (ta_hal_timer_start) that are due; call it from a loop. */
static mp_obj_t tinyagent_poll(void)
{
    ta_hal_poll();
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(tinyagent_poll_obj, tinyagent_poll);

/* tinyagent.new(): start a new conversation. Each ask() is the next turn of one conversation, with
 * the earlier turns in the model's context (docs/integer-contract.md, "Conversations"). */
static mp_obj_t tinyagent_new(void)
{
    if (busy) {
        mp_raise_msg(&mp_type_RuntimeError, MP_ERROR_TEXT("tinyagent.new cannot run inside ask() (a tool called it)"));
    }
    ta_agent_new();
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(tinyagent_new_obj, tinyagent_new);

/* tinyagent.tools() -> the agent's tool names, in the order of its spec. */
static mp_obj_t tinyagent_tools_list(void)
{
    mp_obj_t list = mp_obj_new_list(0, NULL);
    for (int32_t i = 0; i < ta_agent_data.n_tools; i++) {
        const char *t = ta_agent_data.tools[i].name;
        mp_obj_list_append(list, mp_obj_new_str(t, strlen(t)));
    }
    return list;
}
static MP_DEFINE_CONST_FUN_OBJ_0(tinyagent_tools_obj, tinyagent_tools_list);

static const mp_rom_map_elem_t tinyagent_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_tinyagent) },
    { MP_ROM_QSTR(MP_QSTR_ask), MP_ROM_PTR(&tinyagent_ask_obj) },
    { MP_ROM_QSTR(MP_QSTR_transcript), MP_ROM_PTR(&tinyagent_transcript_obj) },
    { MP_ROM_QSTR(MP_QSTR_register), MP_ROM_PTR(&tinyagent_register_obj) },
    { MP_ROM_QSTR(MP_QSTR_tools), MP_ROM_PTR(&tinyagent_tools_obj) },
    { MP_ROM_QSTR(MP_QSTR_poll), MP_ROM_PTR(&tinyagent_poll_obj) },
    { MP_ROM_QSTR(MP_QSTR_new), MP_ROM_PTR(&tinyagent_new_obj) },
};
static MP_DEFINE_CONST_DICT(tinyagent_module_globals, tinyagent_module_globals_table);

const mp_obj_module_t tinyagent_user_cmodule = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&tinyagent_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_tinyagent, tinyagent_user_cmodule);
