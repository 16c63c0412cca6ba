"""Projects for the real boards (ESP32, ESP32-S3, ESP32-C3, Pico) and the MicroPython module.

Neither ESP-IDF, the Pico SDK, MicroPython's source nor a chip is available here, so this checks
what can be checked without them, with real tools wherever they exist:

- every CMake file runs in the host's `cmake -P` with the SDK's functions replaced by stand-ins
  that check their arguments (sources that exist, components that exist), so a syntax error or a
  command that does not exist fails; micropython.mk is read by the host's `make`;
- sdkconfig.defaults uses only keys that exist in ESP-IDF v5.4 (IDF_V54_KEYS below);
- the engine and model compile for each board's instruction set with the real cross-compiler and
  -Werror (and link for the Pico, with picolibc); the HALs compile against stand-in SDK headers that
  declare only what they call, with the signatures of the SDK versions named in sdk_projects.py;
- the RP2040 temperature conversion matches the datasheet formula (exact rationals) for every reading;
- the MicroPython module's compute side runs on the host and agrees with the Python reference agent,
  includes no MicroPython header, and its binding has the fixed registration sequence; mpy-cross
  compiles the helper.
"""
from __future__ import annotations

import ctypes
import json
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from tinyagent.agent.conversation import Conversation, TokenClasses
from tinyagent.agent.grammar import grammar_from_spec
from tinyagent.agent.spec import load_spec
from tinyagent.codegen.generate import generate_sources
from tinyagent.errors import EXIT_BAD_INPUT, EXIT_DOES_NOT_FIT, EXIT_TOOL_MISSING, TinyAgentError
from tinyagent.integer.reference import Reference
from tinyagent.targets import sdk_projects as sp
from tinyagent.targets.boards import FIRMWARE_DIR, REPO_ROOT, load_board

ESP_BOARDS = ["esp32", "esp32s3", "esp32c3"]
REAL_BOARDS = [*ESP_BOARDS, "pico"]
SPEC = load_spec(REPO_ROOT / "agents" / "default.toml")

# Every sdkconfig key the ESP projects may set, all present in ESP-IDF v5.4. Taken from that
# release's Kconfig files: components/esp_system/Kconfig (ESP_CONSOLE_*, ESP_MAIN_TASK_STACK_SIZE,
# ESP_TASK_WDT_*), components/esp_system/port/soc/<chip>/Kconfig.cpu (ESP_DEFAULT_CPU_FREQ_MHZ_*),
# components/esptool_py/Kconfig.projbuild (ESPTOOLPY_FLASHSIZE_*), components/log/Kconfig.level
# (LOG_DEFAULT_LEVEL_*), components/bootloader/Kconfig.projbuild (BOOTLOADER_LOG_LEVEL_*),
# components/partition_table/Kconfig.projbuild (PARTITION_TABLE_*), the top-level Kconfig
# (IDF_TARGET, COMPILER_OPTIMIZATION_*). Chip-specific keys map to the targets that have them.
IDF_V54_KEYS: dict[str, tuple[str, ...]] = {
    "CONFIG_IDF_TARGET": ("esp32", "esp32s3", "esp32c3"),
    "CONFIG_ESPTOOLPY_FLASHSIZE_4MB": ("esp32", "esp32s3", "esp32c3"),
    "CONFIG_ESPTOOLPY_FLASHSIZE_8MB": ("esp32", "esp32s3", "esp32c3"),
    "CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_240": ("esp32", "esp32s3"),
    "CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_160": ("esp32", "esp32s3", "esp32c3"),
    "CONFIG_COMPILER_OPTIMIZATION_PERF": ("esp32", "esp32s3", "esp32c3"),
    "CONFIG_ESP_CONSOLE_UART_DEFAULT": ("esp32", "esp32s3", "esp32c3"),
    "CONFIG_ESP_CONSOLE_UART_BAUDRATE": ("esp32", "esp32s3", "esp32c3"),
    "CONFIG_ESP_CONSOLE_SECONDARY_NONE": ("esp32s3", "esp32c3"),   # chips with USB-Serial-JTAG only
    "CONFIG_LOG_DEFAULT_LEVEL_WARN": ("esp32", "esp32s3", "esp32c3"),
    "CONFIG_BOOTLOADER_LOG_LEVEL_WARN": ("esp32", "esp32s3", "esp32c3"),
    "CONFIG_ESP_MAIN_TASK_STACK_SIZE": ("esp32", "esp32s3", "esp32c3"),
    "CONFIG_ESP_TASK_WDT_CHECK_IDLE_TASK_CPU0": ("esp32", "esp32s3", "esp32c3"),
    "CONFIG_PARTITION_TABLE_CUSTOM": ("esp32", "esp32s3", "esp32c3"),
    "CONFIG_PARTITION_TABLE_CUSTOM_FILENAME": ("esp32", "esp32s3", "esp32c3"),
}
# ESP-IDF v5.4 components the HAL and the engine may require (components/<name> in that release).
IDF_V54_COMPONENTS = {"tinyagent", "tinyagent_hal", "esp_driver_gpio", "esp_driver_uart",
                      "esp_driver_usb_serial_jtag", "esp_driver_tsens", "esp_timer", "esp_adc"}


