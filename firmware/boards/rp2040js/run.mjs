// Runs a bare-metal RP2040 program (an ELF, or a flat .bin for 0x10000000) under rp2040js, with UART0 on
// stdin and stdout, byte for byte.
//
//   node run.mjs program.elf [--max-cycles N]
//
// rp2040js ships no boot ROM, so the image goes straight into flash and the core starts from its vector
// table at 0x10000000 (VTOR, SP and PC from it): no boot2 stage is needed. Input is held here and fed to
// the UART's receive FIFO only while it has room, so nothing is dropped however fast it comes. When stdin
// closes, the rest of the input is fed and then a break (the PL011's BE flag): the firmware takes it as
// the console going away and exits. The program's Arm semihosting exit (BKPT 0xAB, SYS_EXIT_EXTENDED)
// becomes this process's exit code; another BKPT exits with 98, an undefined instruction (UDF) raises
// HardFault as on the silicon, a read of unmapped memory is logged on
// stderr. Each pad's input follows the level driven on it, as on the silicon.
//
// Cycles: rp2040js charges every instruction its Cortex-M0+ cycles (loads 2, taken branches 2, MULS 1)
// and steps the clocks at 125 MHz, so SysTick and the TIMER count emulated cycles and microseconds.
// tinyagent's console (host/tinyagent/device/transport.py, run kind "stdio") gives this program a pty as
// stdin and stdout; tests and benchmarks may use pipes.
//
// With TA_RP2040_PROFILE=FILE in the environment, the cycles of every instruction are added up by its
// address and written to FILE as JSON ({"address": cycles}) when the program ends (bench.py maps them to
// functions with the ELF's symbols).
import { readFileSync, writeFileSync } from 'node:fs';
import { GPIOPinState, RP2040 } from 'rp2040js';

const FLASH_BASE = 0x10000000;
const FEED_EVERY = 4096;        // instructions between looks at the input queue
const SLICE = 2_000_000;        // instructions between returns to the event loop (stdin, stdout)
const CYCLE_NANOS = 8;          // 125 MHz
const EXIT_BAD_BREAK = 98;      // a BKPT that is not a semihosting call
const EXIT_CYCLES = 124;        // --max-cycles ran out
const EXIT_USAGE = 2;
const SEMIHOST_BKPT = 0xab;
const SYS_EXIT = 0x18, SYS_EXIT_EXTENDED = 0x20;
const ADP_STOPPED_APPLICATION_EXIT = 0x20026;
const UART_BREAK = 0x400;       // DR's BE bit, pushed in place of a byte
const HARDFAULT = 3;            // exception number

function usage(msg) {
  process.stderr.write(`run.mjs: ${msg}\nusage: node run.mjs program.elf|program.bin [--max-cycles N]\n`);
  process.exit(EXIT_USAGE);
}

// The loadable segments of a little-endian 32-bit ARM ELF, by physical address (where they are stored:
// .data's initial values go to flash after the code).
function elfSegments(buf) {
  if (buf.readUInt32BE(0) !== 0x7f454c46) return null;
  if (buf[4] !== 1 || buf[5] !== 1 || buf.readUInt16LE(18) !== 40) usage('not a 32-bit little-endian ARM ELF');
  const phoff = buf.readUInt32LE(28), phentsize = buf.readUInt16LE(42), phnum = buf.readUInt16LE(44);
  const segs = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    const [type, offset, , paddr, filesz] = [0, 4, 8, 12, 16].map((k) => buf.readUInt32LE(o + k));
    if (type === 1 && filesz > 0) segs.push({ paddr, data: buf.subarray(offset, offset + filesz) });
  }
  return segs;
}

function load(mcu, path) {
  let buf;
  try {
    buf = readFileSync(path);
  } catch (e) {
    usage(`cannot read ${path}: ${e.code || e.message}`);
  }
  const segs = elfSegments(buf) ?? [{ paddr: FLASH_BASE, data: buf }];
  for (const { paddr, data } of segs) {
    if (paddr < FLASH_BASE || paddr + data.length > FLASH_BASE + mcu.flash.length) {
      usage(`${path}: a segment at 0x${paddr.toString(16)} is outside flash (0x10000000, ${mcu.flash.length} bytes)`);
    }
    mcu.flash.set(data, paddr - FLASH_BASE);
  }
}

const args = process.argv.slice(2);
let image = null, maxCycles = Infinity;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--max-cycles') {
    maxCycles = Number(args[++i]);
    if (!Number.isFinite(maxCycles) || maxCycles <= 0) usage(`--max-cycles needs a positive number, got ${args[i]}`);
  } else if (image === null) image = args[i];
  else usage(`unexpected argument ${args[i]}`);
}
if (image === null) usage('no program given');

