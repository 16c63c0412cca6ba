/* libFuzzer target: the call grammar (ta_call_viable / ta_call_complete) over the generated tool
 * tables, on any bytes. Checks: a complete call is viable and no longer than max_call_len (which
 * the decoder's buffers are sized by), and viability is closed under prefixes (the decoder relies
 * on it: it extends a viable prefix one token at a time). The copy on the heap has no slack, so an
 * overread past n is caught. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ta_agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4 * TA_CALL_MAX) {
        return 0;
    }
    uint8_t *text = malloc(size > 0 ? size : 1);
    memcpy(text, data, size);
    int viable = ta_call_viable(text, size);
    int complete = ta_call_complete(text, size);
    if (complete && (!viable || size > (size_t)ta_agent_data.max_call_len || size > TA_CALL_MAX)) {
        abort();
    }
    if (viable) {
        for (size_t k = 0; k < size; k++) {
            if (!ta_call_viable(text, k)) {
                abort(); /* a viable text with a dead prefix */
            }
        }
    }
    free(text);
    return 0;
}
