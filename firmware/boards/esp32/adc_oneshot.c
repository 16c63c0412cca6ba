/* ESP-IDF ADC: ADC1 in one-shot mode (esp_adc/adc_oneshot.h), 12 bits, 12 dB attenuation (the
 * widest input range: about 0..3.1 V on the S3, 0..2.5 V on the C3, 0.15..2.45 V on the ESP32).
 * Channel n is ADC1 channel n (ESP32: GPIO36, 37, 38, 39, 32, 33, 34, 35; ESP32-S3: GPIO1..10;
 * ESP32-C3: GPIO0..4); ADC2 is left to Wi-Fi. Millivolts come from the IDF's calibration of the
 * chip (its eFuse values, in integers): curve fitting on the S3 and C3, line fitting on the ESP32.
 * Without calibration data the reading is scaled to a nominal 3.1 V full scale.
 */
#include "esp_board.h"

#include "esp_adc/adc_cali.h"
#include "esp_adc/adc_cali_scheme.h"
#include "esp_adc/adc_oneshot.h"
#include "esp_err.h"
#include "soc/soc_caps.h"

#define ATTEN ADC_ATTEN_DB_12
#define BITWIDTH ADC_BITWIDTH_12
#define FULL_SCALE_RAW 4095
#define NOMINAL_FULL_SCALE_MV 3100 /* only without calibration data */
#define N_CHANNELS SOC_ADC_CHANNEL_NUM(ADC_UNIT_1)

static adc_oneshot_unit_handle_t unit;
static adc_cali_handle_t cali;     /* 0: no calibration scheme or data on this chip */
static uint32_t channels_ready;    /* bit n: channel n is configured */

void esp_adc_init(void)
{
    const adc_oneshot_unit_init_cfg_t cfg = { .unit_id = ADC_UNIT_1 };
    ESP_ERROR_CHECK(adc_oneshot_new_unit(&cfg, &unit));
#if ADC_CALI_SCHEME_CURVE_FITTING_SUPPORTED
    const adc_cali_curve_fitting_config_t cal = { .unit_id = ADC_UNIT_1, .atten = ATTEN, .bitwidth = BITWIDTH };
    if (adc_cali_create_scheme_curve_fitting(&cal, &cali) != ESP_OK) {
        cali = 0;
    }
#elif ADC_CALI_SCHEME_LINE_FITTING_SUPPORTED
    const adc_cali_line_fitting_config_t cal = { .unit_id = ADC_UNIT_1, .atten = ATTEN, .bitwidth = BITWIDTH };
    if (adc_cali_create_scheme_line_fitting(&cal, &cali) != ESP_OK) {
        cali = 0;
    }
#endif
}

int esp_adc_read(int ch, int32_t *raw, int32_t *mv)
{
    if (ch < 0 || ch >= N_CHANNELS) {
        return -1;
    }
    if (((channels_ready >> ch) & 1u) == 0) {
        const adc_oneshot_chan_cfg_t cfg = { .atten = ATTEN, .bitwidth = BITWIDTH };
        if (adc_oneshot_config_channel(unit, (adc_channel_t)ch, &cfg) != ESP_OK) {
            return -1;
        }
        channels_ready |= 1u << ch;
    }
    int value;
    if (adc_oneshot_read(unit, (adc_channel_t)ch, &value) != ESP_OK) {
        return -1;
    }
    if (raw != 0) {
        *raw = value;
    }
    if (mv != 0) {
        int volts_mv;
        if (cali == 0 || adc_cali_raw_to_voltage(cali, value, &volts_mv) != ESP_OK) {
            volts_mv = (value * NOMINAL_FULL_SCALE_MV + FULL_SCALE_RAW / 2) / FULL_SCALE_RAW;
        }
        *mv = volts_mv;
    }
    return 0;
}