const mcu = new RP2040();
mcu.logger = { debug() {}, info() {}, warn(c, m) { process.stderr.write(`rp2040js: ${c}: ${m}\n`); },
  error(c, m) { process.stderr.write(`rp2040js: ${c}: ${m}\n`); } };
load(mcu, image);
mcu.core.VTOR = FLASH_BASE;
mcu.core.SP = mcu.readUint32(FLASH_BASE);
mcu.core.PC = mcu.readUint32(FLASH_BASE + 4) & ~1;

for (const pin of mcu.gpio) {  // the pad: what is driven on a pin is what its input sees
  pin.addListener((state) => {
    if (state === GPIOPinState.High || state === GPIOPinState.Low) pin.setInputValue(state === GPIOPinState.High);
  });
}

const uart = mcu.uart[0];
const RXFF = 1 << 6;
let input = [];        // chunks not yet fed
let inputAt = 0;       // position in input[0]
let stdinClosed = false, breakSent = false;
let output = [];
let finished = false;

uart.onByte = (b) => output.push(b);

function flushOutput() {
  if (output.length) {
    const chunk = Buffer.from(output);
    output = [];
    try {
      process.stdout.write(chunk);
    } catch {
      // the reader has gone: nothing more to say to it
    }
  }
}

function feed() {
  while (input.length && !(uart.flags & RXFF)) {
    const chunk = input[0];
    uart.feedByte(chunk[inputAt++]);
    if (inputAt === chunk.length) {
      input.shift();
      inputAt = 0;
    }
  }
  if (stdinClosed && !breakSent && !input.length && !(uart.flags & RXFF)) {
    uart.feedByte(UART_BREAK);
    breakSent = true;
  }
}

const profile = process.env.TA_RP2040_PROFILE ? new Map() : null;

function finish(code) {
  if (finished) return;
  finished = true;
  flushOutput();
  if (profile) writeFileSync(process.env.TA_RP2040_PROFILE, JSON.stringify(Object.fromEntries(profile)));
  process.stdout.write('', () => process.exit(code));
}

mcu.onBreak = (imm) => {
  const { core } = mcu, r = core.registers;
  const op = mcu.readUint16(core.PC - core.breakRewind);
  if (op >> 8 === 0xde || op >> 4 === 0xf7f) {  // UDF: rp2040js reports it as a break; the M0+ faults
    core.PC -= core.breakRewind;
    core.exceptionEntry(HARDFAULT);
    return;
  }
  if (imm === SEMIHOST_BKPT && (r[0] === SYS_EXIT_EXTENDED || r[0] === SYS_EXIT)) {
    const reason = r[0] === SYS_EXIT ? r[1] : mcu.readUint32(r[1]);
    const code = r[0] === SYS_EXIT_EXTENDED ? mcu.readUint32(r[1] + 4) : 0;
    finish(reason === ADP_STOPPED_APPLICATION_EXIT ? code & 0xff : 1);
  } else {
    process.stderr.write(`run.mjs: BKPT 0x${imm.toString(16)} at 0x${(mcu.core.PC - 2).toString(16)}\n`);
    finish(EXIT_BAD_BREAK);
  }
};

function run() {
  const { core, clock } = mcu;
  for (let i = 0; i < SLICE && !finished; i++) {
    if (i % FEED_EVERY === 0) feed();
    if (core.waiting) {
      const wait = clock.nanosToNextAlarm;
      clock.tick(wait);
      i += Math.ceil(wait / CYCLE_NANOS);
    } else if (profile) {
      const pc = core.PC, cycles = core.executeInstruction();
      profile.set(pc, (profile.get(pc) || 0) + cycles);
      clock.tick(cycles * CYCLE_NANOS);
    } else {
      clock.tick(core.executeInstruction() * CYCLE_NANOS);
    }
  }
  flushOutput();
  if (finished) return;
  if (core.cycles >= maxCycles) {
    process.stderr.write(`run.mjs: stopped after ${core.cycles} cycles (--max-cycles)\n`);
    finish(EXIT_CYCLES);
    return;
  }
  setImmediate(run);
}

process.stdin.on('data', (chunk) => input.push(chunk));
const closed = () => { stdinClosed = true; };
process.stdin.on('end', closed);
process.stdin.on('error', closed);   // a pty whose other side has closed reads EIO
process.stdout.on('error', () => finish(0));
run();
