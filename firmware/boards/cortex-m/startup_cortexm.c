/* Startup shared by the Cortex-M boards (mps2-an386, microbit): vector table and reset handler.
 *
 * The reset handler copies .data from flash, zeroes .bss, runs main and passes its return value to
 * ta_hal_exit. No external interrupt is used, so the table holds the 16 system vectors only. A fault
 * ends the program with TA_CM_EXIT_FAULT so that a crash under QEMU is a failed run, not a hang.
 */
#include <stdint.h>

#include "cortexm.h"
#include "ta_hal.h"

/* Symbols from the board's linker script. */
extern uint32_t __stack_top[];
extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];

int main(void);

void ta_cm_reset_handler(void);
void ta_cm_fault_handler(void);
void ta_cm_default_handler(void);
/* A board that uses SysTick defines this; the others leave the default (which never runs). */
void ta_cm_systick_handler(void) __attribute__((weak, alias("ta_cm_default_handler")));

typedef void (*ta_cm_vector)(void);

__attribute__((section(".vectors"), used))
static const ta_cm_vector ta_cm_vectors[16] = {
    (ta_cm_vector)(uintptr_t)__stack_top, /* initial stack pointer */
    ta_cm_reset_handler,                  /* reset */
    ta_cm_fault_handler,                  /* NMI */
    ta_cm_fault_handler,                  /* HardFault */
    ta_cm_fault_handler,                  /* MemManage (v7-M) */
    ta_cm_fault_handler,                  /* BusFault (v7-M) */
    ta_cm_fault_handler,                  /* UsageFault (v7-M) */
    0, 0, 0, 0,                           /* reserved */
    ta_cm_default_handler,                /* SVCall */
    ta_cm_default_handler,                /* DebugMonitor (v7-M) */
    0,                                    /* reserved */
    ta_cm_default_handler,                /* PendSV */
    ta_cm_systick_handler,                /* SysTick */
};

void ta_cm_reset_handler(void)
{
    /* Word loops rather than memcpy/memset: libc must not run before .bss is zeroed. */
    const uint32_t *src = __data_load;
    for (uint32_t *dst = __data_start; dst < __data_end; dst++) {
        *dst = *src++;
    }
    for (uint32_t *dst = __bss_start; dst < __bss_end; dst++) {
        *dst = 0;
    }
    ta_hal_exit(main());
}

void ta_cm_fault_handler(void)
{
    ta_hal_exit(TA_CM_EXIT_FAULT); /* the board's exit, so the last output still gets out */
}

void ta_cm_default_handler(void)
{
    for (;;) {
    }
}

/* SYS_EXIT_EXTENDED (0x20) carries the exit status on 32-bit Arm; plain SYS_EXIT cannot. QEMU exits
 * with `code` when started with -semihosting-config enable=on. */
void ta_cm_semihost_exit(int code)
{
    static uint32_t block[2];
    block[0] = 0x20026u; /* ADP_Stopped_ApplicationExit */
    block[1] = (uint32_t)code;
    register uint32_t r0 __asm__("r0") = 0x20u;
    register uint32_t *r1 __asm__("r1") = block;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) {
    }
}
