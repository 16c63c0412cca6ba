"""Putting a build on a board: esptool for the ESP32 family, the UF2 drive (or picotool) for the Pico.

`flash(board, build_dir, port)` checks that the build folder holds a build for that board, then:

- ESP32, ESP32-S3, ESP32-C3: esptool through its Python API (esptool v5's `esptool.cmds`). The
  images and their offsets come from the ESP-IDF build's `build/flasher_args.json` (the bootloader
  sits at 0x1000 on the ESP32 and at 0x0 on the S3 and C3; the IDF knows). The chip that answers
  on the port must be the board's.
- Pico: the UF2 is copied to the RPI-RP2 drive the RP2040's boot ROM mounts when BOOTSEL is held
  (found by its INFO_UF2.TXT), or loaded with `picotool load -x` when no drive is mounted.
- Emulated boards: flashing one means starting it, so flash only says how (`tinyagent chat`).

Each failure is one line with its own exit code (the FLASH_* constants below).
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_DEVICE, EXIT_TOOL_MISSING, TinyAgentError
from .boards import Board, load_board
from .sdk_projects import ESP_CHIPS, PROJECT_MANIFEST

ESP_ROM_BAUD = 115200        # the ROM bootloader's speed; esptool moves to `baud` once its stub runs
DEFAULT_BAUD = 460800
PICOTOOL_TIMEOUT_S = 120
PICO_MOUNT_ROOTS = (Path("/media"), Path("/run/media"), Path("/mnt"))
RP2040_BOARD_ID = "Board-ID: RPI-RP2"   # INFO_UF2.TXT on the RP2040 boot ROM's drive (an RP2350 says RP2350)
BUILD_MANIFESTS = ("tinyagent-build.json", PROJECT_MANIFEST)   # tinyagent build's, then the project's
MANIFEST_SEARCH_UP = 2       # a build folder may be the project, its build/ or the project's parent
# Where a flashable product may be, below the folder given: it may be tinyagent build's output
# (the project is in project/), the generated project, or the SDK's own build folder.
PRODUCT_FOLDERS = (".", "build", "project", "project/build")

# The four ways flashing fails, each with its own exit code:
FLASH_NO_PORT = EXIT_DEVICE          # no port given, or it cannot be opened; no RPI-RP2 drive
FLASH_WRONG_CHIP = EXIT_CHECK_FAILED  # something else answers on the port (another chip, or no ESP)
FLASH_WRONG_BUILD = EXIT_BAD_INPUT    # the build folder is another board's build
FLASH_NOT_BUILT = EXIT_TOOL_MISSING   # nothing to flash: the SDK build has not run (no SDK here?)


@dataclass(frozen=True)
class EspFlashPlan:
    """What esptool writes for one ESP-IDF build: the images at their offsets, and how."""
    chip: str                              # esptool's chip name, e.g. "esp32s3"
    images: tuple[tuple[int, Path], ...]   # (offset, file), by offset
    flash_mode: str
    flash_freq: str
    flash_size: str
    before: str                            # esptool reset modes, e.g. "default-reset"
    after: str
    stub: bool                             # run esptool's flasher stub (the IDF turns it off for some configs)

    def esptool_args(self, port: str, baud: int = DEFAULT_BAUD) -> list[str]:
        """The same flashing as an esptool v5 command line (`esptool <args>`), for a person to run."""
        args = ["--chip", self.chip, "--port", port, "--baud", str(baud), "--before", self.before,
                "--after", self.after, *([] if self.stub else ["--no-stub"]), "write-flash",
                "--flash-mode", self.flash_mode, "--flash-freq", self.flash_freq, "--flash-size", self.flash_size]
        for offset, path in self.images:
            args += [f"0x{offset:x}", str(path)]
        return args


def flash(board_name: str, build_dir: str | Path, port: str | None = None, baud: int = DEFAULT_BAUD, *,
          esptool_api=None, mount_roots: tuple[Path, ...] = PICO_MOUNT_ROOTS) -> str:
    """Flash the build in build_dir onto the board; return one line saying what was done.

    port: the ESP's serial port; for the Pico, optionally the RPI-RP2 drive's folder. esptool_api:
    what provides esptool's detect_chip, run_stub, attach_flash, write_flash and reset_chip
    (default: esptool.cmds). mount_roots: where to look for the Pico's drive."""
    board = load_board(board_name)
    build_dir = Path(build_dir)
    if board.runs_here:
        how = "a process" if board.run.kind == "process" else f"{board.run.command[0]}"
        return (f"{board.name} runs here as {how}, so there is nothing to flash: "
                f"`tinyagent chat --board {board.name}` starts it")
    check_build_board(board, build_dir)
    if board.sdk == "esp-idf":
        return _flash_esp(board, esp_flash_plan(board, build_dir), port, baud, esptool_api)
    if board.sdk == "pico-sdk":
        return _flash_pico(board, find_uf2(build_dir), port, mount_roots)
    raise TinyAgentError(f"flashing {board.name} is not supported (boards built with ESP-IDF or the Pico SDK)",
                         EXIT_BAD_INPUT)


