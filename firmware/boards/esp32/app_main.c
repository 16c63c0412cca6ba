/* ESP-IDF entry point. The IDF's startup code calls app_main in its main task; tinyagent's own
 * firmware/ta_main.c is compiled with -Dmain=ta_app_main (components/tinyagent/CMakeLists.txt), so
 * the ESP boards run the same loop as every other board. */
int ta_app_main(void);
void app_main(void);

void app_main(void)
{
    (void)ta_app_main();
}
