/* riscv32-virt HAL: QEMU's RISC-V virt machine with an RV32IMAC hart, started with -bios none.
 *
 * Console: the NS16550A UART at 0x10000000. Time: the ACLINT mtime counter (10 MHz). Cycles: the
 * minstret CSR, which QEMU makes an exact instruction count when run with -icount shift=0 (mtime
 * then advances 1 ns per instruction, so millis, and the timer slots that run on it, are
 * deterministic too). The machine has no LED, pins, sensor or ADC: those are simulated
 * (../sim/hal_sim_devices.c). Exit: the sifive_test device.
 */
#include "ta_hal.h"

#define REG8(addr) (*(volatile uint8_t *)(addr))
#define REG32(addr) (*(volatile uint32_t *)(addr))

#define UART_BASE 0x10000000u
#define UART_RBR REG8(UART_BASE + 0u)   /* read: receive buffer; write: THR */
#define UART_THR REG8(UART_BASE + 0u)
#define UART_LCR REG8(UART_BASE + 3u)
#define UART_LSR REG8(UART_BASE + 5u)
#define UART_LSR_DATA_READY 0x01u
#define UART_LSR_THR_EMPTY 0x20u
#define UART_LCR_8N1 0x03u

#define MTIME_LO REG32(0x0200BFF8u)     /* ACLINT mtime, 64 bits */
#define MTIME_HI REG32(0x0200BFFCu)
#define MTIME_HZ 10000000u

/* Goldfish RTC: nanoseconds of host (wall-clock) time; reading TIME_LOW latches TIME_HIGH. */
#define RTC_TIME_LOW REG32(0x00101000u)
#define RTC_TIME_HIGH REG32(0x00101004u)

#define SIFIVE_TEST REG32(0x00100000u)
#define SIFIVE_TEST_PASS 0x5555u
#define SIFIVE_TEST_FAIL 0x3333u          /* (code << 16) | FAIL exits QEMU with `code` */

#define EXIT_LINGER_NS 50000000u          /* wall-clock pause before exiting so the host reads the last output */

static uint64_t t0;

static uint64_t mtime(void)
{
    uint32_t hi, lo;
    do {
        hi = MTIME_HI;
        lo = MTIME_LO;
    } while (hi != MTIME_HI);
    return ((uint64_t)hi << 32) | lo;
}

void ta_hal_init(void)
{
    /* 8N1, and leave the FIFO control alone: resetting it would drop a byte that arrived early. */
    UART_LCR = UART_LCR_8N1;
    t0 = mtime();
}

static void finish(int code)
{
    SIFIVE_TEST = code == 0 ? SIFIVE_TEST_PASS : ((uint32_t)code << 16) | SIFIVE_TEST_FAIL;
    for (;;) {
    }
}

static uint64_t wall_ns(void)
{
    uint32_t lo = RTC_TIME_LOW;
    return ((uint64_t)RTC_TIME_HIGH << 32) | lo;
}

void ta_hal_exit(int code)
{
    /* Wall-clock time, not mtime: under -icount, mtime follows the instruction count, and 50 ms of
     * it is seconds of real time while the hart polls. */
    uint64_t start = wall_ns();
    while (wall_ns() - start < EXIT_LINGER_NS) {
    }
    finish(code);
}

int ta_hal_getc(void)
{
    while (!(UART_LSR & UART_LSR_DATA_READY)) {
        ta_hal_poll();
    }
    return UART_RBR;
}

void ta_hal_write(const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        while (!(UART_LSR & UART_LSR_THR_EMPTY)) {
        }
        UART_THR = (uint8_t)buf[i];
    }
}

uint32_t ta_hal_millis(void) { return (uint32_t)((mtime() - t0) / (MTIME_HZ / 1000u)); }

uint32_t ta_hal_cycles(void)
{
    uint32_t n;
    /* minstret is a Zicsr CSR; the rv32imac multilib's -march does not name Zicsr, so enable it
     * here only (adding _zicsr to -march would select the wrong multilib). */
    __asm__ volatile(".option push\n.option arch, +zicsr\ncsrr %0, minstret\n.option pop"
                     : "=r"(n));
    return n;
}
