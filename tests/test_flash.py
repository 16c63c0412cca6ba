"""Flashing: esptool's plan from an ESP-IDF build, the Pico's UF2 drive, and every refusal.

No ESP chip and no Pico are attached to this machine, so esptool's Python API is replaced by
FakeEsptoolStandIn (it records what flash() asks of it) and the Pico's RPI-RP2 drive by a folder
made with make_drive_stand_in. The build folders are laid out as ESP-IDF and the Pico SDK lay
theirs out; the serial port is a real pty.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from esptool.util import FatalError

from tinyagent.errors import TinyAgentError
from tinyagent.targets import flash as fl
from tinyagent.targets.boards import load_board

# What ESP-IDF v5.4 writes to build/flasher_args.json for each chip (the bootloader's offset differs).
BOOTLOADER_OFFSET = {"esp32": "0x1000", "esp32s3": "0x0", "esp32c3": "0x0"}
FLASH = {"esp32": ("dio", "40m", "4MB"), "esp32s3": ("dio", "80m", "8MB"), "esp32c3": ("dio", "80m", "4MB")}
RP2040_INFO = "UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n"
RP2350_INFO = "UF2 Bootloader v1.0\nModel: Raspberry Pi RP2350\nBoard-ID: RP2350\n"


class FakeLoaderStandIn:
    """Stands in for the ESPLoader esptool's detect_chip returns."""

    def __init__(self, owner: "FakeEsptoolStandIn", chip_name: str):
        self.owner, self.CHIP_NAME = owner, chip_name

    def change_baud(self, baud: int) -> None:
        self.owner.calls.append(("change_baud", baud))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.owner.calls.append(("close",))


class FakeEsptoolStandIn:
    """Stands in for esptool.cmds (v5): no chip is attached here. Records every call; the chip that
    "answers" and the errors are set by the test."""

    def __init__(self, chip_name: str = "ESP32-S3", detect_error: Exception | None = None,
                 write_error: Exception | None = None):
        self.chip_name, self.detect_error, self.write_error = chip_name, detect_error, write_error
        self.calls: list[tuple] = []

    def detect_chip(self, port, baud, connect_mode):
        self.calls.append(("detect_chip", port, baud, connect_mode))
        if self.detect_error:
            raise self.detect_error
        return FakeLoaderStandIn(self, self.chip_name)

    def run_stub(self, esp):
        self.calls.append(("run_stub",))
        return esp

    def attach_flash(self, esp):
        self.calls.append(("attach_flash",))

    def write_flash(self, esp, addr_data, flash_freq, flash_mode, flash_size):
        for _, path in addr_data:
            assert Path(path).is_file()
        self.calls.append(("write_flash", [a for a, _ in addr_data], flash_mode, flash_freq, flash_size))
        if self.write_error:
            raise self.write_error

    def reset_chip(self, esp, mode):
        self.calls.append(("reset_chip", mode))


def make_idf_build(root: Path, chip: str, stub: bool = True) -> Path:
    """A project folder with build/ as ESP-IDF leaves it (images and flasher_args.json)."""
    build = root / "build"
    files = {BOOTLOADER_OFFSET[chip]: "bootloader/bootloader.bin", "0x8000": "partition_table/partition-table.bin",
             "0x10000": "tinyagent.bin"}
    for i, rel in enumerate(files.values()):
        (build / rel).parent.mkdir(parents=True, exist_ok=True)
        (build / rel).write_bytes(bytes([i]) * (1000 * (i + 1)))
    mode, freq, size = FLASH[chip]
    args = {"write_flash_args": ["--flash_mode", mode, "--flash_size", size, "--flash_freq", freq],
            "flash_settings": {"flash_mode": mode, "flash_size": size, "flash_freq": freq},
            "flash_files": files,
            "app": {"offset": "0x10000", "file": "tinyagent.bin", "encrypted": "false"},
            "extra_esptool_args": {"after": "hard_reset", "before": "default_reset", "stub": stub, "chip": chip}}
    (build / "flasher_args.json").write_text(json.dumps(args, indent=4))
    return root


