/* libFuzzer target: any byte stream typed at the console (line editing, escapes, UTF-8 checks, the
 * '!' commands, chat turns through the grammar and the tools). The console reads the input through
 * the fuzzing HAL and returns when it runs out; sanitizers catch what goes wrong on the way. */
#include <stddef.h>
#include <stdint.h>

#include "hal_fuzz.h"
#include "ta_console.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a newline first ends any line a previous input left half-read (CR state aside: the console
     * keeps its static state between inputs, as a device does between lines) */
    static const uint8_t reset_line[1] = {'\n'};
    fuzz_set_input(reset_line, 1);
    ta_console_run();
    fuzz_set_input(data, size);
    ta_console_run();
    return 0;
}
