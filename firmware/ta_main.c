/* The firmware's entry point: the board, then the console until it goes away. */
#include "ta_console.h"
#include "ta_hal.h"

int main(void)
{
    ta_hal_init();
    ta_console_run();
    ta_hal_exit(0);
    return 0;
}