def write_manifest(folder: Path, board: str, name: str = "tinyagent-build.json") -> None:
    (folder / name).write_text(json.dumps({"board": board, "model_hash": "ab" * 32}))


@pytest.fixture
def port():
    """A real pty's path: a port that exists (the stand-in never talks to it)."""
    master, slave = os.openpty()
    yield os.ttyname(slave)
    os.close(master)
    os.close(slave)


# ---- ESP32 family ---------------------------------------------------------------------------------

@pytest.mark.parametrize("chip", ["esp32", "esp32s3", "esp32c3"])
def test_esp_plan_takes_offsets_and_settings_from_flasher_args(chip, tmp_path):
    root = make_idf_build(tmp_path / "p", chip)
    plan = fl.esp_flash_plan(load_board(chip), root)
    assert [off for off, _ in plan.images] == [int(BOOTLOADER_OFFSET[chip], 16), 0x8000, 0x10000]
    assert plan.images[-1][1] == root / "build" / "tinyagent.bin"
    assert (plan.flash_mode, plan.flash_freq, plan.flash_size) == FLASH[chip]
    assert (plan.before, plan.after, plan.stub) == ("default-reset", "hard-reset", True)
    assert fl.esp_flash_plan(load_board(chip), root / "build") == plan   # the IDF's build folder works too
    mode, freq, size = FLASH[chip]
    assert plan.esptool_args("/dev/ttyUSB0", 921600) == [
        "--chip", chip, "--port", "/dev/ttyUSB0", "--baud", "921600", "--before", "default-reset",
        "--after", "hard-reset", "write-flash", "--flash-mode", mode, "--flash-freq", freq,
        "--flash-size", size, BOOTLOADER_OFFSET[chip], str(root / "build/bootloader/bootloader.bin"),
        "0x8000", str(root / "build/partition_table/partition-table.bin"),
        "0x10000", str(root / "build/tinyagent.bin")]


def test_esp_plan_keeps_the_idf_no_stub_choice(tmp_path):
    plan = fl.esp_flash_plan(load_board("esp32c3"), make_idf_build(tmp_path, "esp32c3", stub=False))
    assert not plan.stub and "--no-stub" in plan.esptool_args("/dev/ttyACM0")


def test_flash_esp_drives_esptool_in_order(tmp_path, port):
    root = make_idf_build(tmp_path / "p", "esp32s3")
    write_manifest(root, "esp32s3")
    api = FakeEsptoolStandIn("ESP32-S3")
    line = fl.flash("esp32s3", root, port=port, baud=921600, esptool_api=api)
    assert api.calls == [
        ("detect_chip", port, fl.ESP_ROM_BAUD, "default-reset"), ("run_stub",), ("change_baud", 921600),
        ("attach_flash",), ("write_flash", [0x0, 0x8000, 0x10000], "dio", "80m", "8MB"),
        ("reset_chip", "hard-reset"), ("close",)]
    assert "\n" not in line and "esp32s3" in line and "0x10000" in line and port in line


def test_flash_finds_the_build_in_tinyagent_builds_layout(tmp_path, port):
    out = tmp_path / "build" / "esp32"   # tinyagent build --board esp32: the project is in project/
    make_idf_build(out / "project", "esp32")
    write_manifest(out, "esp32")
    api = FakeEsptoolStandIn("ESP32")
    fl.flash("esp32", out, port=port, esptool_api=api)
    assert ("write_flash", [0x1000, 0x8000, 0x10000], "dio", "40m", "4MB") in api.calls


def test_flash_esp_without_stub_stays_at_rom_speed(tmp_path, port):
    root = make_idf_build(tmp_path / "p", "esp32c3", stub=False)
    api = FakeEsptoolStandIn("ESP32-C3")
    fl.flash("esp32c3", root, port=port, baud=fl.ESP_ROM_BAUD, esptool_api=api)
    assert ("run_stub",) not in api.calls and not [c for c in api.calls if c[0] == "change_baud"]


def refused(code: int, fn, *words: str) -> None:
    """fn() raises one TinyAgentError: one line, exit code `code`, naming every word."""
    with pytest.raises(TinyAgentError) as e:
        fn()
    msg = str(e.value)
    assert e.value.code == code and "\n" not in msg, msg
    for w in words:
        assert w in msg, (w, msg)


