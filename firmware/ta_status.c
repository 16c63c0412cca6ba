/* Names of the status codes, generated from the same list as the enum (ta_status.h). */
#include "ta_status.h"

#define TA_STATUS_NAME_ENTRY(id, text) text,
static const char *const status_names[TA_STATUS_COUNT] = {TA_STATUS_LIST(TA_STATUS_NAME_ENTRY)};
#undef TA_STATUS_NAME_ENTRY

const char *ta_status_name(ta_status status)
{
    if ((unsigned)status >= (unsigned)TA_STATUS_COUNT) {
        return "unknown status";
    }
    return status_names[status];
}
