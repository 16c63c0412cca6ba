/* The rest of ta_hal.h for a test program that links the timer slots (boards/common/hal_timers.c) and
 * the simulated devices (boards/sim/) without a board: a console that is never read, output to stdout,
 * and a clock the program sets itself (hal_test_clock.c), so every due time is exact. */
#ifndef TA_HAL_TEST_CLOCK_H
#define TA_HAL_TEST_CLOCK_H

#include <stdint.h>

extern uint32_t ta_test_now; /* ta_hal_millis() returns it */

#endif /* TA_HAL_TEST_CLOCK_H */
