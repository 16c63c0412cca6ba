/* rp2040js HAL: a bare-metal RP2040 (Cortex-M0+, 125 MHz) as the rp2040js emulator models it.
 *
 * Console: UART0 (PL011 at 0x40034000), which run.mjs connects to its stdin and stdout. A break on the
 * line (the PL011's BE flag in DR) is how run.mjs says that its stdin has closed: ta_hal_getc then
 * returns -1 and the program ends. LED: GPIO25, the Pico's LED. Pins: GPIO0..29 through SIO (the pad's
 * input enabled and the pin's function set to SIO on first use); run.mjs ties each pad's input to the
 * level driven on it, as the silicon does, so a driven pin reads back its level. Time: the TIMER's
 * raw microsecond count (0x40054000) for millis and the timer slots; cycles from SysTick on the core
 * clock, its 24-bit count extended by an interrupt at each wrap (rp2040js charges every instruction
 * its M0+ cycles, so these are exact emulated cycles). The board has no ADC wiring or sensor of its
 * own here, so the temperature and the ADC are simulated (../sim/sim_adc.h). Exit: Arm semihosting
 * (SYS_EXIT_EXTENDED), which run.mjs turns into its own exit code.
 *
 * Emulator only: there is no boot2 stage, no clock or PLL set-up and no peripheral reset release,
 * which real silicon needs (the `pico` board builds for it with the Pico SDK).
 */
#include "../cortex-m/cortexm.h"
#include "../sim/sim_adc.h"
#include "ta_devices.h"
#include "ta_hal.h"

#define REG32(addr) (*(volatile uint32_t *)(addr))

#define CORE_CLOCK_HZ 125000000u        /* clk_sys; rp2040js steps the core at 125 MHz */
#define PERI_CLOCK_HZ 125000000u        /* clk_peri, the UART's clock */

#define UART0_BASE 0x40034000u
#define UART_DR REG32(UART0_BASE + 0x000u)
#define UART_FR REG32(UART0_BASE + 0x018u)
#define UART_IBRD REG32(UART0_BASE + 0x024u)
#define UART_FBRD REG32(UART0_BASE + 0x028u)
#define UART_LCR_H REG32(UART0_BASE + 0x02Cu)
#define UART_CR REG32(UART0_BASE + 0x030u)
#define UART_FR_RXFE (1u << 4)
#define UART_FR_TXFF (1u << 5)
#define UART_DR_BE (1u << 10)           /* break error: the line is held low (run.mjs: stdin closed) */
#define UART_LCR_H_8N1_FIFO 0x70u       /* WLEN = 8 bits, FEN */
#define UART_CR_EN_TX_RX 0x301u         /* UARTEN, TXE, RXE */
#define UART_BAUD 115200u
/* divisor = clk_peri / (16 * baud), as 16.6 fixed point, rounded */
#define UART_DIV64 ((8u * PERI_CLOCK_HZ / UART_BAUD + 1u) / 2u)

#define TIMER_BASE 0x40054000u
#define TIMER_RAWL REG32(TIMER_BASE + 0x028u)   /* microseconds, low word, without the latch */

#define IO_BANK0_CTRL(n) REG32(0x40014004u + 8u * (uint32_t)(n))
#define PADS_BANK0(n) REG32(0x4001C004u + 4u * (uint32_t)(n))
#define FUNCSEL_SIO 5u
#define PAD_IE_SCHMITT_4MA 0x52u        /* input enabled, Schmitt trigger, 4 mA drive, no pulls */
#define SIO_GPIO_IN REG32(0xD0000004u)
#define SIO_GPIO_OUT_SET REG32(0xD0000014u)
#define SIO_GPIO_OUT_CLR REG32(0xD0000018u)
#define SIO_GPIO_OE_SET REG32(0xD0000024u)
#define NUM_PINS 30
#define LED_PIN 25

#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)
#define SYST_CSR_ENABLE_TICKINT_CPUCLK 0x7u
#define SYST_MAX 0xFFFFFFu              /* 24-bit counter: an interrupt every 2^24 cycles (134 ms) */