def esp_flash(board: str, folder: Path, port: str | None, api: FakeEsptoolStandIn):
    return lambda: fl.flash(board, folder, port=port, esptool_api=api)


def test_flash_esp_refuses_a_missing_port(tmp_path):
    root = make_idf_build(tmp_path / "p", "esp32")
    refused(fl.FLASH_NO_PORT, esp_flash("esp32", root, None, FakeEsptoolStandIn("ESP32")), "--port")
    refused(fl.FLASH_NO_PORT, esp_flash("esp32", root, "/dev/ttyNOPE9", FakeEsptoolStandIn("ESP32")),
            "/dev/ttyNOPE9", "no such port")
    busy = FakeEsptoolStandIn(detect_error=FatalError(
        "Could not open /dev/x, the port is busy or doesn't exist.\n([Errno 16] busy)"))
    refused(fl.FLASH_NO_PORT, esp_flash("esp32", root, str(root), busy), "Could not open")


def test_flash_esp_refuses_a_port_that_is_not_the_board(tmp_path, port):
    root = make_idf_build(tmp_path / "p", "esp32s3")
    other = FakeEsptoolStandIn("ESP32-C3")
    refused(fl.FLASH_WRONG_CHIP, esp_flash("esp32s3", root, port, other), "ESP32-C3", "ESP32-S3", port)
    assert [c[0] for c in other.calls] == ["detect_chip", "close"]   # nothing written, port closed
    silent = FakeEsptoolStandIn(detect_error=FatalError("Failed to connect to ESP32-S3: No serial data received."))
    refused(fl.FLASH_WRONG_CHIP, esp_flash("esp32s3", root, port, silent), port, "no ESP chip",
            "No serial data received")


def test_flash_esp_reports_a_failed_write_in_one_line(tmp_path, port):
    root = make_idf_build(tmp_path / "p", "esp32")
    api = FakeEsptoolStandIn("ESP32", write_error=FatalError("Failed to write to target RAM (result 01070000)"))
    refused(fl.EXIT_DEVICE, esp_flash("esp32", root, port, api), "Failed to write")
    assert api.calls[-1] == ("close",)


def test_flash_refuses_a_build_for_another_board(tmp_path, port):
    root = make_idf_build(tmp_path / "p", "esp32s3")
    write_manifest(root, "esp32c3")   # found from the build folder, one level up
    refused(fl.FLASH_WRONG_BUILD, esp_flash("esp32s3", root / "build", port, FakeEsptoolStandIn()), "esp32c3")
    (root / "tinyagent-build.json").unlink()
    write_manifest(root, "esp32", name="tinyagent-project.json")   # the generated project's own manifest
    refused(fl.FLASH_WRONG_BUILD, esp_flash("esp32s3", root, port, FakeEsptoolStandIn()), "esp32", "esp32s3")
    other_chip = make_idf_build(tmp_path / "q", "esp32c3")   # no manifest, but flasher_args names the chip
    refused(fl.FLASH_WRONG_BUILD, esp_flash("esp32s3", other_chip, port, FakeEsptoolStandIn()),
            "esp32c3", "esp32s3")
    write_manifest(other_chip, "esp32c3")
    refused(fl.FLASH_WRONG_BUILD, lambda: fl.flash("pico", other_chip, mount_roots=(tmp_path / "media",)),
            "esp32c3", "pico")


def test_flash_refuses_a_folder_with_nothing_to_flash(tmp_path, port):
    api = FakeEsptoolStandIn("ESP32")
    refused(fl.FLASH_NOT_BUILT, esp_flash("esp32", tmp_path, port, api), "flasher_args.json", "IDF_PATH")
    root = make_idf_build(tmp_path / "p", "esp32")
    (root / "build" / "tinyagent.bin").unlink()
    refused(fl.FLASH_NOT_BUILT, esp_flash("esp32", root, port, api), "tinyagent.bin")
    refused(fl.FLASH_NOT_BUILT, esp_flash("esp32", tmp_path / "never-built", port, api), "does not exist")
    refused(fl.FLASH_NOT_BUILT, lambda: fl.flash("pico", tmp_path, mount_roots=(tmp_path / "media",)),
            "UF2", "PICO_SDK_PATH")


