/* hal_test_clock.h: the console and clock half of ta_hal.h for the HAL test programs. */
#include <stdio.h>

#include "hal_test_clock.h"
#include "ta_hal.h"

uint32_t ta_test_now;

void ta_hal_init(void) {}
void ta_hal_exit(int code) { (void)code; }
int ta_hal_getc(void) { return -1; }
void ta_hal_write(const char *buf, size_t n) { fwrite(buf, 1, n, stdout); }
uint32_t ta_hal_millis(void) { return ta_test_now; }
uint32_t ta_hal_cycles(void) { return 0; }
