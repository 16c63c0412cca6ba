/* The RP2040's temperature sensor reading, converted in integers (no SDK headers: this part is
 * compiled and tested on the host, tests/test_sdk_projects.py). */
#ifndef RP2040_TEMP_H
#define RP2040_TEMP_H

#include <stdint.h>

/* Tenths of a degree C from the sum of `n` 12-bit ADC readings of input 4 (the sensor) with the
 * 3.3 V reference: the datasheet's T = 27 - (V - 0.706) / 0.001721, V = raw * 3.3 / 4096, rounded
 * half away from zero. n is 1..1024; n = 0 gives 0. */
int32_t rp2040_temp_decicelsius(uint32_t raw_sum, uint32_t n);

#endif /* RP2040_TEMP_H */
