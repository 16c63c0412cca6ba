/* The fuzzing HAL's one extra entry point: which bytes ta_hal_getc hands out next. */
#ifndef TA_HAL_FUZZ_H
#define TA_HAL_FUZZ_H

#include <stddef.h>
#include <stdint.h>

void fuzz_set_input(const uint8_t *data, size_t n);
extern size_t fuzz_out_bytes; /* bytes the firmware wrote since fuzz_set_input */

#endif /* TA_HAL_FUZZ_H */