#define SIM_TEMP_DECICELSIUS 235 /* simulated 23.5 C */

static volatile uint32_t systick_wraps;
static int led_state;
static uint32_t pins_ready;    /* bit n: pin n's pad and function are set up */
static uint32_t last_us;       /* TIMER at the previous read */
static uint64_t total_us;      /* microseconds since ta_hal_init, extended past the 32-bit wrap */

void ta_cm_systick_handler(void) { systick_wraps++; }

static void pin_setup(int pin)
{
    if (!((pins_ready >> pin) & 1u)) {
        PADS_BANK0(pin) = PAD_IE_SCHMITT_4MA;
        IO_BANK0_CTRL(pin) = FUNCSEL_SIO;
        pins_ready |= 1u << pin;
    }
}

void ta_hal_init(void)
{
    UART_IBRD = UART_DIV64 >> 6;
    UART_FBRD = UART_DIV64 & 0x3Fu;
    UART_LCR_H = UART_LCR_H_8N1_FIFO;
    UART_CR = UART_CR_EN_TX_RX;

    SYST_RVR = SYST_MAX;
    SYST_CVR = 0u;
    SYST_CSR = SYST_CSR_ENABLE_TICKINT_CPUCLK;

    last_us = TIMER_RAWL;
    ta_hal_led_set(0);
}

void ta_hal_exit(int code)
{
    /* run.mjs writes out every byte the moment the UART takes it, so no pause is needed for the host
     * to read the last output (as it is on QEMU's pty). */
    ta_cm_semihost_exit(code);
}

int ta_hal_getc(void)
{
    while (UART_FR & UART_FR_RXFE) {
        ta_hal_poll();
    }
    uint32_t dr = UART_DR;
    if (dr & UART_DR_BE) {
        return -1;
    }
    return (int)(dr & 0xFFu);
}

void ta_hal_write(const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        while (UART_FR & UART_FR_TXFF) {
        }
        UART_DR = (uint8_t)buf[i];
    }
}

/* Call at least once per 2^32 us (71 minutes) for the count to stay right; the console loop does. */
static uint64_t micros(void)
{
    uint32_t now = TIMER_RAWL;
    total_us += (uint32_t)(now - last_us);
    last_us = now;
    return total_us;
}

uint32_t ta_hal_millis(void) { return (uint32_t)(micros() / 1000u); }

/* Core clock cycles: SysTick's wraps and its down-counter. */
uint32_t ta_hal_cycles(void)
{
    uint32_t wraps, left;
    do {
        wraps = systick_wraps;
        left = SYST_CVR;
    } while (wraps != systick_wraps);
    return wraps * (SYST_MAX + 1u) + (SYST_MAX - left);
}

void ta_hal_led_set(int on)
{
    led_state = on ? 1 : 0;
    ta_hal_gpio_write(LED_PIN, led_state);
}

int ta_hal_led_get(void) { return led_state; }

int ta_hal_gpio_write(int pin, int level)
{
    if (pin < 0 || pin >= NUM_PINS) {
        return -1;
    }
    pin_setup(pin);
    uint32_t mask = 1u << pin;
    if (level) {
        SIO_GPIO_OUT_SET = mask;
    } else {
        SIO_GPIO_OUT_CLR = mask;
    }
    SIO_GPIO_OE_SET = mask;
    return 0;
}

int ta_hal_gpio_read(int pin)
{
    if (pin < 0 || pin >= NUM_PINS) {
        return -1;
    }
    pin_setup(pin);
    return (int)((SIO_GPIO_IN >> pin) & 1u);
}

int32_t ta_hal_temp_decicelsius(void) { return SIM_TEMP_DECICELSIUS; }

int32_t ta_hal_adc_read_raw(int ch) { return sim_adc_raw(ch); }

int32_t ta_hal_adc_read_mv(int ch) { return sim_adc_mv(ch); }
