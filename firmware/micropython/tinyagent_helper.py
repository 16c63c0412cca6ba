# tinyagent_helper: conveniences over the tinyagent C module, for MicroPython (copied to the
# board as tinyagent_helper.mpy, compiled by tinyagent's generator with mpy-cross).
#
#   import tinyagent_helper as th
#   th.use_default_tools(led_pin="LED")   # the default agent's tools on machine.Pin/ADC/Timer
#   th.chat()                             # a console: type a request, read the answer
#
# Without use_default_tools, a tool with no Python function runs the tools file's C handler (for the
# default agent: the same six tools, in C, over the module's machine.Pin HAL).
#
#   @th.tool("led")                       # or register your own tools one by one
#   def led(action): ...
#
# Results must read as the model learned them (the default agent's formats are below: "on",
# "23.5", "ok", "led=on temp=23.5 up=42").
import time

import tinyagent

_start_ms = time.ticks_ms()


def tool(name):
    """Decorator: run the decorated function for tool `name`."""

    def wrap(fn):
        tinyagent.register(name, fn)
        return fn

    return wrap


def chat(prompt="> ", show_calls=True):
    """Read requests from the REPL's input and print each answer; an empty line or EOF ends it."""
    while True:
        tinyagent.poll()  # the C timers that came due while the last answer was read
        try:
            line = input(prompt)
        except EOFError:
            return
        if not line.strip():
            return
        answer = tinyagent.ask(line)
        print(tinyagent.transcript() if show_calls else answer)


def _temperature():
    """The chip's temperature in C, or None when this port has no sensor it can read."""
    try:
        import esp32

        return float(esp32.mcu_temperature())  # ESP32-S2/S3/C3 and later
    except (ImportError, AttributeError):
        pass
    try:
        from machine import ADC

        volts = ADC(4).read_u16() * 3.3 / 65535  # RP2040: input 4 is the sensor
        return 27 - (volts - 0.706) / 0.001721
    except (ImportError, ValueError):
        return None


def use_default_tools(led_pin="LED", timer_id=-1):
    """Register the default agent's tools (led, gpio, temp, uptime, timer, status).

    led_pin: the LED's pin, e.g. "LED" (Pico, Pico W) or 2 (ESP32 DevKit). timer_id: the
    machine.Timer for the one-shot timer (-1 is a virtual timer; ESP32 ports need 0..3)."""
    from machine import Pin, Timer

    led = Pin(led_pin, Pin.OUT)
    led.value(0)
    pins = {}
    timer = Timer(timer_id)

    def led_state():
        return "on" if led.value() else "off"

    def temp_text():
        t = _temperature()
        return "error: no sensor" if t is None else "%.1f" % t

    def uptime_s():
        return time.ticks_diff(time.ticks_ms(), _start_ms) // 1000

    @tool("led")
    def _led(action):
        led.value(1 if action == "on" else 0 if action == "off" else 1 - led.value())
        return led_state()

    @tool("gpio")
    def _gpio(pin, level):
        if pin not in pins:
            pins[pin] = Pin(pin, Pin.OUT)
        pins[pin].value(level)
        return "ok"

    @tool("temp")
    def _temp():
        return temp_text()

    @tool("uptime")
    def _uptime():
        return str(uptime_s())

    @tool("timer")
    def _timer(seconds):
        timer.init(mode=Timer.ONE_SHOT, period=seconds * 1000, callback=lambda t: led.value(1))
        return "ok"

    @tool("status")
    def _status():
        return "led=%s temp=%s up=%d" % (led_state(), temp_text(), uptime_s())