def test_the_four_refusals_have_four_exit_codes():
    codes = [fl.FLASH_NO_PORT, fl.FLASH_WRONG_CHIP, fl.FLASH_WRONG_BUILD, fl.FLASH_NOT_BUILT]
    assert len(set(codes)) == 4 and 0 not in codes


# ---- Pico -----------------------------------------------------------------------------------------

def make_drive_stand_in(root: Path, info: str = RP2040_INFO, user: str = "me", label: str = "RPI-RP2") -> Path:
    """Stands in for the drive the RP2040's boot ROM shows when BOOTSEL is held: /media/<user>/RPI-RP2
    with its INFO_UF2.TXT (no Pico is attached here)."""
    drive = root / user / label
    drive.mkdir(parents=True)
    (drive / "INFO_UF2.TXT").write_text(info)
    (drive / "INDEX.HTM").write_text("<html>redirect</html>")
    return drive


def make_pico_build(root: Path) -> Path:
    (root / "build").mkdir(parents=True)
    (root / "build" / "tinyagent.uf2").write_bytes(b"UF2\n" + bytes(range(256)) * 8)
    write_manifest(root, "pico", name="tinyagent-project.json")
    return root


def test_flash_pico_copies_the_uf2_to_the_rp2040_drive(tmp_path):
    media = tmp_path / "media"
    drive = make_drive_stand_in(media)
    make_drive_stand_in(media, RP2350_INFO, label="RP2350")   # a Pico 2 is not the board
    project = make_pico_build(tmp_path / "pico")
    assert fl.find_rp2040_drives((media, tmp_path / "absent")) == [drive]
    line = fl.flash("pico", project, mount_roots=(media,))
    copied = drive / "tinyagent.uf2"
    assert copied.read_bytes() == (project / "build" / "tinyagent.uf2").read_bytes()
    assert "\n" not in line and str(drive) in line
    assert not (media / "me" / "RP2350" / "tinyagent.uf2").exists()


def test_flash_pico_takes_the_drive_from_port(tmp_path):
    media = tmp_path / "media"
    project = make_pico_build(tmp_path / "pico")

    def pico(port=None):
        return lambda: fl.flash("pico", project, port=port, mount_roots=(media,))

    first, second = make_drive_stand_in(media, user="a"), make_drive_stand_in(media, user="b")
    refused(fl.FLASH_NO_PORT, pico(), "several", "--port")
    fl.flash("pico", project / "build", port=str(second), mount_roots=(media,))
    assert (second / "tinyagent.uf2").is_file() and not (first / "tinyagent.uf2").exists()
    refused(fl.FLASH_NO_PORT, pico(str(tmp_path)), "INFO_UF2.TXT")
    pico2 = make_drive_stand_in(media, RP2350_INFO, user="c", label="RP2350")
    refused(fl.FLASH_WRONG_CHIP, pico(str(pico2)), "RP2040")


def test_flash_pico_without_a_drive_says_to_hold_bootsel(tmp_path, monkeypatch):
    real_which = shutil.which  # a machine with picotool installed still takes the no-picotool path here
    monkeypatch.setattr(fl.shutil, "which",
                        lambda name, *a, **k: None if name == "picotool" else real_which(name, *a, **k))
    project = make_pico_build(tmp_path / "pico")
    refused(fl.FLASH_NO_PORT, lambda: fl.flash("pico", project, mount_roots=(tmp_path / "media",)),
            "BOOTSEL", "picotool")


# ---- emulated boards ------------------------------------------------------------------------------

@pytest.mark.parametrize("board", ["mps2-an386", "riscv32-virt", "lx106-sim", "microbit", "host"])
def test_flashing_an_emulated_board_says_how_to_start_it(board, tmp_path):
    line = fl.flash(board, tmp_path)
    assert "\n" not in line and f"tinyagent chat --board {board}" in line