# ---- the build folder ------------------------------------------------------------------------------

def check_build_board(board: Board, build_dir: Path) -> None:
    """A build folder whose manifest names another board is refused. The nearest manifest counts:
    build_dir's own, or one up to MANIFEST_SEARCH_UP folders above it."""
    if not build_dir.is_dir():
        raise TinyAgentError(f"build folder {build_dir} does not exist (build for {board.name} first: "
                             f"`tinyagent build --board {board.name}`)", FLASH_NOT_BUILT)
    folder = build_dir.resolve()
    for _ in range(MANIFEST_SEARCH_UP + 1):
        for name in BUILD_MANIFESTS:
            path = folder / name
            if path.is_file():
                try:
                    built_for = json.loads(path.read_text()).get("board")
                except (json.JSONDecodeError, AttributeError):
                    raise TinyAgentError(f"{path} is not a tinyagent manifest (not a JSON object)",
                                         FLASH_WRONG_BUILD) from None
                if built_for != board.name:
                    raise TinyAgentError(f"{build_dir} holds a build for {built_for}, not {board.name} "
                                         f"({path.name} says so)", FLASH_WRONG_BUILD)
                return
        folder = folder.parent


def _find_file(build_dir: Path, name: str) -> Path | None:
    """The first build_dir/<PRODUCT_FOLDERS>/name that exists."""
    for sub in PRODUCT_FOLDERS:
        if (build_dir / sub / name).is_file():
            return build_dir / sub / name
    return None


