/* A simulated 12-bit ADC, for boards that have none of their own (host, riscv32-virt, lx106-sim,
 * mps2-an386, microbit): four channels that read steady, documented values, so runs are
 * reproducible. Channel n reads 500 * (n + 1) mV against a 3.3 V reference:
 *   channel   0     1     2     3
 *   mV      500  1000  1500  2000
 *   raw     620  1241  1861  2482     (= mV * 4095 / 3300, rounded)
 */
#ifndef TA_SIM_ADC_H
#define TA_SIM_ADC_H

#include "ta_hal.h"

#define SIM_ADC_CHANNELS 4
#define SIM_ADC_VREF_MV 3300
#define SIM_ADC_STEP_MV 500

static inline int32_t sim_adc_mv(int ch)
{
    return ch >= 0 && ch < SIM_ADC_CHANNELS ? SIM_ADC_STEP_MV * (ch + 1) : -1;
}

static inline int32_t sim_adc_raw(int ch)
{
    int32_t mv = sim_adc_mv(ch);
    return mv < 0 ? -1 : (mv * TA_HAL_ADC_MAX + SIM_ADC_VREF_MV / 2) / SIM_ADC_VREF_MV;
}

#endif /* TA_SIM_ADC_H */
