/* lx106-sim HAL: an Xtensa LX106 (the ESP8266's core) in QEMU's `-M sim` machine.
 *
 * Console: the simulator's simcall interface (read fd 0 / write fd 1), which QEMU connects to the
 * first serial chardev; simcall needs QEMU's -semihosting. Time: the CCOUNT cycle counter, which
 * QEMU advances at the core's clock rate (40 MHz) of its virtual clock; the board runs with -icount
 * shift=0, which makes that 1 ns per instruction, so one CCOUNT tick is 25 instructions; the timer
 * slots run on that clock. The machine has no LED, pins, sensor or ADC: those are simulated
 * (../sim/hal_sim_devices.c). Exit: simcall exit.
 */
#include "ta_hal.h"

#define SYS_EXIT 1
#define SYS_READ 3
#define SYS_WRITE 4
#define SIM_EAGAIN 11          /* read: the console has nothing yet */
#define CCOUNT_HZ 40000000u    /* QEMU's lx106 core config: 40 MHz */
#define EXIT_LINGER_MS 50      /* pause before exiting so the host reads the last output */

static uint32_t last_ccount;   /* CCOUNT at the previous read */
static uint64_t total_cycles;  /* cycles since ta_hal_init, extended past the 32-bit wrap */

/* simcall: a2 = call number, a3..a5 = arguments; returns a2 (result) and a3 (errno). */
static int32_t simcall(int32_t nr, int32_t a, int32_t b, int32_t c, int32_t *err)
{
    register int32_t a2 __asm__("a2") = nr;
    register int32_t a3 __asm__("a3") = a;
    register int32_t a4 __asm__("a4") = b;
    register int32_t a5 __asm__("a5") = c;
    __asm__ volatile("simcall" : "+r"(a2), "+r"(a3) : "r"(a4), "r"(a5) : "memory");
    *err = a3;
    return a2;
}

static uint32_t ccount(void)
{
    uint32_t n;
    __asm__ volatile("rsr %0, ccount" : "=a"(n));
    return n;
}

static uint64_t cycles64(void)
{
    uint32_t now = ccount();
    total_cycles += (uint32_t)(now - last_ccount);
    last_ccount = now;
    return total_cycles;
}

void ta_hal_init(void) { last_ccount = ccount(); }

void ta_hal_exit(int code)
{
    uint32_t start = ta_hal_millis();
    while (ta_hal_millis() - start < EXIT_LINGER_MS) {
    }
    int32_t err;
    simcall(SYS_EXIT, code, 0, 0, &err);
    for (;;) {
    }
}

int ta_hal_getc(void)
{
    unsigned char c;
    int32_t err;
    for (;;) {
        ta_hal_poll();
        int32_t n = simcall(SYS_READ, 0, (int32_t)(uintptr_t)&c, 1, &err);
        if (n == 1) {
            return c;
        }
        if (n < 0 && err != SIM_EAGAIN) {
            return -1;
        }
    }
}

void ta_hal_write(const char *buf, size_t n)
{
    int32_t err;
    while (n > 0) {
        int32_t w = simcall(SYS_WRITE, 1, (int32_t)(uintptr_t)buf, (int32_t)n, &err);
        if (w <= 0) {
            return;
        }
        buf += w;
        n -= (size_t)w;
    }
}

uint32_t ta_hal_millis(void) { return (uint32_t)(cycles64() / (CCOUNT_HZ / 1000u)); }

uint32_t ta_hal_cycles(void) { return ccount(); }