def needs(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(f"not installed here: {', '.join(missing)}" + " (setup.sh installs it)")


@pytest.fixture(scope="module")
def engine(tiny_int, bpe, tmp_path_factory):
    """board -> the generated engine sources (one tiny model for all boards)."""
    _, int_model = tiny_int
    out = tmp_path_factory.mktemp("engine")
    return {b: generate_sources(int_model, bpe, SPEC, b, out / b) for b in [*REAL_BOARDS, "host"]}


@pytest.fixture(scope="module")
def projects(engine, tmp_path_factory):
    out = tmp_path_factory.mktemp("projects")
    made = {b: sp.generate_project(load_board(b), engine[b], out / b, model_info={"agent": "default"})
            for b in REAL_BOARDS}
    for b in [*REAL_BOARDS, "host"]:
        made[f"{b}-mp"] = sp.generate_project(load_board(b), engine[b], out / f"{b}-mp", model_info={},
                                              kind="micropython")
    return made


# ---- CMake files under stand-ins for the SDKs' functions --------------------------------------------

# Stand-ins for ESP-IDF's and the Pico SDK's CMake functions and for the project commands that
# `cmake -P` cannot run. Each checks what it is given; anything else the files call must be a
# command CMake's script mode knows.
CMAKE_STAND_INS = r"""
cmake_minimum_required(VERSION 3.16)
function(_check_files kind)
  foreach(f ${ARGN})
    if(NOT IS_ABSOLUTE "${f}")
      set(f "${CMAKE_CURRENT_LIST_DIR}/${f}")
    endif()
    if(NOT EXISTS "${f}")
      message(FATAL_ERROR "${kind} ${f} does not exist")
    endif()
  endforeach()
endfunction()
function(project)
  message(STATUS "project ${ARGN}")
endfunction()
function(idf_component_register)
  cmake_parse_arguments(A "" "" "SRCS;INCLUDE_DIRS;PRIV_INCLUDE_DIRS;REQUIRES;PRIV_REQUIRES" ${ARGN})
  if(A_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "idf_component_register: unknown arguments ${A_UNPARSED_ARGUMENTS}")
  endif()
  _check_files(source ${A_SRCS})
  _check_files(folder ${A_INCLUDE_DIRS} ${A_PRIV_INCLUDE_DIRS})
  foreach(r ${A_REQUIRES} ${A_PRIV_REQUIRES})
    if(NOT r IN_LIST KNOWN_COMPONENTS)
      message(FATAL_ERROR "idf_component_register: no component ${r}")
    endif()
  endforeach()
  message(STATUS "component SRCS=${A_SRCS}")
  set(COMPONENT_LIB "__idf_stand_in" PARENT_SCOPE)
endfunction()
function(target_compile_definitions target scope)
  message(STATUS "definitions ${target} ${scope} ${ARGN}")
endfunction()
function(set_source_files_properties file)
  _check_files(source ${file})
  message(STATUS "properties ${file} ${ARGN}")
endfunction()
function(add_executable target)
  _check_files(source ${ARGN})
  message(STATUS "executable ${target}")
endfunction()
function(add_library target kind)
  message(STATUS "library ${target} ${kind}")
endfunction()
function(target_sources target scope)
  _check_files(source ${ARGN})
  message(STATUS "sources ${ARGN}")
endfunction()
function(target_include_directories target scope)
  _check_files(folder ${ARGN})
endfunction()
function(target_link_libraries target)
  message(STATUS "links ${ARGN}")
endfunction()
foreach(f pico_sdk_init pico_enable_stdio_usb pico_enable_stdio_uart pico_set_program_name
          pico_set_program_description pico_add_extra_outputs)
  cmake_language(EVAL CODE "function(${f})\n message(STATUS \"${f} \${ARGN}\")\nendfunction()")
endforeach()
"""


def run_cmake(tmp_path: Path, includes: list[Path], variables: dict[str, str], env=None) -> str:
    script = tmp_path / "check.cmake"
    lines = [CMAKE_STAND_INS]
    lines += [f'set({k} "{v}")' for k, v in variables.items()]
    lines += [f'include("{p}")' for p in includes]
    script.write_text("\n".join(lines) + "\n")
    done = subprocess.run(["cmake", "-P", str(script)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.mark.parametrize("board", ESP_BOARDS)
def test_esp_idf_cmake_files_run_under_stand_ins(board, projects, tmp_path):
    needs("cmake")
    root = projects[board].root
    idf = tmp_path / "idf-stand-in" / "tools" / "cmake"
    idf.mkdir(parents=True)
    (idf / "project.cmake").write_text("# stand-in for ESP-IDF's project.cmake\n")
    chip = sp.ESP_CHIPS[board]
    config = {"KNOWN_COMPONENTS": ";".join(sorted(IDF_V54_COMPONENTS)),
              "CONFIG_SOC_USB_SERIAL_JTAG_SUPPORTED": "1" if chip.usb_serial_jtag else "",
              "CONFIG_SOC_TEMP_SENSOR_SUPPORTED": "" if board == "esp32" else "1"}
    env = {"IDF_PATH": str(tmp_path / "idf-stand-in"), "PATH": "/usr/bin:/bin"}
    out = run_cmake(tmp_path, [root / "CMakeLists.txt", root / "main" / "CMakeLists.txt",
                               root / "components" / "tinyagent" / "CMakeLists.txt"], config, env)
    assert "main=ta_app_main" in out
    assert "definitions __idf_stand_in PRIVATE TA_BOARD_ESP_IDF=1" in out
    # the HAL component: the sources the chip's configuration selects all exist
    for usj_console in ("", "1"):
        out = run_cmake(tmp_path, [root / "components" / "tinyagent_hal" / "CMakeLists.txt"],
                        {**config, "CONFIG_ESP_CONSOLE_USB_SERIAL_JTAG": usj_console}, env)
        srcs = re.search(r"component SRCS=(\S+)", out).group(1).split(";")
        expect = ("console_usb_serial_jtag.c" if usj_console else
                  "console_dual.c" if chip.usb_serial_jtag else "console_uart.c")
        assert srcs == ["hal_esp_idf.c", "hal_timers.c", "adc_oneshot.c", expect,
                        "led_ws2812.c" if chip.led_kind == "ws2812" else "led_gpio.c",
                        "temp_none.c" if board == "esp32" else "temp_tsens.c"]


def test_pico_cmake_files_run_under_stand_ins(projects, tmp_path):
    needs("cmake")
    root = projects["pico"].root
    sdk = tmp_path / "pico-sdk-stand-in"
    sdk.mkdir()
    (sdk / "pico_sdk_init.cmake").write_text(f'set(PICO_SDK_VERSION_STRING "{sp.PICO_SDK_VERSION}")\n')
    env = {"PICO_SDK_PATH": str(sdk), "PATH": "/usr/bin:/bin"}
    for pico_w in ("", "1"):
        out = run_cmake(tmp_path, [root / "CMakeLists.txt"], {"PICO_CYW43_SUPPORTED": pico_w}, env)
        assert ("hal/led_cyw43.c" in out) == bool(pico_w) and ("hal/led_gpio.c" in out) != bool(pico_w)
        for call in ("pico_sdk_init", "pico_enable_stdio_usb tinyagent;1", "pico_enable_stdio_uart tinyagent;1",
                     "pico_add_extra_outputs tinyagent", "definitions tinyagent PRIVATE TA_BOARD_PICO_SDK=1"):
            assert call in out
    # without the SDK, the import file says what to set
    script = tmp_path / "no-sdk.cmake"
    script.write_text(f'include("{root / "pico_sdk_import.cmake"}")\n')
    done = subprocess.run(["cmake", "-P", str(script)], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert done.returncode != 0 and "set PICO_SDK_PATH" in done.stderr


@pytest.mark.parametrize("board", [*REAL_BOARDS, "host"])
def test_micropython_build_files_name_existing_sources(board, projects, tmp_path):
    needs("cmake", "make")
    root = projects[f"{board}-mp"].root
    out = run_cmake(tmp_path, [root / "micropython.cmake"], {})
    assert "links INTERFACE;usermod_tinyagent" in out
    makefile = tmp_path / "check.mk"
    makefile.write_text(f"USERMOD_DIR := {root / 'tinyagent'}\ninclude $(USERMOD_DIR)/micropython.mk\n"
                        "print:\n\t@echo C=$(SRC_USERMOD_C)\n\t@echo LIB=$(SRC_USERMOD_LIB_C)\n"
                        "\t@echo FLAGS=$(CFLAGS_USERMOD)\n")
    done = subprocess.run(["make", "-s", "-f", str(makefile), "print"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    values = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert values["C"].split() == [str(root / "tinyagent" / "modtinyagent.c")]
    assert "-DTA_BOARD_MICROPYTHON=1" in values["FLAGS"].split()
    assert "definitions usermod_tinyagent INTERFACE TA_BOARD_MICROPYTHON=1" in out
    lib = values["LIB"].split()
    assert all(Path(f).is_file() for f in lib) and len(lib) >= 10
    assert not any(Path(f).name in ("ta_main.c", "ta_tools_default.c") for f in lib)


# ---- sdkconfig.defaults ---------------------------------------------------------------------------

def sdkconfig(root: Path) -> dict[str, str]:
    pairs = [ln.split("=", 1) for ln in (root / "sdkconfig.defaults").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    return {k: v for k, v in pairs}


@pytest.mark.parametrize("board", ESP_BOARDS)
def test_sdkconfig_defaults_use_only_keys_of_the_targeted_idf(board, projects):
    config = sdkconfig(projects[board].root)
    for key in config:
        assert key in IDF_V54_KEYS, f"{key} is not in the ESP-IDF v5.4 key list"
        assert board in IDF_V54_KEYS[key], f"{key} does not exist for {board}"
    b = load_board(board)
    assert config["CONFIG_IDF_TARGET"] == f'"{board}"'
    assert config[f"CONFIG_ESPTOOLPY_FLASHSIZE_{b.flash_bytes >> 20}MB"] == "y"
    assert config[f"CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_{sp.ESP_CHIPS[board].cpu_mhz}"] == "y"
    assert config["CONFIG_ESP_CONSOLE_UART_BAUDRATE"] == "115200"
    assert config["CONFIG_ESP_MAIN_TASK_STACK_SIZE"] == str(b.stack_bytes)
    assert "CONFIG_PARTITION_TABLE_CUSTOM" not in config   # a tiny model fits the default 1 MiB app


@pytest.mark.parametrize("board", ESP_BOARDS)
def test_sdkconfig_defaults_keep_cpu0s_idle_task_out_of_the_task_watchdog(board, projects):
    """The console loop runs in the main task on CPU0, and a long answer keeps CPU0 busy for seconds:
    with the IDF's default (y) the task watchdog reports CPU0's idle task as starved every few seconds
    mid-answer. The key list above only allows the line; this requires it, with its value."""
    config = sdkconfig(projects[board].root)
    assert config.get("CONFIG_ESP_TASK_WDT_CHECK_IDLE_TASK_CPU0") == "n", \
        "sdkconfig.defaults lost the line that keeps CPU0's idle task out of the task watchdog"
    text = (projects[board].root / "sdkconfig.defaults").read_text()
    before = text.split("CONFIG_ESP_TASK_WDT_CHECK_IDLE_TASK_CPU0=n")[0].splitlines()[-1]
    assert before.startswith("#") and "idle task" in before   # says why, for whoever edits the file


def test_a_model_too_big_for_the_default_app_partition_gets_its_own_table(engine, tmp_path):
    board = load_board("esp32")
    big = 2 << 20   # 2 MiB of engine and model
    project = sp.generate_project(board, engine["esp32"], tmp_path / "p", model_info={"flash_bytes": big})
    config = sdkconfig(project.root)
    assert config["CONFIG_PARTITION_TABLE_CUSTOM"] == "y"
    assert config["CONFIG_PARTITION_TABLE_CUSTOM_FILENAME"] == '"partitions.csv"'
    rows = [ln.split(",") for ln in (project.root / "partitions.csv").read_text().splitlines()
            if ln and not ln.startswith("#")]
    factory = next(r for r in rows if r[0].strip() == "factory")
    assert int(factory[3], 16) == sp.IDF_APP_OFFSET
    assert int(factory[3], 16) + int(factory[4], 16) == board.flash_bytes

    # regenerating with a small model drops the table and sets the old sdkconfig aside
    (project.root / "sdkconfig").write_text("# made by a build\n")
    sp.generate_project(board, engine["esp32"], project.root, model_info={"flash_bytes": 1000})
    assert not (project.root / "partitions.csv").exists()
    assert not (project.root / "sdkconfig").exists() and (project.root / "sdkconfig.old").exists()

    with pytest.raises(TinyAgentError) as e:
        sp.generate_project(board, engine["esp32"], tmp_path / "q", model_info={"flash_bytes": 5 << 20})
    assert e.value.code == EXIT_DOES_NOT_FIT and "\n" not in str(e.value) and "esp32" in str(e.value)


@pytest.mark.parametrize("board", ESP_BOARDS)
def test_esp_project_holds_the_chip_data(board, projects):
    root = projects[board].root
    chip = sp.ESP_CHIPS[board]
    config_h = (root / "components" / "tinyagent_hal" / "ta_board_config.h").read_text()
    assert f"#define TA_ESP_LED_GPIO {chip.led_gpio} " in config_h
    mask = int(re.search(r"#define TA_ESP_PIN_MASK 0x([0-9a-f]+)ull", config_h).group(1), 16)
    assert [p for p in range(64) if mask >> p & 1] == list(chip.pins)
    assert chip.led_gpio not in chip.pins
    manifest = (root / "components" / "tinyagent_hal" / "idf_component.yml").read_text()
    assert ("espressif/led_strip" in manifest) == (chip.led_kind == "ws2812")
    assert sp.read_project_manifest(root)["board"] == board
    assert projects[board].build_commands == (("idf.py", "build"),)


def test_generate_project_refuses_boards_and_kinds_it_cannot_make(engine, tmp_path):
    with pytest.raises(TinyAgentError) as e:
        sp.generate_project(load_board("mps2-an386"), engine["host"], tmp_path / "x", model_info={})
    assert e.value.code == EXIT_BAD_INPUT and "mps2-an386" in str(e.value)
    with pytest.raises(TinyAgentError) as e:
        sp.generate_project(load_board("pico"), engine["pico"], tmp_path / "x", model_info={}, kind="esp-idf")
    assert "pico" in str(e.value) and "esp-idf" in str(e.value)


# ---- a tools file with code for each SDK ------------------------------------------------------------

# The default tools with a section per SDK: each build defines its macro (a section for no known
# build is an #error), and each SDK's section includes a header only that SDK has.
SECTIONED_TOOLS = """// tinyagent: requires esp_driver_gpio esp_adc
// tinyagent: pico-libs hardware_pwm hardware_adc
#if defined(TA_BOARD_ESP_IDF)
#include "driver/gpio.h"
#include "esp_adc/adc_oneshot.h"
#elif defined(TA_BOARD_PICO_SDK)
#include "hardware/pwm.h"
#elif defined(TA_BOARD_MICROPYTHON) || defined(TA_BOARD_SIM)
#include "ta_hal.h"
#else
#error "no section of this tools file is for this build"
#endif
"""


@pytest.fixture(scope="module")
def sectioned_tools(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tools") / "pump_tools.c"
    path.write_text(SECTIONED_TOOLS + (FIRMWARE_DIR / "ta_tools_default.c").read_text())
    return path


@pytest.mark.parametrize("board, micropython", [("esp32s3", False), ("pico", False), ("esp32c3", True)])
def test_a_tools_file_with_sdk_includes_generates(board, micropython, tiny_run, sectioned_tools, tmp_path):
    """--generate-only with a tools file whose SDK section includes driver/gpio.h: the proxy compile
    puts stand-in handlers in its place and says so in one line; the project holds the real file."""
    from tinyagent.targets.build import build

    b = load_board(board)
    needs(b.toolchain.compiler)
    r = build(board, tmp_path / "out", tiny_run, tools_c=str(sectioned_tools), generate_only=True,
              micropython=micropython)
    assert r.generated_only and r.project is not None
    table = r.plan.table()
    if micropython:   # the MicroPython section includes nothing the SDK alone has: compiled as it is
        assert r.plan.tools_note == "" and "pump_tools.c" not in table
        assert (r.project / "tinyagent" / "engine" / sp.MP_TOOLS_FILE).read_text() == sectioned_tools.read_text()
        return
    header = "driver/gpio.h" if board != "pico" else "hardware/pwm.h"
    note = r.plan.tools_note
    assert "\n" not in note and "pump_tools.c" in note and header in note and "not compiled here" in note
    assert note in table.splitlines()[-1]
    where = r.project / ("components/tinyagent" if board != "pico" else "tinyagent")
    assert (where / "pump_tools.c").read_text() == sectioned_tools.read_text()


def test_host_micropython_build_generates_or_says_what_is_missing(tiny_run, tmp_path, monkeypatch):
    """`tinyagent build --board host --micropython` (docs/real-boards.md: the module for the unix port):
    --generate-only writes the project with the host's figures; a build without MICROPY_DIR is one line,
    exit 5, naming it and the tag to clone."""
    from click.testing import CliRunner

    from tinyagent.cli import main

    monkeypatch.delenv("MICROPY_DIR", raising=False)
    args = ["build", "--board", "host", "--micropython", "--run", str(tiny_run)]
    r = CliRunner().invoke(main, [*args, "--generate-only", "--out", str(tmp_path / "g")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "g" / "project" / "tinyagent" / "modtinyagent.c").is_file()
    assert sp.HOST_MODULE_NOTE in r.output and "not a real board" not in r.output
    r = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "b")])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == EXIT_TOOL_MISSING and len(lines) == 1, r.output
    assert "MICROPY_DIR is not set" in lines[0] and f"git clone -b {sp.MICROPYTHON_VERSION}" in lines[0]


def test_readmes_name_what_the_sdk_builds_need(projects):
    """The steps that a real pico-sdk 2.x / MicroPython build needed and the READMEs left out."""
    pico = (projects["pico"].root / "README.md").read_text()
    for said in ("git submodule update --init lib/cyw43-driver", "-DPICO_BOARD=pico_w", "picotool",
                 "-Dpicotool_DIR=", "libstdc++-arm-none-eabi-newlib", "cstdlib: No such file or directory"):
        assert said in pico, said
    assert pico.index("lib/cyw43-driver") < pico.index("-DPICO_BOARD=pico_w")   # the submodule first
    assert sp.MICROPYTHON_VERSION == "v1.28.0"   # a released tag (there is no v1.29.0)
    for kind in ("host-mp", "pico-mp", "esp32-mp"):
        text = (projects[kind].root / "README.md").read_text()
        assert "git clone -b v1.28.0 https://github.com/micropython/micropython" in text, kind


def test_declared_requirements_are_in_the_generated_cmake_files(engine, sectioned_tools, tmp_path):
    needs("cmake")
    esp = sp.generate_project(load_board("esp32s3"), [*engine["esp32s3"][:-1], sectioned_tools], tmp_path / "e",
                              model_info={})
    esp_cmake = (esp.root / "components" / "tinyagent" / "CMakeLists.txt").read_text()
    assert "PRIV_REQUIRES tinyagent_hal esp_driver_gpio esp_adc)" in esp_cmake
    assert '"pump_tools.c"' in esp_cmake
    pico = sp.generate_project(load_board("pico"), [*engine["pico"][:-1], sectioned_tools], tmp_path / "p",
                               model_info={})
    pico_cmake = (pico.root / "CMakeLists.txt").read_text()
    assert "target_link_libraries(tinyagent pico_stdlib hardware_adc hardware_watchdog hardware_pwm)" in pico_cmake
    # and they run: the IDF stand-in checks that each required component exists in v5.4
    idf = tmp_path / "idf-stand-in" / "tools" / "cmake"
    idf.mkdir(parents=True)
    (idf / "project.cmake").write_text("# stand-in\n")
    out = run_cmake(tmp_path, [esp.root / "components" / "tinyagent" / "CMakeLists.txt"],
                    {"KNOWN_COMPONENTS": ";".join(sorted(IDF_V54_COMPONENTS))},
                    {"IDF_PATH": str(tmp_path / "idf-stand-in"), "PATH": "/usr/bin:/bin"})
    assert "pump_tools.c" in out
    sdk = tmp_path / "pico-sdk-stand-in"
    sdk.mkdir()
    (sdk / "pico_sdk_init.cmake").write_text(f'set(PICO_SDK_VERSION_STRING "{sp.PICO_SDK_VERSION}")\n')
    out = run_cmake(tmp_path, [pico.root / "CMakeLists.txt"], {"PICO_CYW43_SUPPORTED": ""},
                    {"PICO_SDK_PATH": str(sdk), "PATH": "/usr/bin:/bin"})
    assert "links pico_stdlib;hardware_adc;hardware_watchdog;hardware_pwm" in out


def test_the_same_tools_file_builds_for_a_board_here(tiny_int, bpe, sectioned_tools, tmp_path):
    """The boards built here define TA_BOARD_SIM: the file's SDK sections are left out."""
    from tinyagent.targets.toolchain import compile_and_link

    host = load_board("host")
    sources = generate_sources(tiny_int[1], bpe, SPEC, "host", tmp_path / "src", user_tools_c=sectioned_tools)
    art = compile_and_link(host, sources, [tmp_path / "src"], tmp_path / "obj")
    assert art.elf.is_file()


@pytest.mark.parametrize("line, says", [
    ("// tinyagent: require esp_adc", ["'require'", "`// tinyagent: requires NAME ...`",
                                       "`// tinyagent: pico-libs NAME ...`"]),
    ("// tinyagent:", ["followed by nothing"]),
    ("// tinyagent: requires", ["names no ESP-IDF components", "esp_adc"]),
    ("// tinyagent: pico-libs", ["names no Pico SDK libraries", "hardware_adc"]),
    ("// tinyagent: requires esp_adc ${EVIL}", ["'${EVIL}'", "not a component or library name"]),
])
def test_a_bad_requirement_line_is_one_line_naming_it(line, says, tmp_path):
    tools = tmp_path / "bad_tools.c"
    tools.write_text(f"/* my tools */\n{line}\n" + (FIRMWARE_DIR / "ta_tools_default.c").read_text())
    with pytest.raises(TinyAgentError) as e:
        sp.tools_file_needs(tools)
    msg = str(e.value)
    assert e.value.code == EXIT_BAD_INPUT and "\n" not in msg and f"{tools}:2:" in msg
    assert all(s in msg for s in says), msg


@pytest.mark.parametrize("kind", ["esp32s3", "pico", "pico-mp"])
def test_generated_readme_describes_the_agent_that_was_built(kind, projects):
    text = (projects[kind].root / "README.md").read_text()
    for form in sp.tool_forms(projects[kind].root.rglob("ta_tools.h")):   # led {on|off|toggle}, ...
        assert f"\n- `{form}`\n" in text, form
    assert "\n- `led {on|off|toggle}`\n" in text and "\n- `timer " in text
    assert "ta_tools_default.c" in text and "tinyagent's default tools" in text
    macro = {"esp32s3": "TA_BOARD_ESP_IDF", "pico": "TA_BOARD_PICO_SDK", "pico-mp": "TA_BOARD_MICROPYTHON"}[kind]
    assert f"#if defined({macro})" in text
    assert "tinyagent chat --port" in text or "th.chat()" in text   # how to talk to it
    assert "flash" in text.lower()


def test_readme_names_the_declared_requirements(engine, sectioned_tools, tmp_path):
    esp = sp.generate_project(load_board("esp32"), [*engine["esp32"][:-1], sectioned_tools], tmp_path / "e",
                              model_info={"agent": "pump"})
    text = (esp.root / "README.md").read_text()
    assert "agent `pump`" in text and "components/tinyagent/pump_tools.c" in text
    assert "`esp_driver_gpio`, `esp_adc`" in text and "tinyagent's default tools" not in text


# ---- sdk_build without the SDKs -------------------------------------------------------------------

@pytest.mark.parametrize("name, variable", [("esp32s3", "IDF_PATH"), ("pico", "PICO_SDK_PATH"),
                                            ("pico-mp", "MICROPY_DIR")])
def test_sdk_build_without_the_sdk_is_one_line_naming_what_is_missing(name, variable, projects, monkeypatch):
    for v in ("IDF_PATH", "PICO_SDK_PATH", "MICROPY_DIR"):
        monkeypatch.delenv(v, raising=False)
    project = projects[name]
    with pytest.raises(TinyAgentError) as e:
        sp.sdk_build(project)
    msg = str(e.value)
    assert e.value.code == EXIT_TOOL_MISSING and "\n" not in msg
    assert variable in msg and "--generate-only" in msg
    assert sp.sdk_build(project, generate_only=True) is None


# ---- a build with the SDK, its step replaced by a FAKE -------------------------------------------

def fake_sdk_build(link_elf: Path | None):
    """A FAKE of sp.sdk_build (no real SDK can run here): it writes the project's product (made-up
    bytes where the .uf2 / .bin would be) and, with link_elf, copies that ELF beside it as the one the
    SDK linked. Only what build() does with sdk_build's result is checked, not an SDK."""
    def fake(project, generate_only=False):
        assert not generate_only and project.product is not None
        project.product.parent.mkdir(parents=True, exist_ok=True)
        project.product.write_bytes(b"FAKE SDK PRODUCT " * 1000)
        if link_elf is not None:
            shutil.copy(link_elf, project.product.with_suffix(".elf"))
        return project.product
    return fake


def berkeley(tool: str, elf: Path) -> dict[str, int]:
    fields = subprocess.run([tool, "--format=berkeley", str(elf)], capture_output=True, text=True,
                            check=True).stdout.splitlines()[1].split()
    return dict(zip(("text", "data", "bss"), map(int, fields[:3])))


@pytest.mark.parametrize("board, product", [("pico", "project/build/tinyagent.uf2"),
                                            ("esp32s3", "project/build/tinyagent.bin")])
def test_an_sdk_build_records_its_product_and_image_sizes(board, product, tiny_run, tmp_path, monkeypatch, capsys):
    """After the SDK's build, tinyagent-build.json's artifact is the product (inside the build folder),
    "image" holds its bytes and the SDK ELF's size figures, and the printed plan shows them; `chat`
    still says to flash it. Pico: the FAKE's ELF is the proxy's RP2040 link (a real ELF linked here);
    esp32s3: no ELF, so the image has only its bytes."""
    from tinyagent.targets.build import MANIFEST, MEMORY_FILE, build, load_build, print_report, read_manifest

    b = load_board(board)
    needs(b.toolchain.compiler, b.toolchain.size_tool)
    out = tmp_path / "b"
    elf = out / "proxy" / "link_check.elf"   # what proxy_compile links for the Pico (before the FAKE runs)
    monkeypatch.setattr(sp, "sdk_build", fake_sdk_build(elf if board == "pico" else None))
    r = build(board, out, tiny_run)
    manifest = read_manifest(out, board)
    assert manifest["artifact"] == product and r.artifact == out / product
    image = manifest["image"]
    assert image["bytes"] == (out / product).stat().st_size == 17 * 1000
    if board == "pico":
        assert elf.is_file()
        figures = berkeley(b.toolchain.size_tool, out / "project/build/tinyagent.elf")
        assert image["elf"] == "project/build/tinyagent.elf" and image["size_tool"] == "arm-none-eabi-size"
        assert {k: image[k] for k in figures} == figures == r.plan.linker
        assert json.loads((out / MEMORY_FILE).read_text())["linker"] == figures
    else:
        assert image["elf"] is None and "text" not in image and not r.plan.linker
    print_report(r)
    printed = capsys.readouterr().out
    assert f"built {out / product} for {board}" in printed
    assert f"SDK build: {product}, 17,000 B" in printed
    if board == "pico":
        lk = figures
        assert f"linker size: text {lk['text']:,} data {lk['data']:,} bss {lk['bss']:,}" in printed
    with pytest.raises(TinyAgentError) as e:   # the product is for the board, not a program to run here
        load_build(out, board)
    assert "\n" not in str(e.value) and "tinyagent flash" in str(e.value)
    assert (out / MANIFEST).is_file() and not (out / "tinyagent-build.partial.json").exists()


# ---- compile for the boards' instruction sets -----------------------------------------------------

@pytest.mark.parametrize("board", REAL_BOARDS)
def test_engine_and_model_compile_for_each_real_board(board, engine, tmp_path):
    b = load_board(board)
    needs(b.toolchain.compiler, b.toolchain.size_tool)
    art = sp.proxy_compile(b, engine[board], tmp_path)
    assert art.elf is None and art.size.text > 10_000 and art.objects
    assert ("proxy" in art.note) == (board in ("esp32", "esp32s3"))
    if board == "pico":   # linked with picolibc for the RP2040's memory: the figures are the ELF's
        assert art.link_check is not None and art.link_check.is_file()
        assert art.size.flash < b.flash_bytes and art.size.ram < b.ram_bytes


# Stand-ins for the SDK headers the HALs include: only what the HALs call, with the signatures of
# ESP-IDF v5.4 and Pico SDK 2.1.1 (and espressif/led_strip 2.5). They check our C, not the SDKs.
IDF_STAND_IN_HEADERS = {
    "esp_err.h": "typedef int esp_err_t;\n#define ESP_OK 0\n"
                 "#define ESP_ERROR_CHECK(x) do { esp_err_t e_ = (x); (void)e_; } while (0)\n",
    "sdkconfig.h": "#define CONFIG_ESP_CONSOLE_UART_NUM 0\n",
    "freertos/FreeRTOS.h": "#include <stdint.h>\ntypedef uint32_t TickType_t;\n"
                           "#define pdMS_TO_TICKS(ms) ((TickType_t)(((uint64_t)(ms) * 100u) / 1000u))\n",
    "esp_cpu.h": "#include <stdint.h>\ntypedef uint32_t esp_cpu_cycle_count_t;\n"
                 "esp_cpu_cycle_count_t esp_cpu_get_cycle_count(void);\n",
    "esp_system.h": "void esp_restart(void) __attribute__((noreturn));\n",
    "esp_timer.h": "#include <stdbool.h>\n#include <stdint.h>\n#include \"esp_err.h\"\n"
                   "typedef struct esp_timer *esp_timer_handle_t;\ntypedef void (*esp_timer_cb_t)(void *arg);\n"
                   "typedef struct { esp_timer_cb_t callback; void *arg; int dispatch_method; const char *name;"
                   " bool skip_unhandled_events; } esp_timer_create_args_t;\n"
                   "esp_err_t esp_timer_create(const esp_timer_create_args_t *args, esp_timer_handle_t *out);\n"
                   "esp_err_t esp_timer_start_once(esp_timer_handle_t timer, uint64_t timeout_us);\n"
                   "esp_err_t esp_timer_stop(esp_timer_handle_t timer);\nint64_t esp_timer_get_time(void);\n",
    "driver/gpio.h": "#include <stdint.h>\n#include \"esp_err.h\"\n"
                     "typedef enum { GPIO_NUM_NC = -1, GPIO_NUM_0 = 0, GPIO_NUM_MAX = 49 } gpio_num_t;\n"
                     "typedef enum { GPIO_MODE_INPUT = 1, GPIO_MODE_OUTPUT = 2, GPIO_MODE_INPUT_OUTPUT = 3 }"
                     " gpio_mode_t;\n"
                     "esp_err_t gpio_reset_pin(gpio_num_t gpio_num);\n"
                     "esp_err_t gpio_set_direction(gpio_num_t gpio_num, gpio_mode_t mode);\n"
                     "esp_err_t gpio_set_level(gpio_num_t gpio_num, uint32_t level);\n"
                     "int gpio_get_level(gpio_num_t gpio_num);\n",
    # esp_adc (v5.4): one-shot ADC and its calibration; the scheme follows the chip, as the IDF's
    # per-target adc_cali_schemes.h says (line fitting on the ESP32, curve fitting on the S3 and C3)
    "soc/soc_caps.h": "#include \"sdkconfig.h\"\n#if CONFIG_IDF_TARGET_ESP32\n"
                      "#define SOC_ADC_CHANNEL_NUM(PERIPH_NUM) ((PERIPH_NUM == 0) ? 8 : 10)\n"
                      "#elif CONFIG_IDF_TARGET_ESP32C3\n#define SOC_ADC_CHANNEL_NUM(PERIPH_NUM) ((PERIPH_NUM == 0) ? 5 : 1)\n"
                      "#else\n#define SOC_ADC_CHANNEL_NUM(PERIPH_NUM) (10)\n#endif\n",
    "esp_adc/adc_oneshot.h": "#include \"esp_err.h\"\n"
                             "typedef enum { ADC_UNIT_1, ADC_UNIT_2 } adc_unit_t;\n"
                             "typedef enum { ADC_CHANNEL_0, ADC_CHANNEL_1, ADC_CHANNEL_9 = 9 } adc_channel_t;\n"
                             "typedef enum { ADC_ATTEN_DB_0 = 0, ADC_ATTEN_DB_12 = 3 } adc_atten_t;\n"
                             "typedef enum { ADC_BITWIDTH_DEFAULT = 0, ADC_BITWIDTH_12 = 12 } adc_bitwidth_t;\n"
                             "typedef int adc_oneshot_clk_src_t;\ntypedef enum { ADC_ULP_MODE_DISABLE } adc_ulp_mode_t;\n"
                             "typedef struct adc_oneshot_unit_ctx_t *adc_oneshot_unit_handle_t;\n"
                             "typedef struct { adc_unit_t unit_id; adc_oneshot_clk_src_t clk_src; adc_ulp_mode_t ulp_mode; }"
                             " adc_oneshot_unit_init_cfg_t;\n"
                             "typedef struct { adc_atten_t atten; adc_bitwidth_t bitwidth; } adc_oneshot_chan_cfg_t;\n"
                             "esp_err_t adc_oneshot_new_unit(const adc_oneshot_unit_init_cfg_t *init_config,"
                             " adc_oneshot_unit_handle_t *ret_unit);\n"
                             "esp_err_t adc_oneshot_config_channel(adc_oneshot_unit_handle_t handle, adc_channel_t channel,"
                             " const adc_oneshot_chan_cfg_t *config);\n"
                             "esp_err_t adc_oneshot_read(adc_oneshot_unit_handle_t handle, adc_channel_t chan,"
                             " int *out_raw);\n",
    "esp_adc/adc_cali.h": "#include \"esp_err.h\"\ntypedef struct adc_cali_scheme_t *adc_cali_handle_t;\n"
                          "esp_err_t adc_cali_raw_to_voltage(adc_cali_handle_t handle, int raw, int *voltage);\n",
    "esp_adc/adc_cali_scheme.h": "#include <stdint.h>\n#include \"sdkconfig.h\"\n#include \"esp_adc/adc_cali.h\"\n"
                                 "#include \"esp_adc/adc_oneshot.h\"\n#if CONFIG_IDF_TARGET_ESP32\n"
                                 "#define ADC_CALI_SCHEME_LINE_FITTING_SUPPORTED 1\n"
                                 "typedef struct { adc_unit_t unit_id; adc_atten_t atten; adc_bitwidth_t bitwidth;"
                                 " uint32_t default_vref; } adc_cali_line_fitting_config_t;\n"
                                 "esp_err_t adc_cali_create_scheme_line_fitting(const adc_cali_line_fitting_config_t"
                                 " *config, adc_cali_handle_t *ret_handle);\n#else\n"
                                 "#define ADC_CALI_SCHEME_CURVE_FITTING_SUPPORTED 1\n"
                                 "typedef struct { adc_unit_t unit_id; adc_channel_t chan; adc_atten_t atten;"
                                 " adc_bitwidth_t bitwidth; } adc_cali_curve_fitting_config_t;\n"
                                 "esp_err_t adc_cali_create_scheme_curve_fitting(const adc_cali_curve_fitting_config_t"
                                 " *config, adc_cali_handle_t *ret_handle);\n#endif\n",
    "driver/uart.h": "#include <stddef.h>\n#include \"esp_err.h\"\n#include \"freertos/FreeRTOS.h\"\n"
                     "typedef int uart_port_t;\ntypedef void *QueueHandle_t;\n"
                     "esp_err_t uart_driver_install(uart_port_t uart_num, int rx_buffer_size, int tx_buffer_size,"
                     " int queue_size, QueueHandle_t *uart_queue, int intr_alloc_flags);\n"
                     "int uart_read_bytes(uart_port_t uart_num, void *buf, uint32_t length,"
                     " TickType_t ticks_to_wait);\n"
                     "int uart_write_bytes(uart_port_t uart_num, const void *src, size_t size);\n",
    "driver/usb_serial_jtag.h": "#include <stddef.h>\n#include <stdint.h>\n#include \"esp_err.h\"\n"
                                "typedef struct { uint32_t tx_buffer_size; uint32_t rx_buffer_size; }"
                                " usb_serial_jtag_driver_config_t;\n"
                                "#define USB_SERIAL_JTAG_DRIVER_CONFIG_DEFAULT() (usb_serial_jtag_driver_config_t)"
                                " { .tx_buffer_size = 256, .rx_buffer_size = 256, }\n"
                                "esp_err_t usb_serial_jtag_driver_install(usb_serial_jtag_driver_config_t *cfg);\n"
                                "int usb_serial_jtag_read_bytes(void *buf, uint32_t length,"
                                " uint32_t ticks_to_wait);\n"
                                "int usb_serial_jtag_write_bytes(const void *src, size_t size,"
                                " uint32_t ticks_to_wait);\n",
    "driver/usb_serial_jtag_vfs.h": "void usb_serial_jtag_vfs_use_driver(void);\n",
    "driver/temperature_sensor.h": "#include \"esp_err.h\"\n"
                                   "typedef struct temperature_sensor_obj_t *temperature_sensor_handle_t;\n"
                                   "typedef struct { int range_min; int range_max; int clk_src; }"
                                   " temperature_sensor_config_t;\n"
                                   "#define TEMPERATURE_SENSOR_CONFIG_DEFAULT(min, max) "
                                   "{ .range_min = min, .range_max = max, .clk_src = 0, }\n"
                                   "esp_err_t temperature_sensor_install(const temperature_sensor_config_t *cfg,"
                                   " temperature_sensor_handle_t *out);\n"
                                   "esp_err_t temperature_sensor_enable(temperature_sensor_handle_t t);\n"
                                   "esp_err_t temperature_sensor_get_celsius(temperature_sensor_handle_t t,"
                                   " float *out_celsius);\n",
    "led_strip.h": "#include <stddef.h>\n#include <stdint.h>\n#include \"esp_err.h\"\n"
                   "typedef struct led_strip_t *led_strip_handle_t;\n"
                   "typedef enum { LED_PIXEL_FORMAT_GRB, LED_PIXEL_FORMAT_GRBW, LED_PIXEL_FORMAT_INVALID }"
                   " led_pixel_format_t;\n"
                   "typedef enum { LED_MODEL_WS2812, LED_MODEL_SK6812, LED_MODEL_INVALID } led_model_t;\n"
                   "typedef struct { int strip_gpio_num; uint32_t max_leds; led_pixel_format_t led_pixel_format;"
                   " led_model_t led_model; struct { uint32_t invert_out: 1; } flags; } led_strip_config_t;\n"
                   "typedef struct { int clk_src; uint32_t resolution_hz; size_t mem_block_symbols;"
                   " struct { uint32_t with_dma: 1; } flags; } led_strip_rmt_config_t;\n"
                   "esp_err_t led_strip_new_rmt_device(const led_strip_config_t *led_config,"
                   " const led_strip_rmt_config_t *rmt_config, led_strip_handle_t *ret_strip);\n"
                   "esp_err_t led_strip_set_pixel(led_strip_handle_t strip, uint32_t index, uint32_t red,"
                   " uint32_t green, uint32_t blue);\n"
                   "esp_err_t led_strip_refresh(led_strip_handle_t strip);\n"
                   "esp_err_t led_strip_clear(led_strip_handle_t strip);\n",
}
PICO_STAND_IN_HEADERS = {
    "pico/stdlib.h": "#include <stdbool.h>\n#include <stddef.h>\n#include <stdint.h>\n"
                     "typedef unsigned int uint;\ntypedef uint64_t absolute_time_t;\n"
                     "typedef int32_t alarm_id_t;\n"
                     "typedef int64_t (*alarm_callback_t)(alarm_id_t id, void *user_data);\n"
                     "#define GPIO_OUT 1\n#define PICO_DEFAULT_LED_PIN 25\n"
                     "bool stdio_init_all(void);\nint getchar_timeout_us(uint32_t timeout_us);\n"
                     "int putchar_raw(int c);\nvoid stdio_flush(void);\n"
                     "void gpio_init(uint gpio);\nvoid gpio_set_dir(uint gpio, bool out);\n"
                     "void gpio_put(uint gpio, bool value);\nbool gpio_get(uint gpio);\n"
                     "absolute_time_t get_absolute_time(void);\n"
                     "uint32_t to_ms_since_boot(absolute_time_t t);\n"
                     "alarm_id_t add_alarm_in_ms(uint32_t ms, alarm_callback_t callback, void *user_data,"
                     " bool fire_if_past);\nbool cancel_alarm(alarm_id_t alarm_id);\n"
                     "static inline void tight_loop_contents(void) {}\n"
                     "void panic(const char *fmt, ...) __attribute__((noreturn));\n",
    "hardware/adc.h": "#include \"pico/stdlib.h\"\nvoid adc_init(void);\n"
                      "void adc_set_temp_sensor_enabled(bool enable);\nvoid adc_select_input(uint input);\n"
                      "void adc_gpio_init(uint gpio);\nuint16_t adc_read(void);\n",
    "hardware/watchdog.h": "#include <stdint.h>\n"
                           "void watchdog_reboot(uint32_t pc, uint32_t sp, uint32_t delay_ms);\n",
    "pico/cyw43_arch.h": "#include \"pico/stdlib.h\"\n#define CYW43_WL_GPIO_LED_PIN 0\n"
                         "int cyw43_arch_init(void);\nvoid cyw43_arch_gpio_put(uint wl_gpio, bool value);\n",
}


def compile_with_stand_ins(board: str, sources: list[Path], headers: dict[str, str], include: list[Path],
                           tmp_path: Path) -> None:
    b = load_board(board)
    needs(b.toolchain.compiler)
    assert sources and all(s.is_file() for s in sources), sources  # a glob that found nothing tests nothing
    stand_ins = tmp_path / "stand-in-headers"
    for name, text in headers.items():
        (stand_ins / name).parent.mkdir(parents=True, exist_ok=True)
        (stand_ins / name).write_text(f"/* stand-in for the SDK's {name} */\n#pragma once\n{text}")
    for src in sources:
        cmd = [b.toolchain.compiler, *b.cpu_flags, *b.toolchain.cflags, f"-I{stand_ins}",
               *[f"-I{d}" for d in include], "-c", str(src), "-o", str(tmp_path / f"{src.stem}.o")]
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, f"{src.name} for {board}:\n{done.stderr}"


@pytest.mark.parametrize("board", ESP_BOARDS)
def test_esp_idf_hal_compiles_against_stand_in_headers(board, projects, tmp_path):
    hal = projects[board].root / "components" / "tinyagent_hal"
    sources = [*sorted(hal.glob("*.c")), projects[board].root / "main" / "app_main.c"]
    shipped = {f.name for f in (FIRMWARE_DIR / "boards" / "esp32").glob("*.c")}  # every ESP HAL source
    assert len(shipped) >= 10 and shipped | {sp.COMMON_HAL.name} == {s.name for s in sources}
    # the chip's own sdkconfig.h, as the IDF generates it, so each chip's ADC calibration is compiled
    headers = {**IDF_STAND_IN_HEADERS, "sdkconfig.h": IDF_STAND_IN_HEADERS["sdkconfig.h"]
               + f"#define CONFIG_IDF_TARGET_{board.upper()} 1\n"}
    compile_with_stand_ins(board, sources, headers, [hal, projects[board].root / "components" / "tinyagent"],
                           tmp_path)


def test_pico_hal_compiles_against_stand_in_headers(projects, tmp_path):
    hal = projects["pico"].root / "hal"
    sources = sorted(hal.glob("*.c"))
    want = {n for n in sp.PICO_HAL_SOURCES if n.endswith(".c")} | {sp.COMMON_HAL.name}
    assert len(want) >= 5 and {s.name for s in sources} == want
    compile_with_stand_ins("pico", sources, PICO_STAND_IN_HEADERS,
                           [hal, projects["pico"].root / "tinyagent"], tmp_path)


def test_rp2040_temperature_in_integers_matches_the_datasheet_formula(tmp_path):
    needs("cc")
    lib = tmp_path / "librp2040_temp.so"
    subprocess.run(["cc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                    str(sp.PICO_HAL_DIR / "rp2040_temp.c"), "-o", str(lib)], check=True)
    f = ctypes.CDLL(str(lib)).rp2040_temp_decicelsius
    f.restype, f.argtypes = ctypes.c_int32, [ctypes.c_uint32, ctypes.c_uint32]

    def expected(raw_sum: int, n: int) -> int:   # 10 * (27 - (V - 0.706) / 0.001721), half away from zero
        volts_uv = Fraction(raw_sum * 3_300_000, 4096 * n)
        q = (volts_uv - 706_000) * 10 / 1721
        rounded = (abs(q) + Fraction(1, 2)).__floor__() * (1 if q >= 0 else -1)
        return 270 - rounded

    for raw in range(4096):   # one reading, against the rationals and the datasheet's float formula
        assert f(raw, 1) == expected(raw, 1), raw
        assert abs(f(raw, 1) / 10 - (27 - (raw * 3.3 / 4096 - 0.706) / 0.001721)) <= 0.05 + 1e-9
    for raw_sum in range(0, 4096 * 16, 7):   # sums of 16 readings, as the HAL takes them
        assert f(raw_sum, 16) == expected(raw_sum, 16), raw_sum
    assert f(0, 0) == 0


# ---- the MicroPython module -----------------------------------------------------------------------

def test_micropython_compute_files_include_no_micropython_headers(projects):
    engine_dir = projects["esp32s3-mp"].root / "tinyagent" / "engine"
    files = sorted(engine_dir.glob("*.[ch]"))
    assert {"ta_mp_bridge.c", "ta_tools_mp.c", "ta_model.c"} <= {f.name for f in files}
    for f in files:
        includes = re.findall(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', f.read_text(), re.M)
        assert not [i for i in includes if i.startswith(("py/", "extmod/", "mp"))], f.name


def test_micropython_binding_follows_the_module_sequence(projects):
    text = (projects["pico-mp"].root / "tinyagent" / "modtinyagent.c").read_text()
    steps = [r"MP_DEFINE_CONST_FUN_OBJ_\d\(\s*tinyagent_ask_obj",
             r"mp_rom_map_elem_t tinyagent_module_globals_table\[\]",
             r"MP_DEFINE_CONST_DICT\(\s*tinyagent_module_globals", r"const mp_obj_module_t tinyagent_user_cmodule",
             r"MP_REGISTER_MODULE\(\s*MP_QSTR_tinyagent\s*,\s*tinyagent_user_cmodule\s*\)"]
    where = [re.search(s, text) for s in steps]
    assert all(where), [s for s, m in zip(steps, where) if not m]
    assert [m.start() for m in where] == sorted(m.start() for m in where)
    for name in ("ask", "register", "transcript", "tools"):
        assert f"MP_ROM_QSTR(MP_QSTR_{name})" in text


def test_mpy_cross_compiles_the_helper(projects):
    mpy = (projects["pico-mp"].root / "tinyagent_helper.mpy").read_bytes()
    assert mpy[:2] == b"M" + bytes([int(sp.MPY_VERSION.split(".")[0])])   # .mpy magic and major version
    assert b"tinyagent_helper.py" in mpy and len(mpy) > 500   # the source name, not a build path


BRIDGE_MAIN = r"""
/* Test harness: drives ta_mp_turn on the host, with a stand-in for the binding's ta_mp_tool. */
#include <stdio.h>
#include <string.h>
#include "ta_devices.h"
#include "ta_hal.h"
#include "ta_mp_bridge.h"
#include "ta_tools.h"

/* the tools file's led handler, renamed by ta_tools_mp.c */
ta_status ta_c_tool_led(const ta_call *call, char *result, size_t cap);

static int calls, c_tools;

/* stand-ins for modtinyagent.c's part of ta_hal.h (machine.Pin and the clock there) */
uint32_t ta_hal_millis(void) { return 0; }
void ta_hal_led_set(int on) { (void)on; }
int ta_hal_led_get(void) { return 1; }
int ta_hal_gpio_write(int pin, int level) { (void)pin; (void)level; return 0; }
int ta_hal_gpio_read(int pin) { (void)pin; return 0; }
int32_t ta_hal_temp_decicelsius(void) { return TA_HAL_NO_TEMP; }
int32_t ta_hal_adc_read_raw(int ch) { (void)ch; return -1; }
int32_t ta_hal_adc_read_mv(int ch) { (void)ch; return -1; }

/* stand-in for modtinyagent.c's ta_mp_tool: every tool answers "on" as if it had a Python function,
 * and counts the tools that would have the tools file's C handler without one */
ta_status ta_mp_tool(const ta_call *call, char *result, size_t cap, ta_mp_c_tool c_tool)
{
    (void)call;
    calls++;
    c_tools += c_tool != 0;
    result[0] = '\0';
    ta_cat(result, cap, "on");
    return TA_OK;
}

int main(int argc, char **argv)
{
    /* every generated handler reaches the binding */
    for (int32_t t = 0; t < ta_agent_data.n_tools; t++) {
        ta_call call = {0};
        char result[TA_RESULT_MAX + 1];
        call.tool = t;
        if (ta_tools_dispatch(&call, result, sizeof result) != TA_OK || strcmp(result, "on") != 0) {
            return 2;
        }
    }
    printf("tools %d %d\n", calls, c_tools);
    calls = 0;
    /* the tools file's own handler, as a tool without a Python function runs it: led on -> "on" */
    ta_call led = {0};
    char led_result[TA_RESULT_MAX + 1] = "";
    led.tool = TA_TOOL_LED;
    led.n_args = 1;
    led.word[0] = "on";
    if (ta_c_tool_led(&led, led_result, sizeof led_result) != TA_OK || strcmp(led_result, "on") != 0) {
        return 3;
    }
    for (int i = 1; i < argc; i++) {
        ta_status st = ta_mp_turn((const uint8_t *)argv[i], strlen(argv[i]));
        size_t n, a;
        const char *text = ta_mp_transcript(&n);
        const char *answer = ta_mp_answer(&a);
        printf("%d %d %d %zu %zu\n", (int)st, calls, ta_mp_truncated(), n, a);
        fwrite(text, 1, n, stdout);
        printf("\n\x1e\n");
        if (strlen(text) != n || answer + a != text + n) {
            return 1;
        }
    }
    return 0;
}
"""


def c_constants() -> tuple[dict[str, int], int]:
    """The runtime's status codes (ta_status.h's TA_STATUS_LIST order) and TA_LINE_MAX."""
    statuses = re.findall(r"X\((TA_\w+),", (FIRMWARE_DIR / "ta_status.h").read_text())
    line_max = re.search(r"#define TA_LINE_MAX (\d+)", (FIRMWARE_DIR / "ta_console.h").read_text())
    return {name: i for i, name in enumerate(statuses)}, int(line_max.group(1))


def simple_utf8(data: bytes) -> bytes:
    """The bridge's UTF-8 repair: a byte that does not start a well-formed sequence becomes '?'."""
    out, i = bytearray(data), 0
    while i < len(out):
        b = out[i]
        n = 1 if b < 0x80 else 2 if b & 0xE0 == 0xC0 else 3 if b & 0xF0 == 0xE0 else 4 if b & 0xF8 == 0xF0 else 0
        if n == 0 or i + n > len(out) or any(out[i + k] & 0xC0 != 0x80 for k in range(1, n)):
            out[i], n = ord("?"), 1
        i += n
    return bytes(out)


def test_micropython_bridge_runs_the_same_turn_as_the_reference(projects, tiny_int, bpe, tmp_path):
    needs("cc")
    engine_dir = projects["host-mp"].root / "tinyagent" / "engine"
    main = tmp_path / "bridge_main.c"
    main.write_text(BRIDGE_MAIN)
    exe = tmp_path / "bridge"
    cmd = ["cc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{engine_dir}", str(main),
           *map(str, sorted(engine_dir.glob("*.c"))), "-o", str(exe)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    requests = ["turn on the light", "what is the temperature", "hello", "two\nlines", "x" * 1400]  # > TA_LINE_MAX
    done = subprocess.run([str(exe), *requests], capture_output=True)
    assert done.returncode == 0, done.stderr
    first, _, rest = done.stdout.partition(b"\n")
    assert first == f"tools {len(SPEC.tools)} {len(SPEC.tools)}".encode()   # each with its C handler too
    turns = rest.split(b"\n\x1e\n")[:-1]
    assert len(turns) == len(requests)

    _, int_model = tiny_int
    tc, grammar = TokenClasses(bpe), grammar_from_spec(SPEC)
    status_of, line_max = c_constants()
    conv = Conversation(Reference(int_model), tc, grammar, int_model.cfg.ctx)  # ask() continues one
    for request, out in zip(requests, turns):
        head, _, text = out.partition(b"\n")
        status, _, truncated, n, a = map(int, head.split())
        assert len(text) == n and truncated == 0
        text.decode("utf-8")   # strict: the bridge hands Python valid UTF-8
        if "\n" in request:
            assert status == status_of["TA_ERR_PARSE"]
            assert text == b"error: a request is one line (no line breaks)"
            continue
        if len(request) > line_max:
            assert status == status_of["TA_ERR_TOO_LONG"]
            assert text == f"error: the request is {len(request)} bytes; at most {line_max} fit".encode()
            continue
        turn = conv.turn(lambda tool, args: "on", request)
        lines = [f"[{call}] -> {result}".encode() for call, result in turn.calls]
        expect_answer = simple_utf8(_answer_bytes(turn, bpe, tc))
        assert status == status_of["TA_OK"]
        assert text == b"\n".join([*lines, expect_answer]), (request, text, lines, expect_answer)
        assert a == len(expect_answer)


def _answer_bytes(turn, bpe, tc) -> bytes:
    """The answer's raw bytes: the generated tokens after the last call, up to the final newline."""
    out, in_call = b"", False
    for t in turn.generated:
        if in_call:
            in_call = t != tc.close
        elif t == tc.open:
            in_call = True
        elif t != tc.newline:
            out += bpe.token_bytes[t]
    return out
