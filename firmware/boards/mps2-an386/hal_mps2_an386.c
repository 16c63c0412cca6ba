/* mps2-an386 HAL: Arm MPS2+ with the AN386 Cortex-M4 image, as QEMU models it.
 *
 * Console: CMSDK APB UART0. LED: FPGAIO LED0 (the board's user LEDs). Pins: the four CMSDK AHB GPIO
 * blocks, 16 pins each. QEMU leaves them unimplemented (writes are ignored, reads are 0), so a pin
 * the HAL drives reads back the level it last drove (kept here, as the output latch); any other pin
 * reads the block's DATA register. Time: SysTick at the 25 MHz core clock, one interrupt per
 * millisecond; the board runs with -icount shift=0, so that clock is 1 ns per instruction and a
 * SysTick tick 40 instructions (QEMU has no DWT cycle counter). The timer slots run on it, from
 * ta_hal_getc's wait (the SysTick handler only counts). The board has no temperature sensor or ADC,
 * so those are simulated (../sim/sim_adc.h). Exit: Arm semihosting.
 */
#include "../cortex-m/cortexm.h"
#include "../sim/sim_adc.h"
#include "ta_devices.h"
#include "ta_hal.h"

#define REG32(addr) (*(volatile uint32_t *)(addr))

#define CORE_CLOCK_HZ 25000000u          /* AN386 SYSCLK */
#define TICKS_PER_MS (CORE_CLOCK_HZ / 1000u)

#define UART0_BASE 0x40004000u           /* CMSDK APB UART0 */
#define UART_DATA REG32(UART0_BASE + 0x00u)
#define UART_STATE REG32(UART0_BASE + 0x04u)
#define UART_CTRL REG32(UART0_BASE + 0x08u)
#define UART_BAUDDIV REG32(UART0_BASE + 0x10u)
#define UART_STATE_TX_FULL 0x1u
#define UART_STATE_RX_FULL 0x2u
#define UART_CTRL_TX_RX_EN 0x3u
#define UART_BAUD 115200u

#define FPGAIO_LED0 REG32(0x40028000u)   /* bits [1:0]: user LEDs 0 and 1 */

#define GPIO_BASE(n) (0x40010000u + 0x1000u * (uint32_t)(n))  /* CMSDK AHB GPIO 0..3 */
#define GPIO_DATA(n) REG32(GPIO_BASE(n) + 0x00u)
#define GPIO_OUTENSET(n) REG32(GPIO_BASE(n) + 0x10u)
/* Masked access: writing MASKED(lo/hi byte, bit mask) changes only the bits in the mask. */
#define GPIO_MASKED_LB(n, m) REG32(GPIO_BASE(n) + 0x400u + ((uint32_t)(m) << 2))
#define GPIO_MASKED_UB(n, m) REG32(GPIO_BASE(n) + 0x800u + ((uint32_t)(m) >> 8 << 2))
#define NUM_PINS 64

#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)
#define SYST_CSR_ENABLE_TICKINT_CPUCLK 0x7u
#define SYST_CSR_COUNTFLAG (1u << 16)    /* set each time the counter wraps; cleared by reading */

#define SIM_TEMP_DECICELSIUS 235 /* simulated 23.5 C: the board has no sensor */
/* Plain loop iterations between SysTick reads in the exit pause: under -icount every device read is
 * slow, and polling one for 50 ms of instruction time took seconds. Far below 1 ms either way. */
#define EXIT_SPIN_PER_POLL 1000u

static volatile uint32_t ms_ticks;
static int led_state;
static uint64_t pins_driven; /* bit n: the HAL drives pin n ... */
static uint64_t pins_high;   /* ... and drives it high */

void ta_cm_systick_handler(void) { ms_ticks++; }

void ta_hal_init(void)
{
    UART_BAUDDIV = CORE_CLOCK_HZ / UART_BAUD;
    UART_CTRL = UART_CTRL_TX_RX_EN;
    SYST_RVR = TICKS_PER_MS - 1u;
    SYST_CVR = 0u;
    SYST_CSR = SYST_CSR_ENABLE_TICKINT_CPUCLK;
    ta_hal_led_set(0);
}

void ta_hal_exit(int code)
{
    /* Count SysTick wraps rather than ms_ticks: in a fault handler the SysTick interrupt cannot run. */
    for (uint32_t ms = 0; ms < TA_CM_EXIT_LINGER_MS;) {
        if (SYST_CSR & SYST_CSR_COUNTFLAG) {
            ms++;
        }
        for (uint32_t i = 0; i < EXIT_SPIN_PER_POLL; i++) {
            __asm__ volatile("");
        }
    }
    ta_cm_semihost_exit(code);
}

int ta_hal_getc(void)
{
    while (!(UART_STATE & UART_STATE_RX_FULL)) {
        ta_hal_poll();
    }
    return (int)(UART_DATA & 0xFFu);
}

void ta_hal_write(const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        while (UART_STATE & UART_STATE_TX_FULL) {
        }
        UART_DATA = (uint8_t)buf[i];
    }
}

uint32_t ta_hal_millis(void) { return ms_ticks; }

/* 25 MHz core clock ticks (40 instructions each under -icount shift=0), from the millisecond count
 * and SysTick's down-counter. */
uint32_t ta_hal_cycles(void)
{
    uint32_t ms, left;
    do {
        ms = ms_ticks;
        left = SYST_CVR;
    } while (ms != ms_ticks);
    return ms * TICKS_PER_MS + (TICKS_PER_MS - 1u - left);
}

void ta_hal_led_set(int on)
{
    led_state = on ? 1 : 0;
    FPGAIO_LED0 = (uint32_t)led_state;
}

int ta_hal_led_get(void) { return led_state; }

int ta_hal_gpio_write(int pin, int level)
{
    if (pin < 0 || pin >= NUM_PINS) {
        return -1;
    }
    int block = pin / 16;
    uint32_t mask = 1u << (pin % 16);
    GPIO_OUTENSET(block) = mask;
    uint32_t value = level ? mask : 0u;
    if (mask & 0xFFu) {
        GPIO_MASKED_LB(block, mask) = value;
    } else {
        GPIO_MASKED_UB(block, mask) = value;
    }
    uint64_t bit = (uint64_t)1 << pin;
    pins_driven |= bit;
    pins_high = level ? pins_high | bit : pins_high & ~bit;
    return 0;
}

int ta_hal_gpio_read(int pin)
{
    if (pin < 0 || pin >= NUM_PINS) {
        return -1;
    }
    if ((pins_driven >> pin) & 1u) {
        return (int)((pins_high >> pin) & 1u);
    }
    return (int)((GPIO_DATA(pin / 16) >> (pin % 16)) & 1u);
}

int32_t ta_hal_temp_decicelsius(void) { return SIM_TEMP_DECICELSIUS; }

int32_t ta_hal_adc_read_raw(int ch) { return sim_adc_raw(ch); }

int32_t ta_hal_adc_read_mv(int ch) { return sim_adc_mv(ch); }