def esp_flash_plan(board: Board, build_dir: Path) -> EspFlashPlan:
    """Read the ESP-IDF build's flasher_args.json: the images, their offsets and the flash settings."""
    args_file = _find_file(Path(build_dir), "flasher_args.json")
    if args_file is None:
        raise TinyAgentError(
            f"no ESP-IDF build in {build_dir} (no flasher_args.json there, nor in build/ or project/build/): "
            f"build it with ESP-IDF first (`tinyagent build --board {board.name}` with IDF_PATH set, or "
            "`idf.py build` in the project)", FLASH_NOT_BUILT)
    try:
        data = json.loads(args_file.read_text())
        files = data["flash_files"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise TinyAgentError(f"{args_file} is not an ESP-IDF flasher_args.json (no flash_files)",
                             FLASH_NOT_BUILT) from None
    extra = data.get("extra_esptool_args", {})
    chip = extra.get("chip", board.sdk_target)
    if chip != board.sdk_target:
        raise TinyAgentError(f"{build_dir} holds an ESP-IDF build for the {chip}, not the {board.sdk_target} "
                             f"({board.name}); flasher_args.json says so", FLASH_WRONG_BUILD)
    images = tuple(sorted((int(offset, 16), args_file.parent / rel) for offset, rel in files.items()))
    missing = [str(path) for _, path in images if not path.is_file()]
    if not images or missing:
        raise TinyAgentError(f"the ESP-IDF build in {args_file.parent} is incomplete (missing: "
                             f"{', '.join(missing) or 'every image'}): run the build again", FLASH_NOT_BUILT)
    settings = data.get("flash_settings", {})
    return EspFlashPlan(
        chip=chip, images=images, flash_mode=settings.get("flash_mode", "keep"),
        flash_freq=settings.get("flash_freq", "keep"), flash_size=settings.get("flash_size", "keep"),
        before=extra.get("before", "default_reset").replace("_", "-"),
        after=extra.get("after", "hard_reset").replace("_", "-"), stub=bool(extra.get("stub", True)))


def find_uf2(build_dir: Path) -> Path:
    """The Pico build's UF2: tinyagent.uf2 in one of PRODUCT_FOLDERS, else the only .uf2 there."""
    found = _find_file(Path(build_dir), "tinyagent.uf2")
    if found is not None:
        return found
    candidates = sorted({uf2 for sub in PRODUCT_FOLDERS for uf2 in (Path(build_dir) / sub).glob("*.uf2")})
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise TinyAgentError(f"{build_dir} holds several UF2 files ({', '.join(c.name for c in candidates)}) "
                             "and none is tinyagent.uf2: say which by giving its folder", FLASH_NOT_BUILT)
    raise TinyAgentError(f"no UF2 in {build_dir} (nor in build/ or project/build/): build it with the Pico "
                         "SDK first (`tinyagent build --board pico` with PICO_SDK_PATH set)", FLASH_NOT_BUILT)


# ---- ESP32 family: esptool -------------------------------------------------------------------------

def _chip_id(chip_name: str) -> str:
    """esptool's CHIP_NAME ("ESP32-S3") -> the IDF target name ("esp32s3")."""
    return chip_name.lower().replace("-", "")


def _esptool_api():
    try:
        import esptool.cmds as cmds
    except ImportError:
        raise TinyAgentError("esptool is not installed: `pip install esptool` (v5)", EXIT_TOOL_MISSING) from None
    return cmds


def _port_error(port: str, board: Board, detail: str) -> TinyAgentError:
    return TinyAgentError(f"cannot open {port} for {board.name}: {detail} (is the board plugged in? "
                          f"ports here: {', '.join(_serial_ports()) or 'none'})", FLASH_NO_PORT)


def _serial_ports() -> list[str]:
    try:
        from serial.tools import list_ports
    except ImportError:
        return []
    return sorted(p.device for p in list_ports.comports())


def _flash_esp(board: Board, plan: EspFlashPlan, port: str | None, baud: int, api) -> str:
    chip_name = ESP_CHIPS[board.name].name
    if not port:
        raise TinyAgentError(f"say which serial port the {chip_name} is on: --port "
                             f"(ports here: {', '.join(_serial_ports()) or 'none'})", FLASH_NO_PORT)
    if "://" not in port and not Path(port).exists():
        raise _port_error(port, board, "no such port")
    api = api or _esptool_api()
    from esptool.util import FatalError

    try:
        rom = api.detect_chip(port, ESP_ROM_BAUD, plan.before)
    except (FatalError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "could not open" in first.lower() or isinstance(e, OSError):
            raise _port_error(port, board, first) from None
        raise TinyAgentError(f"{port} is not the {chip_name} ({board.name}): esptool found no ESP chip in its "
                             f"bootloader there ({first})", FLASH_WRONG_CHIP) from None
    with rom:
        found = _chip_id(rom.CHIP_NAME)
        if found != plan.chip:
            raise TinyAgentError(f"{port} has an {rom.CHIP_NAME}, not the {chip_name} this build is for "
                                 f"({board.name})", FLASH_WRONG_CHIP)
        try:
            esp = api.run_stub(rom) if plan.stub else rom
            if baud != ESP_ROM_BAUD:
                esp.change_baud(baud)
            api.attach_flash(esp)
            api.write_flash(esp, [(offset, str(path)) for offset, path in plan.images],
                            flash_freq=plan.flash_freq, flash_mode=plan.flash_mode, flash_size=plan.flash_size)
            api.reset_chip(esp, plan.after)
        except (FatalError, OSError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise TinyAgentError(f"flashing the {chip_name} on {port} failed: {first}", EXIT_DEVICE) from None
    app = max(plan.images, key=lambda im: im[1].stat().st_size)
    return (f"flashed {board.name} on {port}: {len(plan.images)} images, the app {app[1].name} "
            f"({app[1].stat().st_size} bytes) at 0x{app[0]:x}; talk to it with "
            f"`tinyagent chat --port {port}`")


# ---- Pico: the RPI-RP2 drive or picotool -----------------------------------------------------------

def find_rp2040_drives(roots: tuple[Path, ...] = PICO_MOUNT_ROOTS) -> list[Path]:
    """Mounted RP2040 boot drives: folders up to two levels below `roots` (/media/USER/RPI-RP2)
    whose INFO_UF2.TXT has the RP2040's board id."""
    found = []
    for root in roots:
        if not root.is_dir():
            continue
        for info in [*root.glob("*/INFO_UF2.TXT"), *root.glob("*/*/INFO_UF2.TXT")]:
            try:
                if RP2040_BOARD_ID in info.read_text(errors="replace"):
                    found.append(info.parent)
            except OSError:
                continue   # a drive that went away while we looked
    return sorted(set(found))


def _flash_pico(board: Board, uf2: Path, port: str | None, roots: tuple[Path, ...]) -> str:
    if port:   # for the Pico, --port may name the drive's folder
        drive = Path(port)
        info = drive / "INFO_UF2.TXT"
        if not info.is_file():
            raise TinyAgentError(f"{port} is not a mounted UF2 drive (it has no INFO_UF2.TXT); for the Pico, "
                                 "--port is the RPI-RP2 drive's folder, or leave it out", FLASH_NO_PORT)
        if RP2040_BOARD_ID not in info.read_text(errors="replace"):
            raise TinyAgentError(f"the UF2 drive {port} is not an RP2040's (its INFO_UF2.TXT has no "
                                 f"'{RP2040_BOARD_ID}')", FLASH_WRONG_CHIP)
        drives = [drive]
    else:
        drives = find_rp2040_drives(roots)
    if len(drives) > 1:
        raise TinyAgentError(f"several RP2040 drives are mounted ({', '.join(map(str, drives))}): "
                             "say which with --port", FLASH_NO_PORT)
    if drives:
        # A plain copy, not write-then-rename: the boot ROM flashes the blocks as they arrive and
        # reboots when the last one is written, so a rename would find the drive gone.
        with uf2.open("rb") as src, (drives[0] / uf2.name).open("wb") as dst:
            shutil.copyfileobj(src, dst)
            dst.flush()
        return (f"copied {uf2.name} ({uf2.stat().st_size} bytes) to {drives[0]}; the Pico restarts into it. "
                "Talk to it with `tinyagent chat --port /dev/ttyACM0`")
    picotool = shutil.which("picotool")
    if picotool is None:
        raise TinyAgentError("no RP2040 drive is mounted (looked in "
                             f"{', '.join(map(str, roots))}) and picotool is not installed: hold BOOTSEL "
                             "while plugging the Pico in, then flash again", FLASH_NO_PORT)
    # -x: start the program after loading; -f: a running tinyagent (USB stdio) is rebooted into BOOTSEL
    cmd = [picotool, "load", "-x", "-f", str(uf2)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=PICOTOOL_TIMEOUT_S)
    if done.returncode != 0:
        text = (done.stderr or done.stdout).strip().splitlines()
        raise TinyAgentError(f"picotool found no Pico to load ({text[0] if text else 'no output'}): hold "
                             "BOOTSEL while plugging it in", FLASH_NO_PORT)
    return f"loaded {uf2.name} with picotool and started it; talk to it with `tinyagent chat --port /dev/ttyACM0`"
