"""The portable part of the board HAL, in C on the host: the timer slots every board shares
(firmware/boards/common/hal_timers.c), the simulated devices (firmware/boards/sim/) and the default
agent's timer tool over them, on a clock the test program sets itself, so every due time is exact.

firmware/test/hal_timers_main.c links them with the generated runtime (without ta_main.c) and prints
one line per check. The same slots on the emulated boards' own clocks are tests/test_boards.py's
`!pump` checks, through each board's console loop.
"""
from __future__ import annotations

import subprocess

import pytest

from tinyagent.agent.spec import DEFAULT_SPEC_PATH, load_spec
from tinyagent.codegen.generate import generate_sources

from c_harness import FIRMWARE, build_program

TIMERS = FIRMWARE / "boards" / "common" / "hal_timers.c"
SIM_DEVICES = FIRMWARE / "boards" / "sim" / "hal_sim_devices.c"


@pytest.fixture(scope="module")
def output(tiny_int, bpe, tmp_path_factory) -> list[str]:
    out = tmp_path_factory.mktemp("hal")
    runtime = [s for s in generate_sources(tiny_int[1], bpe, load_spec(DEFAULT_SPEC_PATH), "host", out)
               if s.name != "ta_main.c"]
    exe = build_program([*runtime, FIRMWARE / "test" / "hal_timers_main.c", FIRMWARE / "test" / "hal_test_clock.c",
                         TIMERS, SIM_DEVICES],
                        [out, FIRMWARE], out / "hal_timers")
    done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_a_pump_switches_itself_off_when_its_time_is_up(output):
    # pin 5 on at 1000 ms with a 3000 ms slot: still on 1 ms before, off at the due time
    assert output[:3] == ["start 0", "pump at 3999 1", "pump at 4000 0"]


def test_bad_arguments_are_refused(output):
    # slot -1, slot TA_HAL_TIMERS, no callback, longer than TA_HAL_TIMER_MAX_MS; cancel of -1 and 4
    assert "bad -1 -1 -1 -1 -1 -1" in output
    assert "cancel idle 0" in output


def test_cancel_rearm_and_slot_order(output):
    # slot 0 cancelled, slot 1 re-armed from 100 to 500 ms, slots 2 (300 ms) and 3 (500 ms) kept;
    # at 600 ms each ran once, in slot order, however often ta_hal_poll is called
    assert "at 100 0 0 0 0" in output
    assert "at 600 0 1 1 1 order 1 2 3" in output


def test_due_times_compare_across_the_clock_wrap(output):
    assert "wrap before 0" in output and "wrap after 1" in output


def test_a_callback_may_rearm_its_slot_and_a_nested_poll_does_nothing(output):
    assert "ticks 3 nested 1" in output


def test_simulated_pins_and_adc(output):
    # a pin reads back what was written (0 before); pin 40 does not exist; channel n reads 500(n+1) mV
    assert "pins 0 0 1 -1" in output
    assert "adc -1:-1:-1 0:620:500 1:1241:1000 2:1861:1500 3:2482:2000 4:-1:-1" in output


def test_the_default_timer_tool_turns_the_led_on_when_it_expires(output):
    # ta_tool_timer with 2 s, dispatched as the agent does: "ok", LED off until 2000 ms have passed
    assert output[-1] == "timer tool 0 ok 0 1"
