/* Helpers shared by the Cortex-M boards' HALs (not part of the portable HAL interface). */
#ifndef TA_CORTEXM_H
#define TA_CORTEXM_H

#define TA_CM_EXIT_FAULT 99        /* exit code after a HardFault or other fault */
#define TA_CM_EXIT_LINGER_MS 50    /* pause before exiting so the host reads the last output */

/* End the emulator with `code` through Arm semihosting. Never returns. */
void ta_cm_semihost_exit(int code) __attribute__((noreturn));

#endif /* TA_CORTEXM_H */
