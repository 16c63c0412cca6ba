#!/usr/bin/env bash
# Set up tinyagent on a fresh Debian 12 machine: apt packages (cross-compilers, QEMU), a venv with
# the CPU build of torch, and the package itself. With no argument it then runs the main job: build
# the shipped default agent for the default board and hold a short conversation with it.
#   bash setup.sh            set up, then the demo
#   bash setup.sh --no-demo  set up only (what CI does)
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(
  build-essential clang libclang-rt-14-dev valgrind cmake
  gcc-arm-none-eabi binutils-arm-none-eabi picolibc-arm-none-eabi libnewlib-arm-none-eabi
  gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf
  gcc-xtensa-lx106 picolibc-xtensa-lx106-elf
  qemu-system-arm qemu-system-misc
  nodejs
)
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Debian's npm, only where no npm came with node (NodeSource's nodejs has its own, and conflicts with it)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch first, pinned: the CPU build. An unpinned torch would pull several GB of CUDA packages.
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[test]"
# rp2040js, the RP2040 emulator the rp2040js board runs under, pinned by its package-lock.json, next to
# the runner (firmware/boards/rp2040js/node_modules). A node that is already on the machine will do.
npm ci --prefix firmware/boards/rp2040js --no-audit --no-fund --loglevel=error

if [ "${1:-}" != "--no-demo" ]; then
  .venv/bin/tinyagent build --board mps2-an386 --out build/mps2-an386
  printf 'turn on the light\nwhat'"'"'s the temperature?\nset a timer for 5 minutes\nhello there\n' \
    | .venv/bin/tinyagent chat --board mps2-an386 --out build/mps2-an386
fi
