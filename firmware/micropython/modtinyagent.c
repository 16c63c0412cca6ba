/* tinyagent for MicroPython: the binding (the only file of the module that includes MicroPython).
 *
 *   import tinyagent
 *   tinyagent.register("led", lambda action: "on")   # one Python callable per tool
 *   tinyagent.ask("turn on the light")               # -> "The light is on."
 *   tinyagent.transcript()                           # -> "[led on] -> on\nThe light is on."
 *   tinyagent.tools()                                # -> ["led", "gpio", ...]
 *
 * A tool's callable gets the call's arguments (an enum word as str, a number as int; literal
 * words are left out) and returns its result; str() of it is fed back to the model. An exception
 * in a tool ends its call with "error: <type>" and is raised again when ask() returns. The
 * engine (ta_mp_bridge.c and the generated sources) includes no MicroPython headers.
 */
#include <string.h>

#include "py/mphal.h"
#include "py/obj.h"
#include "py/runtime.h"

#include "ta_hal.h"
#include "ta_mp_bridge.h"

/* Held as root pointers so the garbage collector sees them (a plain static would not be scanned). */
MP_REGISTER_ROOT_POINTER(mp_obj_t tinyagent_tools);      /* dict: tool name -> callable */
MP_REGISTER_ROOT_POINTER(mp_obj_t tinyagent_tool_error); /* an exception a tool raised during ask() */

static int busy; /* ask() is running: the engine's buffers are in use */

/* The module's clock for ta_hal.h (the rest of the module's HAL is in ta_mp_bridge.c). */
uint32_t ta_hal_millis(void)
{
    return (uint32_t)mp_hal_ticks_ms();
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
ta_status ta_mp_tool(const ta_call *call, char *result, size_t cap)
{
    const ta_tool_def *def = &ta_agent_data.tools[call->tool];
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_obj_t key = mp_obj_new_str(def->name, strlen(def->name));
        mp_map_elem_t *entry = mp_map_lookup(mp_obj_dict_get_map(tool_table()), key, MP_MAP_LOOKUP);
        if (entry == NULL) {
            static const char missing[] = "error: no Python function registered";
            put_result(result, cap, missing, sizeof missing - 1);
            nlr_pop();
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
};
static MP_DEFINE_CONST_DICT(tinyagent_module_globals, tinyagent_module_globals_table);

const mp_obj_module_t tinyagent_user_cmodule = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&tinyagent_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_tinyagent, tinyagent_user_cmodule);
