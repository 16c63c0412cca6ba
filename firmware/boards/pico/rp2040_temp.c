/* RP2040 datasheet, section 4.9.5: T = 27 - (V_be - 0.706 V) / 0.001721 V/C, with V_be measured by
 * the ADC against its 3.3 V reference. All in integers: microvolts times the sample count. */
#include "rp2040_temp.h"

#define VREF_UV 3300000           /* ADC reference, microvolts */
#define ADC_STEPS 4096            /* 12-bit converter */
#define VBE_27C_UV 706000         /* sensor voltage at 27 C */
#define SLOPE_UV_PER_C 1721       /* -1.721 mV per degree */
#define DECI_AT_27C 270

/* a / b rounded half away from zero (b > 0). */
static int64_t div_round(int64_t a, int64_t b)
{
    return a >= 0 ? (a + b / 2) / b : -((-a + b / 2) / b);
}

int32_t rp2040_temp_decicelsius(uint32_t raw_sum, uint32_t n)
{
    if (n == 0) {
        return 0;
    }
    /* (V - 0.706) * 10 / 0.001721 with V = raw_sum * VREF / (ADC_STEPS * n), over one denominator */
    int64_t num = ((int64_t)raw_sum * VREF_UV - (int64_t)VBE_27C_UV * ADC_STEPS * n) * 10;
    int64_t den = (int64_t)ADC_STEPS * n * SLOPE_UV_PER_C;
    return (int32_t)(DECI_AT_27C - div_round(num, den));
}
