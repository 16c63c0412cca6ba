/* microbit HAL: BBC micro:bit v1 (nRF51822, Cortex-M0, 16 MHz), as QEMU models it.
 *
 * Console: the nRF51 UART (the micro:bit's USB serial). LED: the top-left LED of the 5x5 matrix
 * (row 1 = P0.13 high, column 1 = P0.04 low). Pins: P0.00..P0.31. Time: TIMER0 in 32-bit mode at
 * 16 MHz (the M0 in the nRF51 has no SysTick); the timer slots run on it. Pins read the GPIO IN
 * register. QEMU does not model the TEMP or ADC peripherals, so the temperature and the ADC are
 * simulated (../sim/sim_adc.h). Exit: Arm semihosting.
 */
#include "../cortex-m/cortexm.h"
#include "../sim/sim_adc.h"
#include "ta_devices.h"
#include "ta_hal.h"

#define REG32(addr) (*(volatile uint32_t *)(addr))

#define UART_BASE 0x40002000u
#define UART_STARTRX REG32(UART_BASE + 0x000u)
#define UART_STARTTX REG32(UART_BASE + 0x008u)
#define UART_RXDRDY REG32(UART_BASE + 0x108u)
#define UART_TXDRDY REG32(UART_BASE + 0x11Cu)
#define UART_ENABLE REG32(UART_BASE + 0x500u)
#define UART_PSELTXD REG32(UART_BASE + 0x50Cu)
#define UART_PSELRXD REG32(UART_BASE + 0x514u)
#define UART_RXD REG32(UART_BASE + 0x518u)
#define UART_TXD REG32(UART_BASE + 0x51Cu)
#define UART_BAUDRATE REG32(UART_BASE + 0x524u)
#define UART_ENABLE_ON 4u
#define UART_BAUD_115200 0x01D7E000u
#define MICROBIT_TX_PIN 24u  /* P0.24 -> interface chip (USB serial) */
#define MICROBIT_RX_PIN 25u

#define TIMER0_BASE 0x40008000u
#define TIMER_START REG32(TIMER0_BASE + 0x000u)
#define TIMER_CLEAR REG32(TIMER0_BASE + 0x00Cu)
#define TIMER_CAPTURE0 REG32(TIMER0_BASE + 0x040u)
#define TIMER_MODE REG32(TIMER0_BASE + 0x504u)
#define TIMER_BITMODE REG32(TIMER0_BASE + 0x508u)
#define TIMER_PRESCALER REG32(TIMER0_BASE + 0x510u)
#define TIMER_CC0 REG32(TIMER0_BASE + 0x540u)
#define TIMER_BITMODE_32 3u
#define TIMER_HZ 16000000u   /* prescaler 0: the 16 MHz core clock */

#define GPIO_BASE 0x50000000u
#define GPIO_OUTSET REG32(GPIO_BASE + 0x508u)
#define GPIO_OUTCLR REG32(GPIO_BASE + 0x50Cu)
#define GPIO_IN REG32(GPIO_BASE + 0x510u)
#define GPIO_DIRSET REG32(GPIO_BASE + 0x518u)
#define GPIO_PIN_CNF(n) REG32(GPIO_BASE + 0x700u + 4u * (uint32_t)(n))
#define GPIO_PIN_CNF_INPUT_DISCONNECT (1u << 1) /* set from reset: IN does not see the pin */
#define LED_ROW1 (1u << 13)
#define LED_COL1 (1u << 4)
#define NUM_PINS 32

#define SIM_TEMP_DECICELSIUS 235 /* simulated 23.5 C */

static int led_state;
static uint32_t last_count;   /* TIMER0 at the previous read */
static uint64_t total_ticks;  /* 16 MHz ticks since ta_hal_init, extended past the 32-bit wrap */

static uint32_t timer_read(void)
{
    TIMER_CAPTURE0 = 1u;
    return TIMER_CC0;
}

void ta_hal_init(void)
{
    UART_PSELTXD = MICROBIT_TX_PIN;
    UART_PSELRXD = MICROBIT_RX_PIN;
    UART_BAUDRATE = UART_BAUD_115200;
    UART_ENABLE = UART_ENABLE_ON;
    UART_STARTTX = 1u;
    UART_STARTRX = 1u;

    TIMER_MODE = 0u;
    TIMER_BITMODE = TIMER_BITMODE_32;
    TIMER_PRESCALER = 0u;
    TIMER_CLEAR = 1u;
    TIMER_START = 1u;

    GPIO_DIRSET = LED_ROW1 | LED_COL1;
    GPIO_OUTCLR = LED_COL1;
    ta_hal_led_set(0);
}

void ta_hal_exit(int code)
{
    uint32_t start = ta_hal_millis();
    while (ta_hal_millis() - start < TA_CM_EXIT_LINGER_MS) {
    }
    ta_cm_semihost_exit(code);
}

int ta_hal_getc(void)
{
    while (UART_RXDRDY == 0u) {
        ta_hal_poll();
    }
    UART_RXDRDY = 0u;
    return (int)(UART_RXD & 0xFFu);
}

void ta_hal_write(const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        UART_TXDRDY = 0u;
        UART_TXD = (uint8_t)buf[i];
        while (UART_TXDRDY == 0u) {
        }
    }
}

/* Call at least once per 2^32 ticks (268 s) for the count to stay right; the console loop does. */
static uint64_t ticks(void)
{
    uint32_t now = timer_read();
    total_ticks += (uint32_t)(now - last_count);
    last_count = now;
    return total_ticks;
}

uint32_t ta_hal_millis(void) { return (uint32_t)(ticks() / (TIMER_HZ / 1000u)); }

uint32_t ta_hal_cycles(void) { return (uint32_t)ticks(); }

void ta_hal_led_set(int on)
{
    led_state = on ? 1 : 0;
    if (led_state) {
        GPIO_OUTSET = LED_ROW1;
    } else {
        GPIO_OUTCLR = LED_ROW1;
    }
}

int ta_hal_led_get(void) { return led_state; }

int ta_hal_gpio_write(int pin, int level)
{
    if (pin < 0 || pin >= NUM_PINS) {
        return -1;
    }
    uint32_t mask = 1u << pin;
    GPIO_DIRSET = mask;
    if (level) {
        GPIO_OUTSET = mask;
    } else {
        GPIO_OUTCLR = mask;
    }
    return 0;
}

/* Connects the pin's input buffer (disconnected from reset) and reads IN: an output pin reads the
 * level it drives, any other pin its input. The direction is left as it is. */
int ta_hal_gpio_read(int pin)
{
    if (pin < 0 || pin >= NUM_PINS) {
        return -1;
    }
    GPIO_PIN_CNF(pin) &= ~GPIO_PIN_CNF_INPUT_DISCONNECT;
    return (int)((GPIO_IN >> pin) & 1u);
}

int32_t ta_hal_temp_decicelsius(void) { return SIM_TEMP_DECICELSIUS; }

int32_t ta_hal_adc_read_raw(int ch) { return sim_adc_raw(ch); }

int32_t ta_hal_adc_read_mv(int ch) { return sim_adc_mv(ch); }
