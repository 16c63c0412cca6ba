/* lx106-sim startup. QEMU's `-M sim -cpu lx106` starts at the reset vector 0x50000000 (its system
 * ROM) whatever the ELF entry says; code and constants live in the instruction ROM at 0x40200000
 * (where an ESP8266 maps its flash), too far for a `j`, so the reset code loads the address.
 * Sets the stack, points VECBASE at a table whose every vector ends the program with exit code 99,
 * copies .data, zeroes .bss, runs main (call0 ABI: lx106 has no register windows) and passes its
 * result to ta_hal_exit. */
    .section .reset.text, "ax"
    .globl _reset
_reset:
    j 1f
    .align 4
.Lstart_addr:
    .word _start
1:  l32r a0, .Lstart_addr
    jx a0

    /* XEA2 vectors at their offsets from VECBASE; the table must be 1 KiB aligned. */
    .section .vectors.text, "ax"
    .align 1024
    .globl ta_lx106_vectors
ta_lx106_vectors:
    .org ta_lx106_vectors + 0x10   /* level 2 / debug */
    j ta_lx106_fault
    .org ta_lx106_vectors + 0x20   /* NMI / level 3 */
    j ta_lx106_fault
    .org ta_lx106_vectors + 0x30   /* kernel exception */
    j ta_lx106_fault
    .org ta_lx106_vectors + 0x50   /* user exception */
    j ta_lx106_fault
    .org ta_lx106_vectors + 0x70   /* double exception (PS.EXCM is set from reset) */
    j ta_lx106_fault
    .org ta_lx106_vectors + 0x80

    .section .text._start, "ax"
    .literal_position
    .align 4
    .globl _start
_start:
    movi a1, __stack_top
    movi a2, ta_lx106_vectors
    wsr a2, vecbase
    rsync

    movi a2, __data_load
    movi a3, __data_start
    movi a4, __data_end
2:  bgeu a3, a4, 3f
    l32i a5, a2, 0
    s32i a5, a3, 0
    addi a2, a2, 4
    addi a3, a3, 4
    j 2b
3:  movi a3, __bss_start
    movi a4, __bss_end
    movi a5, 0
4:  bgeu a3, a4, 5f
    s32i a5, a3, 0
    addi a3, a3, 4
    j 4b
5:  call0 main
    call0 ta_hal_exit
6:  j 6b

ta_lx106_fault:
    movi a2, 99
    call0 ta_hal_exit
7:  j 7b
