/* The runtime's output (see ta_output.h). */
#include "ta_output.h"

#include "ta_hal.h"
#include "ta_text.h"

#define OUT_BUF_BYTES 128

static char out_buf[OUT_BUF_BYTES];
static size_t out_len;
void ta_flush(void)
{
    if (out_len > 0) {
        ta_hal_write(out_buf, out_len);
        out_len = 0;
    }
}

void ta_put_bytes(const void *p, size_t n)
{
    const char *s = (const char *)p;
    for (size_t i = 0; i < n; i++) {
        if (out_len == OUT_BUF_BYTES) {
            ta_flush();
        }
        out_buf[out_len++] = s[i];
    }
}

void ta_put(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    ta_put_bytes(s, n);
}

void ta_put_u32(uint32_t u)
{
    char buf[TA_TEXT_U64_MAX];
    ta_put_bytes(buf, ta_text_u64(buf, u));
}

void ta_put_i32(int32_t v)
{
    if (v < 0) {
        ta_put("-");
    }
    ta_put_u32(v < 0 ? 0u - (uint32_t)v : (uint32_t)v);
}

void ta_put_hex32(uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    char buf[8];
    for (int i = 7; i >= 0; i--) {
        buf[i] = digits[v & 0xFu];
        v >>= 4;
    }
    ta_put_bytes(buf, sizeof buf);
}
